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

from dataclasses import dataclass, field

FIVE_HOUR = "five_hour"
WEEKLY = ("seven_day", "seven_day_opus", "seven_day_sonnet", "seven_day_fable")
HOT = (FIVE_HOUR, "unknown", "overage")  # buckets that flip the route by themselves
BUCKETS = HOT + WEEKLY
# Buckets that some source reports as numbers; the others only ever come from a transcript wall.
MEASURED = (FIVE_HOUR,) + WEEKLY
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
    wall: bool = False  # a wall hit read from a transcript: believable until resets_at

    def to_json(self):
        return {
            "percent": round(self.percent, 2),
            "resets_at": self.resets_at,
            "observed_at": self.observed_at,
            "source": self.source,
            "wall": self.wall,
        }

    @classmethod
    def from_json(cls, bucket, data):
        return cls(
            bucket=bucket,
            percent=float(data["percent"]),
            observed_at=float(data["observed_at"]),
            source=str(data.get("source", "?")),
            resets_at=None if data.get("resets_at") is None else float(data["resets_at"]),
            wall=bool(data.get("wall", False)),
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
    weekly: str = "notify"  # notify | spill | ignore
    extra_usage: str = "spill"  # spill | stay
    lead_seconds: float = 300.0
    fresh_seconds: float = 900.0
    # Some source can read the plan while spilled (oauth or a meter command). Without one, nothing
    # will ever confirm a reset, so the reset itself ends the spill.
    confirm_resets: bool = True

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
            lead_seconds=cfg.lead_minutes * 60,
            fresh_seconds=cfg.fresh_minutes * 60,
            confirm_resets=confirm_resets,
        )

    @property
    def triggers(self):
        return HOT + (WEEKLY if self.weekly == "spill" else ())


@dataclass(frozen=True)
class Signals:
    buckets: dict = field(default_factory=dict)  # bucket -> Sample (merged: newest wins)
    history: dict = field(default_factory=dict)  # bucket -> [Sample] of recent readings, any order
    targets: tuple = ()  # TargetHealth, in chain order
    extra_usage_on: bool | None = None  # Anthropic's own usage credits carry the plan past a wall
    pin: Pin | None = None


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


def merge(samples):
    """Per bucket, the newest sample wins; on a tie a wall hit wins (it is the stronger statement).

    Within one window utilization only rises, so a lower reading of the same window is an old
    number shown again (an idle Claude Code session re-rendering its status line): it never
    replaces a higher one.
    """
    best = {}
    for sample in samples:
        current = best.get(sample.bucket)
        if current is None:
            best[sample.bucket] = sample
            continue
        newer = (sample.observed_at, sample.wall) > (current.observed_at, current.wall)
        if not sample.wall and not current.wall and same_window(sample, current) and sample.percent != current.percent:
            newer = sample.percent > current.percent
        if newer:
            best[sample.bucket] = sample
    return best


# --- bucket state ----------------------------------------------------------------------------


def fmt_pct(value):
    return f"{value:.0f}%" if abs(value - round(value)) < 0.05 else f"{value:.1f}%"


def minutes(seconds):
    return f"{max(0, seconds) / 60:.0f} min"


def bucket_state(sample, policy, now):
    """(state, why) of one bucket: hot, warm, cool or unknown."""
    if sample is None:
        return "unknown", "no reading"
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
    points = {}
    for s in history or ():
        if s.wall or s.observed_at > now or now - s.observed_at > FORECAST_WINDOW:
            continue
        if (s.resets_at is None) != (sample.resets_at is None):
            continue
        if s.resets_at is not None and abs(s.resets_at - sample.resets_at) > SAME_WINDOW_SLACK:
            continue  # a reading of an earlier window
        points[s.observed_at] = s.percent
    points[sample.observed_at] = sample.percent
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


