"""`spillover status`: what spillover knows and why it routes the way it does."""

import json
import os
import time

from spillover import fastcheck, paths, policy
from spillover.exitcodes import ExitCode
from spillover.fmt import ago, clock, until  # noqa: F401 (history and doctor import them from here)
from spillover.targets.openrouter import money


def collect(cfg, now=None, config_error=None):
    """Everything status shows, as one JSON-ready dict."""
    now = time.time() if now is None else now
    code, summary = fastcheck.read(now)
    from spillover.state import State  # the same repair of damaged fields the tick does

    state = State.load(paths.state_dir())[0] if os.path.exists(paths.state_path(paths.STATE_JSON)) else State(route=None)
    details = state.details
    states = details.get("states", {})
    forecasts = details.get("forecasts", {})
    buckets = []
    for name, data in state.buckets.items():
        entry = {
            "bucket": name,
            "percent": data.get("percent"),
            "resets_at": data.get("resets_at"),
            "resets_in_seconds": None if data.get("resets_at") is None else round(data["resets_at"] - now),
            "source": data.get("source"),
            "observed_at": data.get("observed_at"),
            "age_seconds": None if data.get("observed_at") is None else round(now - data["observed_at"]),
            "state": (states.get(name) or {}).get("state"),
            "why": (states.get(name) or {}).get("why"),
            "wall": data.get("wall", False),
        }
        fc = forecasts.get(name)
        if fc:
            entry["forecast"] = fc
            if fc.get("wall_at"):
                entry["wall_in_minutes"] = round((fc["wall_at"] - now) / 60, 1)
        buckets.append(entry)
    order = {b: i for i, b in enumerate(policy.BUCKETS)}
    buckets.sort(key=lambda e: order.get(e["bucket"], 99))
    budget = state.budget
    oauth = state.source("oauth")
    problems = list(state.problems)
    config_error = config_error or state.config_error
    if config_error:
        problems.insert(0, f"config: {config_error}; the route in place is kept until the config is fixed")
    return {
        "config_error": config_error,
        "route": summary.get("route"),
        "status": summary.get("status"),
        "exit": code,
        "reason": state.reason if code != ExitCode.STALE else summary.get("reason"),
        "route_reason": state.route_reason,
        "route_since": state.route_since,
        "decided_at": state.decided_at,
        "stale": summary.get("stale", True),
        "pin": state.pin,
        "pin_ignored": details.get("pin_ignored"),
        "buckets": buckets,
        "weekly_walls": details.get("weekly_walls") or [],
        "targets": state.targets_health(),
        "budget": {
            "key": budget.get("key"),
            "credits": budget.get("credits"),
            "fetched_at": budget.get("fetched_at"),
            "error": budget.get("error"),
            "credits_error": budget.get("credits_error"),
        },
        "sources": state.sources,
        "oauth_backoff_until": oauth.backoff_until if (oauth.backoff_until or 0) > now else None,
        "extra_usage": state.extra_usage or None,
        "problems": problems,
        "thresholds": state.thresholds or {"threshold": cfg.threshold, "resume": cfg.resume},
        "state_dir": paths.state_dir(),
        "config_file": cfg.path,
    }


def show(cfg, as_json=False, out=None, config_error=None):
    import sys

    out = out or sys.stdout
    now = time.time()
    data = collect(cfg, now, config_error)
    if as_json:
        out.write(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
        return 0
    w = out.write
    route = data["route"] or "unknown"
    pin = data["pin"]
    pinned = ""
    if pin and pin.get("honoured"):
        pinned = f"  [pinned to {pin['route']}" + (f" until {clock(pin['until'])}" if pin.get("until") else "") + "]"
    w(f"route   {route} ({data['status']}){pinned}\n")
    w(f"why     {data['reason'] or '-'}\n")
    if data["route_since"]:
        w(f"since   {clock(data['route_since'])} ({ago(now - data['route_since'])}): {data['route_reason'] or '-'}\n")
    if data["pin_ignored"]:
        w(f"pin     ignored: {data['pin_ignored']}\n")
    decided = data["decided_at"]
    w(f"tick    last {ago(None if decided is None else now - decided)}" + ("  ✖ STALE: is the scheduled tick running? (spillover doctor)" if data["stale"] else "") + "\n")
    w("\nbucket             used   resets in  source       age     state\n")
    if not data["buckets"]:
        w("  (no readings yet)\n")
    for b in data["buckets"]:
        pct = "-" if b["percent"] is None else f"{b['percent']:.0f}%"
        extra = ""
        if b.get("wall_in_minutes") is not None:
            extra = f"  wall in ~{b['wall_in_minutes']:.0f} min"
        w(f"  {b['bucket']:<16} {pct:>5}   {until(b['resets_in_seconds']):>9}  {b['source'] or '-':<11} {ago(b['age_seconds']):>8}  {b['state'] or '-'}{extra}\n")
    for wall in data["weekly_walls"]:
        w(f"  ⚠ {wall} is at the wall: spillover does not spill on weekly walls unless SPILLOVER_WEEKLY=spill or you pin\n")
    w("\ntargets\n")
    if not data["targets"]:
        w("  (none evaluated yet)\n")
    for t in data["targets"]:
        w(f"  {'✔' if t['healthy'] else '✖'} {t['name']:<11} {t['reason']}\n")
    key = (data["budget"] or {}).get("key")
    if key:
        remaining = "unlimited" if key.get("limit_remaining") is None else money(key["limit_remaining"])
        w(f"  openrouter key: remaining {remaining}, spent today {money(key.get('usage_daily'))}, this month {money(key.get('usage_monthly'))}"
          f" (as of {ago(now - data['budget']['fetched_at']) if data['budget'].get('fetched_at') else 'never'})\n")
    w("\nsources\n")
    for name, rec in sorted((data["sources"] or {}).items()):
        if rec.get("error"):
            line = f"✖ {rec['error']}"
        else:
            line = f"✔ ok, last read {ago(now - rec['last_ok_at'])}" if rec.get("last_ok_at") else "✔ ok"
        if name == "oauth":
            if data["oauth_backoff_until"]:
                line += f"; backing off until {clock(data['oauth_backoff_until'])}"
            elif rec.get("due") and rec["due"] != "backing off":  # a backoff that ended is no reason
                line += f"; next poll: {rec['due']}"
        if name == "transcripts" and rec.get("last_activity"):
            line += f"; last activity {ago(now - rec['last_activity'])}"
        w(f"  {name:<11} {line}\n")
    extra = data["extra_usage"] or {}
    if extra.get("enabled") is not None:
        on = "on: Claude Code continues on Anthropic usage credits at a wall" if extra["enabled"] else f"off ({extra.get('reason') or 'disabled'})"
        w(f"  usage credits {on}; SPILLOVER_EXTRA_USAGE={cfg.extra_usage}\n")
    for problem in data["problems"]:
        w(f"\n⚠ {problem}\n")
    return 0
