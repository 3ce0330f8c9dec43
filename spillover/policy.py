"""The decision: a pure function of (previous state, signals, policy, now). No I/O, no clock.

Vocabulary
- bucket: a plan quota window: five_hour, seven_day, seven_day_opus, seven_day_sonnet, and the two
  a transcript can name without a number: unknown ("usage limit") and overage ("out of extra usage").
- sample: one reading of a bucket (percent 0-100, resets_at, observed_at, source).
- bucket state: hot (at or past the threshold, or forecast to be within the lead time),
  warm (between resume and threshold), cool (under resume), unknown (no fresh, current reading).
- route: plan, openrouter, anthropic, gateway, or blocked (plan variables, but the plan is at a
  wall and nothing can be spilled to).
"""

from dataclasses import dataclass, field, replace

FIVE_HOUR = "five_hour"
SEVEN_DAY = "seven_day"
WEEKLY = ("seven_day", "seven_day_opus", "seven_day_sonnet", "seven_day_fable")
HOT = (FIVE_HOUR, "unknown", "overage")  # buckets that flip the route by themselves
BUCKETS = HOT + WEEKLY
# Model tiers from the strongest down: a per-model wall moves the walled tier's alias one step down.
TIERS = ("fable", "opus", "sonnet", "haiku")
DEFAULT_PLAN_MODELS = {"fable": "claude-fable-5-1", "opus": "claude-opus-5-5", "sonnet": "claude-sonnet-5-5",
                       "haiku": "claude-haiku-5-5"}
RESET_GRACE = 120  # seconds after a reset that no working source can confirm, before the spill ends
WINDOW_SECONDS = {FIVE_HOUR: 5 * 3600, "unknown": 5 * 3600, "overage": 5 * 3600}
WEEK_SECONDS = 7 * 86400
# Buckets that some source reports as numbers; the others only ever come from a transcript wall.
MEASURED = (FIVE_HOUR,) + WEEKLY


def is_model_bucket(bucket):
    """A per-model weekly bucket: any `seven_day_<model>` (fable, opus, sonnet, a future one)."""
    return isinstance(bucket, str) and bucket.startswith("seven_day_") and len(bucket) > len("seven_day_")


def model_tier(bucket):
    return bucket[len("seven_day_"):] if is_model_bucket(bucket) else None


def measured(bucket):
    """Whether some source reports this bucket as a number (so a reading can confirm its reset)."""
    return bucket in MEASURED or is_model_bucket(bucket)


def window_seconds(bucket):
    return WINDOW_SECONDS.get(bucket, WEEK_SECONDS)
NOT_SPILLED = ("plan", "blocked")  # every other route is a spill target

FORECAST_WINDOW = 30 * 60  # seconds of history the burn rate is fitted on
FORECAST_MIN_SPAN = 60  # seconds the fitted samples must span
HISTORY_WINDOW = FORECAST_WINDOW + 60  # seconds of readings the forecast is fed
SAME_WINDOW_SLACK = 120  # resets_at values this close belong to one window


@dataclass(frozen=True)
class Sample:
    bucket: str
    percent: float
    observed_at: float
    source: str
    resets_at: float | None = None
    wall: bool = False  # a wall hit (transcript, StopFailure, usage endpoint at 100%): holds until resets_at
    account: str | None = None  # the config dir / OAuth account it was read for (None: not known)

    def to_json(self):
        out = {
            "percent": round(self.percent, 2),
            "resets_at": self.resets_at,
            "observed_at": self.observed_at,
            "source": self.source,
            "wall": self.wall,
        }
        if self.account is not None:
            out["account"] = self.account
        return out

    @classmethod
    def from_json(cls, bucket, data):
        return cls(
            bucket=bucket,
            percent=float(data["percent"]),
            observed_at=float(data["observed_at"]),
            source=str(data.get("source", "?")),
            resets_at=None if data.get("resets_at") is None else float(data["resets_at"]),
            wall=bool(data.get("wall", False)),
            account=data.get("account") if isinstance(data.get("account"), str) else None,
        )


