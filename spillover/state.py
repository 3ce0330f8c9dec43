"""state.json, typed: parsed and repaired once (`State.load`), damage reported, written whole.

Shape (design §6): the route and why, the merged buckets, the decision's details, each source's
record, the targets' snapshots (OpenRouter's `budget`), what notify already said, problems.
A hand-edited or damaged field is dropped (and said), never allowed to crash every tick that
follows; a state.json that cannot be read at all is rebuilt from route.env's header.

`check` and `statusline` do not import this (dataclasses is too heavy for them): they read the
few fields they need from the raw JSON and tolerate any shape.
"""

import os
from dataclasses import dataclass, field, fields

from spillover import fsutil, paths
from spillover.credential import route_from_file
from spillover.policy import NOT_SPILLED, Pin, Previous, Sample
from spillover.sanitize import number

VERSION = 1

# Fields and the JSON type each must have.
_TYPES = {
    "route": str, "status": str, "reason": str, "route_reason": str, "hot_bucket": str,
    "route_since": (int, float), "decided_at": (int, float), "stale_after": (int, float),
    "pin": dict, "buckets": dict, "details": dict, "sources": dict, "budget": dict,
    "extra_usage": dict, "notified": dict, "problems": list, "thresholds": dict, "config_error": str,
    "cut_off": str,
}
_EMPTY = {dict: dict, list: list}


@dataclass
class State:
    """state.json. Containers are never None (an absent one is empty); `other` keeps unknown keys."""

    version: int = VERSION
    route: str = "plan"
    status: str | None = None
    reason: str | None = None
    route_reason: str | None = None
    hot_bucket: str | None = None
    route_since: float | None = None
    decided_at: float | None = None
    stale_after: float | None = None
    pin: dict | None = None  # {"route", "until", "force", "honoured"} of the pin the tick saw
    buckets: dict = field(default_factory=dict)  # bucket -> Sample.to_json()
    details: dict = field(default_factory=dict)  # Decision.details: states, forecasts, targets, weekly_walls, pin…
    sources: dict = field(default_factory=dict)  # source name -> SourceRecord.to_json()
    budget: dict = field(default_factory=dict)  # the openrouter target's snapshot (targets/openrouter.read_budget)
    extra_usage: dict = field(default_factory=dict)
    notified: dict = field(default_factory=dict)  # notify's memory
    problems: list = field(default_factory=list)
    thresholds: dict | None = None
    config_error: str | None = None
    cut_off: str | None = None  # the stage at which the last tick hit its hard deadline
    other: dict = field(default_factory=dict)

    # --- reading ---

    @classmethod
    def load(cls, state_dir):
        """(State, problem or None). A damaged state.json is recovered from route.env's header."""
        path = os.path.join(state_dir, paths.STATE_JSON)
        data = fsutil.read_json(path, default=None)
        if isinstance(data, dict) and data.get("version") == VERSION:
            return cls.from_json(data, state_dir)
        problem = "state.json was unreadable and has been rebuilt" if os.path.exists(path) else None
        return cls(route=route_from_file(state_dir) or "plan"), problem

    @classmethod
    def from_json(cls, data, state_dir=None):
        """(State, problem or None) of a parsed state.json dict, every field checked."""
        from spillover import targets

        data = dict(data)
        bad = [k for k, kind in _TYPES.items() if data.get(k) is not None and
               (not isinstance(data[k], kind) or isinstance(data[k], bool))]
        for key in bad:
            del data[key]
        if data.get("route") not in NOT_SPILLED + targets.names():
            data["route"] = (route_from_file(state_dir) if state_dir else None) or "plan"
        known = {f.name for f in fields(cls)} - {"other"}
        state = cls(other={k: v for k, v in data.items() if k not in known})
        for key in known & data.keys():
            if data[key] is not None:
                setattr(state, key, data[key])
        state._repair()
        return state, (f"state.json had damaged fields ({', '.join(bad)}); they were reset" if bad else None)

    def _repair(self):
        for mapping in (self.sources, self.buckets, self.notified):
            _keep_dicts(mapping)
        if self.buckets:
            self.buckets = {s.bucket: s.to_json() for s in self.samples()}
        details = self.details
        for name in ("states", "forecasts", "pin"):
            if not isinstance(details.get(name, {}), dict):
                del details[name]
            _keep_dicts(details.get(name))
        for name in ("targets", "weekly_walls"):
            if not isinstance(details.get(name, []), list):
                del details[name]
        if "targets" in details:
            details["targets"] = [t for t in details["targets"] if isinstance(t, dict) and {"name", "healthy", "reason"} <= t.keys()]

    # --- views ---

    def samples(self):
        """The stored buckets as policy.Sample (a damaged one is skipped)."""
        out = []
        for bucket, data in self.buckets.items():
            try:
                out.append(Sample.from_json(bucket, data))
            except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
                continue
        return out

    def previous(self):
        """What the decision needs to know of the last tick."""
        return Previous(
            route=self.route,
            since=self.route_since,
            hot_bucket=self.hot_bucket,
            reason=self.route_reason or "",
            pinned=isinstance(self.pin, dict) and bool(self.pin.get("honoured")),
        )

    def target_health(self, name):
        """The last tick's health of target `name` (a dict: name, healthy, reason, …) or None."""
        return next((t for t in self.details.get("targets", []) if t["name"] == name), None)

    def targets_health(self):
        """The last tick's target health list (dicts), in chain order."""
        return list(self.details.get("targets", []))

    def source(self, name):
        """The SourceRecord of source `name` from the last tick (an empty one when none)."""
        from spillover.sources.base import SourceRecord

        return SourceRecord.from_json(self.sources.get(name))

    @property
    def spilled(self):
        return self.route not in NOT_SPILLED

    @property
    def pin_honoured(self):
        return isinstance(self.pin, dict) and bool(self.pin.get("honoured"))

    # --- writing ---

    def to_json(self):
        out = dict(self.other)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "other" and (value is not None or f.name not in ("thresholds", "config_error", "cut_off")):
                out[f.name] = value
        return out

    def save(self, state_dir):
        fsutil.write_json(os.path.join(state_dir, paths.STATE_JSON), self.to_json())


