"""`spillover check`: the exit status says plan / spilled / blocked / stale, from state.json alone.

This runs in scripts and prompts, so it imports only os, sys, json and enum (exit codes, sanitize) (no argparse, dataclasses,
pathlib, dotenv or requests): see `make bench`.
"""

import json
import os
import sys
import time

from spillover import paths
from spillover.exitcodes import ExitCode
from spillover.sanitize import number

EXIT_BY_STATUS = {"plan": ExitCode.PLAN, "spilled": ExitCode.SPILLED, "blocked": ExitCode.BLOCKED}
USAGE_TEXT = "usage: spillover check [-q|--quiet] [--json]"


def read(now=None):
    """(exit code, summary dict) of the current decision."""
    now = time.time() if now is None else now
    path = paths.state_path(paths.STATE_JSON)
    try:
        with open(path, encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        return ExitCode.STALE, {"status": "unknown", "route": None, "stale": True, "reason": "no tick has run yet: run `spillover tick` (and `spillover install schedule`)"}
    except (OSError, ValueError) as exc:
        return ExitCode.STALE, {"status": "unknown", "route": None, "stale": True, "reason": f"{path} is unreadable ({exc.__class__.__name__}); the next tick rebuilds it"}
    if not isinstance(state, dict):
        return ExitCode.STALE, {"status": "unknown", "route": None, "stale": True, "reason": f"{path} is damaged; the next tick rebuilds it"}
    config_error = state.get("config_error")
    if isinstance(config_error, str) and config_error:
        # the tick stops at a broken config (it keeps the route in place): exit 1, as for any error
        return ExitCode.ERROR, {"status": "error", "route": state.get("route"), "stale": True,
                                "reason": f"config error: {config_error[:300]}; see `spillover doctor`"}
    decided = number(state.get("decided_at"))
    # nan or 1e300 as a staleness would make a month-old decision look fresh: a day at most.
    stale_after = number(state.get("stale_after"), minimum=0, maximum=86400)
    stale_after = 300 if stale_after is None else stale_after
    env_minutes = number(os.environ.get("SPILLOVER_STALE_MINUTES") or None, strings=True, minimum=0, maximum=1440)
    if env_minutes is not None:
        stale_after = env_minutes * 60
    age = None if decided is None else now - decided
    text = lambda key, default=None: state.get(key) if isinstance(state.get(key), str) else default  # noqa: E731
    summary = {
        "route": text("route"),
        "status": text("status", "unknown"),
        "reason": text("reason", ""),
        "decided_at": decided,
        "age_seconds": None if age is None else round(age, 1),
        # a decision from the future (a skewed or damaged clock) is not fresh either
        "stale": age is None or age > stale_after or age < -300,
        "pin": state.get("pin") if isinstance(state.get("pin"), dict) else None,
        "hot_bucket": text("hot_bucket"),
        "buckets": _buckets(state.get("buckets")),
    }
    details = state.get("details") if isinstance(state.get("details"), dict) else {}
    shift = details.get("downshift_text")
    summary["downshift"] = shift if isinstance(shift, str) and shift and summary["route"] == "plan" else None
    if summary["stale"]:
        when = "never" if age is None else f"{age / 60:.0f} min ago"
        summary["reason"] = f"last decision {when} (route {summary['route']}): the cron tick seems not to run; see `spillover doctor`"
        return ExitCode.STALE, summary
    blind = details.get("blind")
    if isinstance(blind, str) and blind:
        # Blind: the route in place stands, but nothing says whether the plan is at a wall.
        summary["blind"] = True
        summary["reason"] = f"blind: {blind} (route {summary['route']} kept)"
        return ExitCode.STALE, summary
    return EXIT_BY_STATUS.get(summary["status"], ExitCode.STALE), summary


def _buckets(buckets):
    """{bucket: {percent, resets_at}} of state.json's buckets (per-model weekly ones included)."""
    if not isinstance(buckets, dict):
        return {}
    return {name: {"percent": number(b.get("percent")), "resets_at": number(b.get("resets_at"))}
            for name, b in list(buckets.items())[:32] if isinstance(name, str) and isinstance(b, dict)}


def main(argv):
    quiet = as_json = False
    for arg in argv:
        if arg in ("-q", "--quiet"):
            quiet = True
        elif arg == "--json":
            as_json = True
        elif arg in ("-h", "--help"):
            print(USAGE_TEXT + "\n\nexit status: 0 plan, 3 spilled, 4 blocked, 5 stale or unknown (blind), 1 error, 2 usage")
            return ExitCode.PLAN
        else:
            print(f"{USAGE_TEXT}\nspillover check: unknown argument {arg!r}", file=sys.stderr)
            return ExitCode.USAGE
    code, summary = read()
    summary["exit"] = code
    if as_json:
        print(json.dumps(summary, sort_keys=True))
    elif not quiet:
        route = summary.get("route") or "unknown"
        pin = summary.get("pin")
        pinned = " [pinned]" if isinstance(pin, dict) and pin.get("honoured") else ""
        shifted = f" [{summary['downshift']}]" if summary.get("downshift") else ""
        if code == ExitCode.ERROR:
            print(f"error: {summary['reason']}")
        elif code != ExitCode.STALE:
            print(f"{route}{pinned}{shifted}: {summary.get('reason', '')}")
        else:
            print(summary["reason"] if summary.get("blind") else f"stale: {summary['reason']}")
    return code