@dataclass(frozen=True)
class TargetHealth:
    name: str
    healthy: bool
    reason: str
    remaining: float | None = None  # USD the guard looked at (key remaining or balance), when known
    details: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Pin:
    route: str
    until: float | None  # None: until the hot bucket resets (resolved when the pin is set) or forever
    force: bool = False
    set_at: float | None = None

    def active(self, now):
        return self.until is None or now < self.until


@dataclass(frozen=True)
class Previous:
    route: str = "plan"
    since: float | None = None
    hot_bucket: str | None = None
    reason: str = ""
    pinned: bool = False  # the route came from a pin: when the pin ends, the plan's state decides afresh


@dataclass(frozen=True)
class Policy:
    threshold: float = 95.0
    resume: float = 50.0
    weekly: str = "notify"  # notify | spill | ignore: the all-model weekly bucket only
    extra_usage: str = "spill"  # spill | stay
    model_wall: str = "downshift"  # downshift | spill | notify: a per-model weekly bucket at its wall
    lead_seconds: float = 300.0
    fresh_seconds: float = 900.0
    # Some source can read the plan while spilled (oauth or a meter command). Without one, nothing
    # will ever confirm a reset, so the reset itself ends the spill.
    confirm_resets: bool = True
    plan_models: tuple = tuple(DEFAULT_PLAN_MODELS.items())  # (tier, Anthropic model id) pairs
    grace_seconds: float = RESET_GRACE

    @classmethod
    def from_config(cls, cfg, confirm_resets=None):
        """The policy of a Config. `confirm_resets` defaults to: some enabled source declares
        `can_confirm_reset` (sources/base.py)."""
        if confirm_resets is None:
            from spillover import sources

            confirm_resets = any(reader.can_confirm_reset for reader in sources.enabled(cfg))
        return cls(
            threshold=cfg.threshold,
            resume=cfg.resume,
            weekly=cfg.weekly,
            extra_usage=cfg.extra_usage,
            model_wall=getattr(cfg, "model_wall", "downshift"),
            plan_models=tuple((tier, getattr(cfg, f"plan_{tier}_model", "") or DEFAULT_PLAN_MODELS[tier]) for tier in TIERS),
            lead_seconds=cfg.lead_minutes * 60,
            fresh_seconds=cfg.fresh_minutes * 60,
            confirm_resets=confirm_resets,
        )

    def triggers(self, buckets=()):
        """The buckets that spill by themselves: the hot ones, seven_day with SPILLOVER_WEEKLY=spill,
        the per-model ones with SPILLOVER_MODEL_WALL=spill."""
        models = tuple(b for b in buckets if is_model_bucket(b)) if self.model_wall == "spill" else ()
        return HOT + ((SEVEN_DAY,) if self.weekly == "spill" else ()) + models

    def notifies(self, bucket):
        """Whether a wall of this weekly bucket blocks with a notification rather than spilling."""
        if bucket == SEVEN_DAY:
            return self.weekly == "notify"
        return is_model_bucket(bucket) and self.model_wall in ("notify", "downshift")


@dataclass(frozen=True)
class Signals:
    buckets: dict = field(default_factory=dict)  # bucket -> Sample (merged: newest wins)
    history: dict = field(default_factory=dict)  # bucket -> [Sample] of recent readings, any order
    targets: tuple = ()  # TargetHealth, in chain order
    extra_usage_on: bool | None = None  # Anthropic's own usage credits carry the plan past a wall
    pin: Pin | None = None
    # Names of the working sources (a reading recently) that can read the plan while spilled, so
    # can confirm a reset. None: not known, Policy.confirm_resets says.
    confirmers: tuple | None = None
    # A transcript shows a real answer from the plan at this time (outside any spill): walls of the
    # all-model buckets written before it are over (per-model walls are not: another model answered).
    plan_answered_at: float | None = None


