"""`spillover pin` / `unpin`: the manual switch, with an expiry."""

import os
import re
import time

from spillover import fsutil, paths
from spillover.errors import SpilloverError, UsageError
from spillover.fmt import clock

DEFAULT_PIN = 5 * 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text):
    """'30m', '2h', '1d', '1h30m' → seconds (more than zero; a bare number is refused: minutes or days?)."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        raise UsageError(f"duration {text!r}: add a unit: {text}d, {text}h, {text}m")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"duration {text!r}: expected e.g. 30m, 2h, 1d or 1h30m")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise UsageError(f"duration {text!r}: must be longer than zero (to end a pin now: spillover unpin)")
    return seconds


def pin(cfg, route, for_=None, until_reset=False, force=False, now=None):
    """Pin `route` ("plan" or a target) for `for_` (a duration text; default 5h) or until the hot
    bucket resets; refuse an unhealthy target unless `force`. Publishes it right away."""
    from spillover import targets, tick
    from spillover.state import State, save_pin

    now = time.time() if now is None else now
    state_dir = fsutil.ensure_state_dir()
    state, _ = State.load(state_dir)
    if until_reset:
        hot = state.hot_bucket or "five_hour"
        resets = (state.buckets.get(hot) or {}).get("resets_at")
        if not resets or resets <= now:
            raise SpilloverError(f"no known reset for {hot}: use --for DURATION instead")
        until = float(resets)
    else:
        until = now + (parse_duration(for_) if for_ else DEFAULT_PIN)
    if route != "plan":
        if route not in cfg.targets:
            raise SpilloverError(f"{route} is not in SPILLOVER_TARGETS ({','.join(cfg.targets)})")
        health = state.target_health(route)
        if health is None:
            target = targets.get(route)
            ctx = targets.TargetContext(now, True, dict(getattr(state, target.record_key) or {}) if target.record_key else {})
            h = target.health(cfg, ctx)
            health = {"healthy": h.healthy, "reason": h.reason}
        if not health["healthy"] and not force:
            raise SpilloverError(f"refusing to pin {route}: {health['reason']} (use --force to pin anyway)")
    save_pin(state_dir, route, until, force, now)
    _publish(cfg, now)
    print(f"pinned to {route} until {clock(until)}"
          "; new `claude` processes pick it up (spillover unpin to undo)")
    return 0


def unpin(cfg=None, now=None):
    """Remove the pin and publish the route the plan's state gives."""
    from spillover import config

    path = paths.state_path(paths.PIN_JSON)
    if not os.path.exists(path):
        print("no pin")
        return 0
    os.unlink(path)
    _publish(cfg or config.load(), now)
    print("pin removed; the route follows the plan's quota again")
    return 0


def _publish(cfg, now):
    """Publish the route now. A tick already running read pin.json before this change and would
    write the old route: wait for it to end (up to its hard deadline), then tick, so the route
    reported is the one in the files."""
    from spillover import tick

    try:
        tick.run(cfg, now=now, wait=tick.deadline_seconds(cfg) + 1)
    except tick.Busy:
        raise SpilloverError("a running tick holds the lock past its deadline; the pin is saved and the next tick publishes it") from None