def _keep_dicts(mapping):
    """Drop the entries of `mapping` (if it is a dict) whose values are not dicts."""
    if isinstance(mapping, dict):
        for key in [k for k, v in mapping.items() if not isinstance(v, dict)]:
            del mapping[key]


def load_pin(state_dir, now):
    """The active pin of pin.json, or None (a damaged pin is no pin)."""
    from spillover import targets

    data = fsutil.read_json(os.path.join(state_dir, paths.PIN_JSON))
    if not isinstance(data, dict) or data.get("route") not in ("plan",) + targets.names():
        return None
    until = data.get("until")
    if until is not None and number(until) is None:
        return None
    pin = Pin(data["route"], until, bool(data.get("force")), data.get("set_at"))
    return pin if pin.active(now) else None


def save_pin(state_dir, route, until, force, now):
    fsutil.write_json(os.path.join(state_dir, paths.PIN_JSON), {"route": route, "until": until, "force": bool(force), "set_at": now})


def spill_intervals(state_dir):
    """(start, end) of every period spent on a spill target, from history.jsonl (end None: still)."""
    intervals, start = [], None
    for rec in fsutil.read_jsonl(os.path.join(state_dir, paths.HISTORY_JSONL)):
        at, route = rec.get("at"), rec.get("route")
        if not isinstance(at, (int, float)):
            continue
        spilled = isinstance(route, str) and route not in NOT_SPILLED
        if spilled and start is None:
            start = at
        elif not spilled and start is not None:
            intervals.append((start, at))
            start = None
    if start is not None:
        intervals.append((start, None))
    return intervals