@dataclass(frozen=True)
class Forecast:
    bucket: str
    rate_per_hour: float  # percent per hour
    projected: float  # percent now, extrapolated from the newest sample
    threshold_at: float | None  # when the threshold is reached at this rate
    wall_at: float | None  # when 100% is reached at this rate

    def to_json(self):
        return {
            "rate_per_hour": round(self.rate_per_hour, 2),
            "projected": round(self.projected, 2),
            "threshold_at": self.threshold_at,
            "wall_at": self.wall_at,
        }


@dataclass(frozen=True)
class Decision:
    route: str
    status: str  # plan | spilled | blocked
    reason: str
    hot_bucket: str | None = None
    details: dict = field(default_factory=dict)


# --- merging -------------------------------------------------------------------------------


def same_window(a, b):
    return a.resets_at is not None and b.resets_at is not None and abs(a.resets_at - b.resets_at) <= SAME_WINDOW_SLACK


def clamp(samples, now):
    """Readings stamped in the future (a clock excursion, a lying file) are taken as made `now`:
    a future stamp must neither win every merge nor count as fresh for hours."""
    return [s if s.observed_at <= now else replace(s, observed_at=now) for s in samples]


def later_window(a, b):
    """Whether reading `a` is of a later window than reading `b`."""
    return a.resets_at is not None and b.resets_at is not None and a.resets_at > b.resets_at + SAME_WINDOW_SLACK


def _wins(new, cur):
    """Whether `new` replaces `cur` as the reading of their bucket (the one rule merge and forecast share)."""
    if new.wall != cur.wall:
        wall, other = (new, cur) if new.wall else (cur, new)
        # A wall holds until its reset: a lower reading of the same window (a meter that lags, a
        # re-rendered status line) never undoes it; only a newer reading of a later window does.
        undone = later_window(other, wall) and other.observed_at >= wall.observed_at
        return (other is new) if undone else (wall is new)
    if not new.wall and same_window(new, cur) and new.percent != cur.percent:
        return new.percent > cur.percent  # within a window readings never fall
    return (new.observed_at, new.resets_at or 0) > (cur.observed_at, cur.resets_at or 0)


def merge(samples):
    """{bucket: the reading that stands}. Within one window utilization only rises, so a lower
    reading of the same window is an old number shown again and never replaces a higher one; a
    wall stands until its reset or a reading of a later window; otherwise the newest wins. A wall
    that names no reset takes the reset another reading of its bucket knows."""
    samples = list(samples)
    best = {}
    for sample in samples:
        current = best.get(sample.bucket)
        if current is None or _wins(sample, current):
            best[sample.bucket] = sample
    for bucket, sample in best.items():
        if sample.wall and sample.resets_at is None:
            known = [s.resets_at for s in samples if s.bucket == bucket and s.resets_at is not None and s.resets_at > sample.observed_at]
            if known:
                best[bucket] = replace(sample, resets_at=min(known))
    return best


def for_account(samples, account):
    """(the readings of `account` or of no known account, the others): one decision, one account."""
    if account is None:
        return list(samples), []
    mine, others = [], []
    for s in samples:
        (mine if s.account in (None, account) else others).append(s)
    return mine, others


# --- bucket state ----------------------------------------------------------------------------


def fmt_pct(value):
    return f"{value:.0f}%" if abs(value - round(value)) < 0.05 else f"{value:.1f}%"


def minutes(seconds):
    return f"{max(0, seconds) / 60:.0f} min"


def bucket_state(sample, policy, now):
    """(state, why) of one bucket: hot, warm, cool or unknown."""
    if sample is None:
        return "unknown", "no reading"
    if sample.wall and sample.resets_at is None and now >= sample.observed_at + window_seconds(sample.bucket):
        return "unknown", "wall without a reset, its window has passed"
    if sample.resets_at is not None and now >= sample.resets_at:
        return "unknown", f"reset passed {minutes(now - sample.resets_at)} ago, no reading since"
    age = now - sample.observed_at
    if not sample.wall and age > policy.fresh_seconds:
        return "unknown", f"last reading {fmt_pct(sample.percent)} is {minutes(age)} old (stale)"
    if sample.percent >= policy.threshold:
        return "hot", f"{fmt_pct(sample.percent)} ≥ {fmt_pct(policy.threshold)}"
    if sample.percent < policy.resume:
        return "cool", f"{fmt_pct(sample.percent)} < {fmt_pct(policy.resume)}"
    return "warm", f"{fmt_pct(sample.percent)}"


