"""`spillover pin` / `unpin`: the manual switch, with an expiry."""

import os
import re
import time

from spillover import paths, publish
from spillover.errors import SpilloverError, UsageError
from spillover.fmt import clock

DEFAULT_PIN = 5 * 3600
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text):
    """'90', '30m', '2h', '1d', '1h30m' → seconds."""
    text = text.strip().lower()
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text) * 60
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise UsageError(f"duration {text!r}: expected e.g. 30m, 2h, 1d or 1h30m")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def pin(cfg, args, now=None):
    from spillover import tick

    now = time.time() if now is None else now
    state, _ = tick.load_state(publish.ensure_state_dir())
    if args.until_reset:
        hot = state.get("hot_bucket") or "five_hour"
        resets = ((state.get("buckets") or {}).get(hot) or {}).get("resets_at")
        if not resets or resets <= now:
            raise SpilloverError(f"no known reset for {hot}: use --for DURATION instead")
        until = float(resets)
    else:
        until = now + (parse_duration(args.duration) if args.duration else DEFAULT_PIN)
    if args.route != "plan":
        if args.route not in cfg.targets:
            raise SpilloverError(f"{args.route} is not in SPILLOVER_TARGETS ({','.join(cfg.targets)})")
        health = next((t for t in (state.get("details") or {}).get("targets", []) if t["name"] == args.route), None)
        if health is None:
            health = _health_now(cfg, args.route, state, now)
        if not health["healthy"] and not args.force:
            raise SpilloverError(f"refusing to pin {args.route}: {health['reason']} (use --force to pin anyway)")
    publish.write_json(paths.state_path(paths.PIN_JSON), {"route": args.route, "until": until, "force": bool(args.force), "set_at": now})
    try:
        tick.run(cfg, now=now)  # publish the pinned route right away
    except tick.Busy:
        pass
    print(f"pinned to {args.route} until {clock(until)}"
          "; new `claude` processes pick it up (spillover unpin to undo)")
    return 0


def _health_now(cfg, name, state, now):
    from spillover import tick

    if name == "openrouter":
        h = tick.openrouter_health(cfg, tick.read_budget(cfg, state, now, True), now)
    elif name == "anthropic":
        h = tick.anthropic_health(cfg)
    else:
        h = tick.gateway_health(cfg)
    return {"healthy": h.healthy, "reason": h.reason}


def unpin(now=None):
    from spillover import config, tick

    path = paths.state_path(paths.PIN_JSON)
    if not os.path.exists(path):
        print("no pin")
        return 0
    os.unlink(path)
    try:
        tick.run(config.load(), now=now)
    except tick.Busy:
        pass
    print("pin removed; the route follows the plan's quota again")
    return 0
