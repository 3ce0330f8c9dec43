"""One tick: lock → config → signals → decide → publish. Run by cron every minute.

Nothing here flips the route on its own: `policy.decide` does, from what the sources report. A
source that fails is recorded in state.json (with its redacted error) and its last good data is
kept; the route file is only ever replaced, never deleted.
"""

import fcntl
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor

from spillover import paths, policy, publish, samples, targets
from spillover.errors import SourceError
from spillover.fmt import clock
from spillover.policy import Pin, Previous, Sample, Signals, TargetHealth

log = logging.getLogger("spillover")

STATE_VERSION = 1
BUDGET_MAX_AGE = 600  # seconds a budget snapshot may be reused while /key is unreachable
BUDGET_IDLE_EVERY = 600  # seconds between budget reads while nowhere near a wall
STORED_KEY_PROBLEM = ("Claude Code has an Anthropic API key stored in {path} (primaryApiKey): it sends it as x-api-key "
                      "even on the openrouter/gateway routes, to that target; remove it (claude /logout, then /login "
                      "with your Claude account)")


class Busy(Exception):
    """Another tick holds the lock."""


class Lock:
    """Non-blocking fcntl.flock on the state dir's lock file; released when the process dies."""

    def __init__(self, state_dir):
        self.path = os.path.join(state_dir, paths.LOCK)
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self.fd)
            raise Busy() from None
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


# --- previous state ---------------------------------------------------------------------------


def load_state(state_dir):
    """(state dict, problem or None). A damaged state.json is recovered from route.env's header."""
    path = os.path.join(state_dir, paths.STATE_JSON)
    data = publish.read_json(path, default=None)
    if isinstance(data, dict) and data.get("version") == STATE_VERSION:
        return _sane(data, state_dir)
    problem = None
    if os.path.exists(path):
        problem = "state.json was unreadable and has been rebuilt"
    route = route_from_file(state_dir) or "plan"
    return {"version": STATE_VERSION, "route": route}, problem


# state.json fields and the type each must have; a hand-edited or damaged field is dropped
# (and said), never allowed to crash every tick that follows.
_STATE_TYPES = {
    "route": str, "status": str, "reason": str, "route_reason": str, "hot_bucket": str,
    "route_since": (int, float), "decided_at": (int, float), "stale_after": (int, float),
    "pin": dict, "buckets": dict, "details": dict, "sources": dict, "budget": dict,
    "extra_usage": dict, "notified": dict, "problems": list,
}


def _sane(data, state_dir):
    bad = [k for k, kind in _STATE_TYPES.items() if data.get(k) is not None and
           (not isinstance(data[k], kind) or isinstance(data[k], bool))]
    for key in bad:
        del data[key]
    if data.get("route") not in ("plan", "blocked") + policy.TARGETS:
        data["route"] = route_from_file(state_dir) or "plan"
    for field in ("sources", "buckets", "notified"):
        _keep_dicts(data.get(field))
    if data.get("buckets"):
        data["buckets"] = {s.bucket: s.to_json() for s in stored_samples(data)}
    details = data.get("details") or {}
    for field in ("states", "forecasts", "pin"):
        if not isinstance(details.get(field, {}), dict):
            del details[field]
        _keep_dicts(details.get(field))
    for field in ("targets", "weekly_walls"):
        if not isinstance(details.get(field, []), list):
            del details[field]
    if "targets" in details:
        details["targets"] = [t for t in details["targets"] if isinstance(t, dict) and {"name", "healthy", "reason"} <= t.keys()]
    return data, (f"state.json had damaged fields ({', '.join(bad)}); they were reset" if bad else None)


def _keep_dicts(mapping):
    """Drop the entries of `mapping` (if it is a dict) whose values are not dicts."""
    if isinstance(mapping, dict):
        for key in [k for k, v in mapping.items() if not isinstance(v, dict)]:
            del mapping[key]