def forecast(bucket, sample, history, policy, now):
    """Least-squares burn rate over the current window's recent readings, or None."""
    if sample is None or sample.wall or now - sample.observed_at > policy.fresh_seconds:
        return None
    if sample.resets_at is not None and now >= sample.resets_at:
        return None
    # One rule with merge: within a window readings never fall, so a point counts only when it
    # raises the level (the first time a value was seen); re-renders of a value are not new points.
    points, level = {}, None
    current = [x for x in history or () if not x.wall and x.observed_at <= now and now - x.observed_at <= FORECAST_WINDOW
               and (x.resets_at is None) == (sample.resets_at is None)
               and (x.resets_at is None or abs(x.resets_at - sample.resets_at) <= SAME_WINDOW_SLACK)]
    for x in sorted(current + [sample], key=lambda x: x.observed_at):
        if level is None or x.percent > level:
            points[x.observed_at], level = x.percent, x.percent
    if len(points) < 2:
        return None
    ts = sorted(points)
    if ts[-1] - ts[0] < FORECAST_MIN_SPAN:
        return None
    mean_t = sum(ts) / len(ts)
    mean_p = sum(points[t] for t in ts) / len(ts)
    var = sum((t - mean_t) ** 2 for t in ts)
    slope = sum((t - mean_t) * (points[t] - mean_p) for t in ts) / var  # percent per second
    if slope <= 0:
        return None
    projected = min(100.0, sample.percent + slope * (now - sample.observed_at))

    def eta(level):
        if projected >= level:
            return now
        at = now + (level - projected) / slope
        return at if sample.resets_at is None or at < sample.resets_at else None

    return Forecast(bucket, slope * 3600, projected, eta(policy.threshold), eta(100.0))


# --- the decision -----------------------------------------------------------------------------


def _first_healthy(targets):
    for health in targets:
        if health.healthy:
            return health
    return None


def _why_none(targets):
    if not targets:
        return "no spill target configured"
    return "no healthy target: " + "; ".join(f"{t.name}: {t.reason}" for t in targets)


def _weekly_hint(bucket, sample):
    return f"{bucket} {fmt_pct(sample.percent)} (weekly wall)"


def pin_command(targets):
    """The one `pin` suggestion (reason, notification, status): the first healthy target, else the first."""
    healthy = [t.name for t in targets if t.healthy]
    names = healthy or [t.name for t in targets] or ["openrouter"]
    return f"spillover pin {names[0]} --until-reset"


def _at_wall(sample, policy):
    return sample is not None and (sample.wall or sample.percent >= policy.threshold)


def downshift_for(walled, buckets, states, policy):
    """{"from", "to", "model", "bucket"} moving the walled tier's alias to the next tier down
    with headroom, or None when no tier below has any."""
    tier = model_tier(walled)
    if tier not in TIERS:
        return None
    models = dict(policy.plan_models)
    for lower in TIERS[TIERS.index(tier) + 1:]:
        bucket = f"seven_day_{lower}"
        if states.get(bucket, ("unknown",))[0] == "hot" and _at_wall(buckets.get(bucket), policy):
            continue
        if models.get(lower):
            return {"from": tier, "to": lower, "model": models[lower], "bucket": walled,
                    "resets_at": buckets[walled].resets_at, "variable": f"ANTHROPIC_DEFAULT_{tier.upper()}_MODEL"}
    return None