def decide(prev, signals, policy, now):
    """The route for `now`. Stale or missing data never flips the route by itself."""
    states, forecasts = {}, {}
    for bucket in BUCKETS:
        sample = signals.buckets.get(bucket)
        state, why = bucket_state(sample, policy, now)
        fc = forecast(bucket, sample, signals.history.get(bucket), policy, now) if state != "unknown" else None
        if fc is not None:
            forecasts[bucket] = fc
            if state != "hot" and fc.threshold_at is not None and fc.threshold_at - now <= policy.lead_seconds:
                state = "hot"
                why = f"{fmt_pct(sample.percent)} → {fmt_pct(policy.threshold)} in ~{minutes(fc.threshold_at - now)} (forecast)"
        states[bucket] = (state, why)

    hot = [b for b in policy.triggers if states[b][0] == "hot"]
    weekly_walls = [
        b for b in WEEKLY if states[b][0] == "hot" and signals.buckets[b].percent >= policy.threshold
    ]
    details = {
        "states": {b: {"state": s, "why": w} for b, (s, w) in states.items()},
        "forecasts": {b: f.to_json() for b, f in forecasts.items()},
        "weekly_walls": weekly_walls,
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
        details["pin"] = {"route": pin.route, "until": pin.until, "force": pin.force}
        until = "until further notice" if pin.until is None else "until the pin expires"
        if pin.route == "plan":
            return Decision("plan", "plan", f"pinned to plan {until}", None, details)
        health = next((t for t in signals.targets if t.name == pin.route), None)
        if health is not None and (health.healthy or pin.force):
            forced = "" if health.healthy else f" (forced; guard says {health.reason})"
            return Decision(pin.route, "spilled", f"pinned to {pin.route} {until}{forced}", prev.hot_bucket, details)
        details["pin_ignored"] = health.reason if health is not None else f"{pin.route} is not in SPILLOVER_TARGETS"

    cause = "; ".join(f"{b} {states[b][1]}" for b in hot)

    # 2. Spilled: stay until the hot bucket reads cool from fresh data; follow the chain.
    if prev.route not in NOT_SPILLED and not prev.pinned:
        if hot:
            return spill(prev.hot_bucket if prev.hot_bucket in hot else hot[0], cause)
        watch = prev.hot_bucket if prev.hot_bucket in MEASURED and prev.hot_bucket in policy.triggers else FIVE_HOUR
        state, why = states[watch]
        if state == "cool":
            return Decision("plan", "plan", f"{watch} back to {why}", None, details)
        sample = signals.buckets.get(watch)
        if not policy.confirm_resets and sample is not None and sample.resets_at is not None and now >= sample.resets_at:
            reason = f"{watch} reset passed; no enabled source reads the plan while spilled (oauth or a meter command), so the reset ends the spill"
            return Decision("plan", "plan", reason, None, details)
        wait = f"staying until {watch} reads under {fmt_pct(policy.resume)} ({why})"
        moved = spill(prev.hot_bucket, wait)
        return moved

    # 3. On the plan (or blocked): spill when a trigger bucket is hot.
    if hot:
        if policy.extra_usage == "stay" and signals.extra_usage_on:
            reason = f"{cause}; Anthropic usage credits are on, staying on the plan (SPILLOVER_EXTRA_USAGE=stay)"
            return Decision("plan", "plan", reason, hot[0], details)
        return spill(hot[0], cause)
    if weekly_walls and policy.weekly == "notify":
        walls = ", ".join(_weekly_hint(b, signals.buckets[b]) for b in weekly_walls)
        pin_cmd = f"spillover pin {signals.targets[0].name if signals.targets else 'openrouter'} --until-reset"
        return Decision(
            "blocked", "blocked", f"{walls}; not spilling on weekly walls (SPILLOVER_WEEKLY=notify): `{pin_cmd}`",
            weekly_walls[0], details,
        )
    if prev.route == "blocked" and prev.hot_bucket in BUCKETS and states[prev.hot_bucket][0] == "unknown":
        # We do not know the wall is gone: stay blocked rather than claim the plan works.
        return Decision("blocked", "blocked", f"{prev.reason} (no fresh reading since)", prev.hot_bucket, details)
    reason = "; ".join(f"{b} {states[b][1]}" for b in (FIVE_HOUR,) if states[b][0] != "unknown")
    if not reason:
        reason = f"{FIVE_HOUR} {states[FIVE_HOUR][1]}"
    return Decision("plan", "plan", reason, None, details)