def route_from_file(state_dir):
    try:
        with open(os.path.join(state_dir, paths.ROUTE_ENV), encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("# route: "):
                    return line[len("# route: "):].strip()
    except OSError:
        pass
    return None


def previous(state):
    return Previous(
        route=state.get("route", "plan"),
        since=state.get("route_since"),
        hot_bucket=state.get("hot_bucket"),
        reason=state.get("route_reason", ""),
        pinned=isinstance(state.get("pin"), dict) and bool(state["pin"].get("honoured")),
    )


def stored_samples(state):
    out = []
    for bucket, data in (state.get("buckets") or {}).items():
        try:
            out.append(Sample.from_json(bucket, data))
        except (KeyError, TypeError, ValueError, OverflowError, AttributeError):
            continue
    return out


def load_pin(state_dir, now):
    data = publish.read_json(os.path.join(state_dir, paths.PIN_JSON))
    if not isinstance(data, dict) or data.get("route") not in ("plan",) + policy.TARGETS:
        return None
    until = data.get("until")
    if until is not None and (isinstance(until, bool) or not isinstance(until, (int, float))):
        return None  # a damaged pin is no pin
    pin = Pin(data["route"], until, bool(data.get("force")), data.get("set_at"))
    return pin if pin.active(now) else None


def spill_intervals(state_dir):
    """(start, end) of every period spent on a spill target, from history.jsonl (end None: still)."""
    intervals, start = [], None
    for rec in publish.read_jsonl(os.path.join(state_dir, paths.HISTORY_JSONL)):
        at, route = rec.get("at"), rec.get("route")
        if not isinstance(at, (int, float)):
            continue
        if route in policy.TARGETS and start is None:
            start = at
        elif route not in policy.TARGETS and start is not None:
            intervals.append((start, at))
            start = None
    if start is not None:
        intervals.append((start, None))
    return intervals


# --- sources ----------------------------------------------------------------------------------


def _source_record(old, *, ok, now, error=None, kind=None, **extra):
    rec = dict(old or {})
    rec["last_attempt_at"] = now
    if ok:
        rec.update(ok=True, last_ok_at=now, error=None, kind=None, failures=0)
    else:
        rec.update(ok=False, error=error, kind=kind, failures=int(rec.get("failures") or 0) + 1)
    rec.update(extra)
    return rec


def poll_oauth(cfg, state, merged, prev, now, active, force=False):
    """Call the usage endpoint when due. Returns (samples, extra_usage, source record)."""
    rec = dict((state.get("sources") or {}).get("oauth") or {})
    due, why = policy.oauth_due(
        now,
        last_attempt_at=rec.get("last_attempt_at"),
        backoff_until=rec.get("backoff_until"),
        five_hour=merged.get(policy.FIVE_HOUR),
        policy=policy.Policy.from_config(cfg),
        poll_seconds=cfg.poll_minutes * 60,
        spilled=prev.route in policy.TARGETS,
        active=active,
    )
    if rec.get("kind") == "expired" and not force:
        # An expired token stays expired until Claude Code renews the credentials file.
        from spillover.sources import oauth

        files = [p for p in oauth.credential_files(cfg.claude_dirs) if os.path.exists(p)]
        mtime = max((os.path.getmtime(p) for p in files), default=None)
        # No file (macOS keychain): nothing to watch, so the usual schedule decides.
        if mtime is not None and mtime <= (rec.get("last_attempt_at") or 0):
            rec["due"] = "waiting for Claude Code to renew its token"
            return [], None, rec
        due = due or mtime is not None
    if not due and not force:
        rec["due"] = why
        return [], None, rec
    from spillover.sources import oauth

    try:
        version_cache = dict(rec.get("client") or {})
        got, extra, _ = oauth.fetch(cfg, now, version_cache, previous=merged)
        rec["client"] = version_cache
    except SourceError as exc:
        step = int(rec.get("failures") or 0)
        rec = _source_record(rec, ok=False, now=now, error=str(exc), kind=exc.kind, status=exc.status)
        if exc.kind in ("expired", "auth"):
            rec["backoff_until"] = None
        else:
            kind = "rate_limited" if exc.status == 429 else "error"
            rec["backoff_until"] = now + policy.backoff_seconds(step, kind, exc.retry_after)
        rec["due"] = why
        return [], None, rec
    rec = _source_record(rec, ok=True, now=now, backoff_until=None, status=200, due=why)
    return got, extra, rec


def read_budget(cfg, state, now, need):
    """OpenRouter's key budget and balance, reusing a recent snapshot when not needed or unreachable."""
    from spillover.targets import openrouter

    cache = dict((state.get("budget") or {}))
    last = cache.get("attempted_at") if cache.get("error") else cache.get("fetched_at")
    if not need and isinstance(last, (int, float)) and now - last < BUDGET_IDLE_EVERY:
        return cache  # far from a wall: a read every few minutes, failing or not, is enough
    with ThreadPoolExecutor(max_workers=2) as pool:  # /key and /credits at once: one timeout, not two
        key_job = pool.submit(openrouter.fetch_key, cfg)
        credits_job = pool.submit(openrouter.fetch_credits, cfg)
    try:
        key = key_job.result()
        try:
            credits = credits_job.result()
            credits_error = None
        except SourceError as exc:
            credits, credits_error = None, str(exc)
    except SourceError as exc:
        cache.update(error=str(exc), error_kind=exc.kind, error_status=exc.status, attempted_at=now)
        return cache
    return {
        "fetched_at": now,
        "attempted_at": now,
        "key": key.to_json(),
        "credits": None if credits is None else {"total_credits": credits.total_credits, "total_usage": credits.total_usage},
        "credits_error": credits_error,
        "error": None,
    }


def openrouter_health(cfg, budget, now):
    from spillover.targets import openrouter

    if not cfg.openrouter_key:
        return openrouter.guard(cfg, None, None)
    key = credits = None
    try:  # a snapshot from another version, or damaged: as if there were none
        key = openrouter.KeyInfo(**budget["key"]) if budget.get("key") else None
        credits = openrouter.Credits(**budget["credits"]) if budget.get("credits") else None
    except TypeError:
        key = credits = None
    error = budget.get("error")
    if error:
        # Only OpenRouter refusing the key (401/402/403) says the target is unusable; a hang,
        # a 5xx, a 429 or a garbled answer says nothing new, and a failed fetch never flips the route.
        transient = budget.get("error_kind") not in ("auth", "payment", "forbidden")
        age = now - (budget.get("fetched_at") or 0)
        if transient and key is not None and age < BUDGET_MAX_AGE:
            health = openrouter.guard(cfg, key, credits, now=now)
            return TargetHealth(health.name, health.healthy, f"{health.reason} (as of {age / 60:.0f} min ago; {error})", health.remaining, health.details)
        return openrouter.guard(cfg, key, credits, error=error, now=now)
    return openrouter.guard(cfg, key, credits, now=now)


def gateway_health(cfg):
    ok, why = targets.configured("gateway", cfg)
    if not ok:
        return TargetHealth("gateway", False, why)
    if cfg.gateway_health_url:
        import requests

        try:
            response = requests.get(cfg.gateway_health_url, timeout=cfg.timeout, allow_redirects=False)
            if not 200 <= response.status_code < 300:
                return TargetHealth("gateway", False, f"health check answered HTTP {response.status_code}")
        except requests.exceptions.RequestException:
            return TargetHealth("gateway", False, f"health check {cfg.gateway_health_url} did not answer")
        return TargetHealth("gateway", True, "health check passed")
    return TargetHealth("gateway", True, f"configured ({cfg.gateway_base_url})")


def anthropic_health(cfg):
    from spillover.redact import mask

    ok, why = targets.configured("anthropic", cfg)
    return TargetHealth("anthropic", ok, f"API key {mask(cfg.anthropic_key)}" if ok else why)


# --- the tick ---------------------------------------------------------------------------------


def _extra_usage(cfg, oauth_extra, state):
    """Whether Anthropic's own usage credits carry the plan past a wall (None: unknown)."""
    from spillover.sources import claude_json

    info = dict(claude_json.extra_usage(cfg))
    if isinstance(oauth_extra, dict) and isinstance(oauth_extra.get("is_enabled"), bool):
        enabled = oauth_extra["is_enabled"]
        info.update(enabled=enabled, source="oauth",
                    reason=None if enabled else "extra usage is disabled (usage endpoint: extra_usage.is_enabled false)")
    elif info.get("enabled") is None and isinstance(state.get("extra_usage"), dict):
        return state["extra_usage"]
    return info


def run(cfg, *, now=None, dry_run=False, force_poll=False):
    """One tick. Returns (decision, state dict, changed). Raises Busy when another tick runs."""
    now = time.time() if now is None else now
    state_dir = publish.ensure_state_dir()
    with Lock(state_dir):
        return _run_locked(cfg, state_dir, now, dry_run, force_poll)


def _run_locked(cfg, state_dir, now, dry_run, force_poll):
    state, problem = load_state(state_dir)
    problems = [problem] if problem else []
    prev = previous(state)
    sources = dict(state.get("sources") or {})
    samples_path = os.path.join(state_dir, paths.SAMPLES_JSONL)
    enabled = set(cfg.sources)

    # Local signals first: they are free and decide whether the network is needed.
    fresh = []
    activity = None
    if "statusline" in enabled:
        fresh += [s for s in samples.read(samples_path, since=now - cfg.fresh_seconds) if s.source == "statusline"]
    if "transcripts" in enabled:
        from spillover.sources import transcripts

        result = transcripts.scan(cfg.claude_dirs, state_dir, now, spill_intervals(state_dir), save=not dry_run)
        fresh += result.samples
        activity = result.last_activity
        sources["transcripts"] = {
            "ok": not result.problems, "error": "; ".join(result.problems) or None,
            "last_attempt_at": now, "last_activity": activity, "walls": len(result.samples),
        }
    statusline_times = [s.observed_at for s in fresh if s.source == "statusline"]
    if statusline_times:
        activity = max(activity or 0, max(statusline_times))
    merged = policy.merge(stored_samples(state) + fresh)
    active = activity is not None and now - activity < cfg.poll_minutes * 60

    # Network and the meter command, concurrently: a tick is as slow as its slowest source.
    pin = load_pin(state_dir, now)
    near = any(s.percent >= cfg.resume for s in merged.values() if s.bucket in policy.HOT)
    need_budget = prev.route != "plan" or pin is not None or near
    jobs = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        if "oauth" in enabled:
            jobs["oauth"] = pool.submit(poll_oauth, cfg, state, merged, prev, now, active, force_poll)
        if "command" in enabled and cfg.meter_command:
            from spillover.sources import command

            jobs["command"] = pool.submit(command.fetch, cfg, now)
        if "openrouter" in cfg.targets and cfg.openrouter_key:
            jobs["budget"] = pool.submit(read_budget, cfg, state, now, need_budget)
        if "gateway" in cfg.targets:
            jobs["gateway"] = pool.submit(gateway_health, cfg)

    oauth_extra = None
    network = []
    if "oauth" in jobs:
        got, oauth_extra, sources["oauth"] = jobs["oauth"].result()
        network += got
    if "command" in jobs:
        try:
            got = jobs["command"].result()
            sources["command"] = _source_record(sources.get("command"), ok=True, now=now)
            network += got
        except SourceError as exc:
            sources["command"] = _source_record(sources.get("command"), ok=False, now=now, error=str(exc), kind=exc.kind)
    for source, observed in {(s.source, s.observed_at) for s in network}:
        line = samples.record(observed, source, {s.bucket: (s.percent, s.resets_at) for s in network
                                                 if (s.source, s.observed_at) == (source, observed)})
        if not dry_run:
            samples.append(samples_path, line)
    merged = policy.merge(list(merged.values()) + network)
    budget = jobs["budget"].result() if "budget" in jobs else dict(state.get("budget") or {})

    health = []
    for name in cfg.targets:
        if name == "openrouter":
            health.append(openrouter_health(cfg, budget, now))
        elif name == "anthropic":
            health.append(anthropic_health(cfg))
        elif name == "gateway":
            health.append(jobs["gateway"].result())

    history = {}
    for s in samples.read(samples_path, since=now - policy.HISTORY_WINDOW):
        history.setdefault(s.bucket, []).append(s)
    extra = _extra_usage(cfg, oauth_extra, state)
    if extra.get("stored_api_key") and set(cfg.targets) & {"openrouter", "gateway"}:
        problems.append(STORED_KEY_PROBLEM.format(path=extra.get("path")))
    signals = Signals(buckets=merged, history=history, targets=tuple(health), extra_usage_on=extra.get("enabled"), pin=pin)
    pol = policy.Policy.from_config(cfg)
    decision = policy.decide(prev, signals, pol, now)

    flipped = decision.route != prev.route
    route_reason = decision.reason if flipped or not prev.reason else prev.reason
    route_since = now if flipped or prev.since is None else prev.since
    pin_text = ""
    if pin is not None and decision.details.get("pin"):
        pin_text = pin.route + ("" if pin.until is None else " until " + clock(pin.until))
    pairs = targets.route_env(decision.route, cfg, reason=route_reason, pin=pin_text)

    new_state = {
        "version": STATE_VERSION,
        "decided_at": now,
        "stale_after": cfg.stale_minutes * 60,
        "route": decision.route,
        "status": decision.status,
        "reason": decision.reason,
        "route_reason": route_reason,
        "route_since": route_since,
        "hot_bucket": decision.hot_bucket,
        "pin": None if pin is None else {"route": pin.route, "until": pin.until, "force": pin.force, "honoured": bool(decision.details.get("pin"))},
        "buckets": {b: s.to_json() for b, s in merged.items()},
        "details": decision.details,
        "sources": sources,
        "budget": budget,
        "extra_usage": extra,
        "problems": problems + [w for w in cfg.warnings],
        "notified": state.get("notified") or {},
        "thresholds": {"threshold": cfg.threshold, "resume": cfg.resume},
    }
    if dry_run:
        return decision, new_state, False

    changed = publish.publish_route(state_dir, decision.route, pairs, route_reason)
    if flipped:
        key = (budget or {}).get("key") or {}
        publish.append_jsonl(
            os.path.join(state_dir, paths.HISTORY_JSONL),
            {"at": now, "from": prev.route, "route": decision.route, "reason": decision.reason,
             "hot_bucket": decision.hot_bucket, "openrouter_usage": key.get("usage")},
        )
        log.info("route %s -> %s (%s)", prev.route, decision.route, decision.reason)
    _log_source_changes(state.get("sources") or {}, sources)
    try:
        from spillover import notify

        new_state["notified"] = notify.dispatch(cfg, state, new_state, decision, now)
    except ImportError:
        pass
    publish.write_json(os.path.join(state_dir, paths.STATE_JSON), new_state)
    mark_fresh_until(state_dir, now + new_state["stale_after"])
    if os.path.exists(samples_path) and os.path.getsize(samples_path) > samples.MAX_BYTES:
        samples.compact(samples_path)
    remove_orphan_temp_files(state_dir, now)
    return decision, new_state, changed


def remove_orphan_temp_files(state_dir, now, older_than=300):
    """Temp files of writers killed mid-write (atomic_write's `.tmp-*`); never a live one."""
    for name in os.listdir(state_dir):
        if name.startswith(".tmp-"):
            path = os.path.join(state_dir, name)
            try:
                if now - os.path.getmtime(path) > older_than:
                    os.unlink(path)
            except OSError:
                pass


def mark_fresh_until(state_dir, until):
    """Set fresh-until's mtime to when this decision goes stale (a shell compares it with `-ot`)."""
    path = os.path.join(state_dir, paths.FRESH_UNTIL)
    with open(path, "a"):
        pass
    os.utime(path, (until, until))


def record_config_error(message):
    """A broken config stops the tick; keep the route, and record why for status and doctor."""
    state_dir = publish.ensure_state_dir()
    try:
        with Lock(state_dir):
            state, _ = load_state(state_dir)
            if state.get("config_error") != message:
                state["config_error"] = message
                publish.write_json(os.path.join(state_dir, paths.STATE_JSON), state)
    except Busy:
        pass


def _log_source_changes(old, new):
    """One log line when a source starts failing, changes its error, or recovers: not one per tick."""
    for name, rec in new.items():
        before = (old.get(name) or {}).get("error")
        after = rec.get("error")
        if after and after != before:
            log.warning("%s: %s", name, after)
        elif before and not after and rec.get("ok"):
            log.warning("%s: recovered", name)