def _leave_spill(watch, sample, state, why, signals, policy, now, since):
    """(leave, reason) for a spill caused by `watch`: the explicit rule of leaving a spill.

    A working source that can read the plan while spilled confirms the reset: the spill ends when
    it reads the bucket under SPILLOVER_RESUME after the reset. When none works (or the bucket is
    one no source measures: a transcript's "usage limit", the usage credits), the bucket's own reset
    plus a short grace ends it.
    """
    if state == "cool":
        return True, f"{watch} back to {why}"
    confirmers = signals.confirmers
    can_confirm = bool(confirmers) if confirmers is not None else policy.confirm_resets
    can_confirm = can_confirm and measured(watch)
    resets_at = None if sample is None else sample.resets_at
    if resets_at is None and sample is not None and sample.wall:
        resets_at = sample.observed_at + window_seconds(watch)
    if resets_at is None and sample is None and since is not None:
        resets_at = since + window_seconds(watch)  # nothing knows the reset: the bucket's window from the flip
    if can_confirm or resets_at is None:
        return False, None
    if now >= resets_at + policy.grace_seconds:
        who = "no working source reads the plan while spilled" if measured(watch) else "no source measures it"
        return True, f"{watch} reset passed {minutes(now - resets_at)} ago; {who}, so the reset ends the spill"
    return False, None


