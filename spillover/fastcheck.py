"""`spillover check`: the exit status says plan / spilled / blocked / stale, from state.json alone.

This runs in scripts and prompts, so it imports only os, sys and json (no argparse, dataclasses,
pathlib, dotenv or requests): see `make bench`.
"""

import json
import os
import sys
import time

from spillover import paths

PLAN, ERROR, USAGE, SPILLED, BLOCKED, STALE = 0, 1, 2, 3, 4, 5
EXIT_BY_STATUS = {"plan": PLAN, "spilled": SPILLED, "blocked": BLOCKED}
USAGE_TEXT = "usage: spillover check [-q|--quiet] [--json]"


def read(now=None):
    """(exit code, summary dict) of the current decision."""
    now = time.time() if now is None else now
    path = paths.state_path(paths.STATE_JSON)
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return STALE, {"status": "unknown", "route": None, "stale": True, "reason": "no tick has run yet: run `spillover tick` (and `spillover install schedule`)"}
    except (OSError, ValueError) as exc:
        return STALE, {"status": "unknown", "route": None, "stale": True, "reason": f"{path} is unreadable ({exc.__class__.__name__}); the next tick rebuilds it"}
    if not isinstance(state, dict):
        return STALE, {"status": "unknown", "route": None, "stale": True, "reason": f"{path} is damaged; the next tick rebuilds it"}
    decided = state.get("decided_at")
    if isinstance(decided, bool) or not isinstance(decided, (int, float)):
        decided = None
    stale_after = _minutes_or(state.get("stale_after"), 300)
    env_stale = os.environ.get("SPILLOVER_STALE_MINUTES")
    if env_stale:
        try:
            stale_after = _minutes_or(float(env_stale) * 60, stale_after)
        except ValueError:
            pass
    age = None if decided is None else now - decided
    summary = {
        "route": state.get("route"),
        "status": state.get("status", "unknown"),
        "reason": state.get("reason", ""),
        "decided_at": decided,
        "age_seconds": None if age is None else round(age, 1),
        "stale": age is None or age > stale_after,
        "pin": state.get("pin"),
        "hot_bucket": state.get("hot_bucket"),
    }
    if summary["stale"]:
        when = "never" if age is None else f"{age / 60:.0f} min ago"
        summary["reason"] = f"last decision {when} (route {summary['route']}): the cron tick seems not to run; see `spillover doctor`"
        return STALE, summary
    return EXIT_BY_STATUS.get(summary["status"], STALE), summary


def _minutes_or(seconds, default):
    """`seconds` when it is a sane staleness (a number of seconds from 0 to a day), else `default`:
    nan or 1e300 would make a month-old decision look fresh."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 86400:
        return default
    return seconds


def main(argv):
    quiet = as_json = False
    for arg in argv:
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg == "--json":
            as_json = True
        elif arg in ("-h", "--help"):
            print(USAGE_TEXT + "\n\nexit status: 0 plan, 3 spilled, 4 blocked, 5 stale or unknown, 1 error, 2 usage")
            return PLAN
        else:
            print(f"{USAGE_TEXT}\nspillover check: unknown argument {arg!r}", file=sys.stderr)
            return USAGE
    code, summary = read()
    summary["exit"] = code
    if as_json:
        print(json.dumps(summary, sort_keys=True))
    elif not quiet:
        route = summary.get("route") or "unknown"
        pin = summary.get("pin")
        pinned = " [pinned]" if isinstance(pin, dict) and pin.get("honoured") else ""
        print(f"{route}{pinned}: {summary.get('reason', '')}" if code != STALE else f"stale: {summary['reason']}")
    return code