def decide(prev, signals, policy, now):
    """The route for `now`. Stale or missing data never flips the route by itself."""
    answered = signals.plan_answered_at
    if answered is not None:
        kept = {b: s for b, s in signals.buckets.items()
                if not (s.wall and not is_model_bucket(b) and s.observed_at < answered <= now)}
        if len(kept) != len(signals.buckets):
            signals = replace(signals, buckets=kept)
    names = list(BUCKETS) + sorted(b for b in signals.buckets if is_model_bucket(b) and b not in BUCKETS)
    states, forecasts = {}, {}
    for bucket in names:
        sample = signals.buckets.get(bucket)
        state, why = bucket_state(sample, policy, now)
        fc = forecast(bucket, sample, signals.history.get(bucket), policy, now) if state != "unknown" else None
        if fc is not None:
            forecasts[bucket] = fc
            if state != "hot" and fc.threshold_at is not None and fc.threshold_at - now <= policy.lead_seconds:
                state = "hot"
                why = f"{fmt_pct(sample.percent)} → {fmt_pct(policy.threshold)} in ~{minutes(fc.threshold_at - now)} (forecast)"
        states[bucket] = (state, why)

    triggers = policy.triggers(names)
    hot = [b for b in triggers if states[b][0] == "hot"]
    walls_now = [b for b in names if (b == SEVEN_DAY or is_model_bucket(b)) and states[b][0] == "hot"
                 and _at_wall(signals.buckets[b], policy)]
    weekly_walls = [b for b in walls_now if b not in triggers and policy.notifies(b)]
    model_walls = [b for b in weekly_walls if is_model_bucket(b)]
    pin_cmd = pin_command(signals.targets)
    details = {
        "states": {b: {"state": s, "why": w} for b, (s, w) in states.items()},
        "forecasts": {b: f.to_json() for b, f in forecasts.items()},
        "weekly_walls": weekly_walls,
        "pin_command": pin_cmd,
        "targets": [
            {"name": t.name, "healthy": t.healthy, "reason": t.reason, "remaining": t.remaining} for t in signals.targets
        ],
    }

    def spill(hot_bucket, cause):
        target = _first_healthy(signals.targets)
        if target is None:
            return Decision("blocked", "blocked", f"{cause}; {_why_none(signals.targets)}", hot_bucket, details)
        return Decision(target.name, "spilled", cause, hot_bucket, details)

    # 1. A pin overrides everything while it lasts, unless its target's guard fails (then --force).
    pin = signals.pin
    if pin is not None and pin.active(now):
        until = "until further notice" if pin.until is None else "until the pin expires"
        pinned = {"route": pin.route, "until": pin.until, "force": pin.force}
        if pin.route == "plan":
            details["pin"] = pinned
            return Decision("plan", "plan", f"pinned to plan {until}", None, details)
        health = next((t for t in signals.targets if t.name == pin.route), None)
        if health is not None and (health.healthy or pin.force):
            details["pin"] = pinned
            forced = "" if health.healthy else f" (forced; guard says {health.reason})"
            return Decision(pin.route, "spilled", f"pinned to {pin.route} {until}{forced}", prev.hot_bucket, details)
        # Not followed: recorded as ignored, never as honoured.
        details["pin_ignored"] = health.reason if health is not None else f"{pin.route} is not in SPILLOVER_TARGETS"

    cause = "; ".join(f"{b} {states[b][1]}" for b in hot)

    # 2. Spilled: stay while the bucket that caused the spill is not over (follow the chain).
    left = None
    if prev.route not in NOT_SPILLED and not prev.pinned:
        if hot:
            return spill(prev.hot_bucket if prev.hot_bucket in hot else hot[0], cause)
        watch = prev.hot_bucket if isinstance(prev.hot_bucket, str) and prev.hot_bucket else FIVE_HOUR
        state, why = states.get(watch) or bucket_state(signals.buckets.get(watch), policy, now)
        leave, left = _leave_spill(watch, signals.buckets.get(watch), state, why, signals, policy, now, prev.since)
        if not leave:
            return spill(prev.hot_bucket, f"staying until {watch} reads under {fmt_pct(policy.resume)} ({why})")
        # Leaving: what the plan's state says now, in one flip (a weekly wall that came during the
        # spill blocks right away rather than a minute after a flip to the plan).

    # 3. On the plan (or blocked, or leaving a spill): spill when a trigger bucket is hot.
    if hot:
        if policy.extra_usage == "stay" and signals.extra_usage_on:
            reason = f"{cause}; Anthropic usage credits are on, staying on the plan (SPILLOVER_EXTRA_USAGE=stay)"
            return Decision("plan", "plan", reason, hot[0], details)
        return spill(hot[0], cause)
    shifts = []
    if policy.model_wall == "downshift" and model_walls:
        for bucket in model_walls:
            shift = downshift_for(bucket, signals.buckets, states, policy)
            if shift is not None:
                shifts.append(shift)
    shifted = {s["bucket"] for s in shifts}
    blocking = [b for b in weekly_walls if b not in shifted]
    details["weekly_walls"] = blocking
    if blocking:
        walls = ", ".join(_weekly_hint(b, signals.buckets[b]) for b in blocking)
        setting = "SPILLOVER_WEEKLY" if blocking[0] == SEVEN_DAY else "SPILLOVER_MODEL_WALL"
        value = policy.weekly if blocking[0] == SEVEN_DAY else policy.model_wall
        if shifts:
            details["downshift"] = shifts
        return Decision(
            "blocked", "blocked", f"{walls}; not spilling on weekly walls ({setting}={value}): `{pin_cmd}`",
            blocking[0], details,
        )
    if shifts:
        details["downshift"] = shifts
        moved = ", ".join(f"{s['from']}>{s['to']}" for s in shifts)
        why = "; ".join(f"{s['bucket']} {states[s['bucket']][1]}" for s in shifts)
        return Decision("plan", "plan", f"{why}: staying on the plan, downshifted {moved} until its reset", None, details)
    if left is None and prev.route == "blocked" and prev.hot_bucket in states and states[prev.hot_bucket][0] == "unknown":
        sample = signals.buckets.get(prev.hot_bucket)
        over = sample is not None and sample.resets_at is not None and now >= sample.resets_at + policy.grace_seconds
        if not over:
            # We do not know the wall is gone: stay blocked rather than claim the plan works.
            return Decision("blocked", "blocked", f"{prev.reason} (no fresh reading since)", prev.hot_bucket, details)
    if left is not None:
        return Decision("plan", "plan", left, None, details)
    reason = "; ".join(f"{b} {states[b][1]}" for b in (FIVE_HOUR,) if states[b][0] != "unknown")
    if not reason:
        reason = f"{FIVE_HOUR} {states[FIVE_HOUR][1]}"
    return Decision("plan", "plan", reason, None, details)
