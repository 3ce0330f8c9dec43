"""`spillover history`: flips with reasons, time on each route, and what the OpenRouter spills cost.

Reads `<state dir>/history.jsonl`, one record per flip written by the tick:
{at, from, route, reason, hot_bucket, openrouter_usage}. The key's all-time `usage` at the flip in
and at the flip back gives the spend of a spill; a spill still running is measured against the
latest `budget.key.usage` in state.json. The key's usage counts every request made with it, so a
key shared with other tools over-counts: `spillover setup openrouter-key` makes a dedicated one.
"""

import json
import os
import sys
import time

from spillover import fsutil, paths, policy
from spillover.sanitize import number
from spillover.pins import parse_duration
from spillover.redact import redact
from spillover.status import clock, until


def _span(seconds):
    return "0m" if seconds < 30 else until(seconds)


def _usage(value):
    return number(value)


def collect(since_seconds, now=None, from_first_tick=False):
    now = time.time() if now is None else now
    start = now - since_seconds
    from spillover.state import State  # the same repair of damaged fields the tick does

    raw = fsutil.read_json(paths.state_path(paths.STATE_JSON), default={})
    loaded = State.from_json(raw if isinstance(raw, dict) else {})[0]
    key = loaded.budget.get("key")
    state = {"route": loaded.route, "route_since": loaded.route_since, "budget": {"key": key if isinstance(key, dict) else {}}}
    records = [r for r in fsutil.read_jsonl(paths.state_path(paths.HISTORY_JSONL))
               if isinstance(r.get("at"), (int, float)) and isinstance(r.get("route"), str)]
    records.sort(key=lambda r: r["at"])
    # Nothing is known before the first tick: a window reaching further back starts there.
    known = [t for t in (number(state.get("route_since")), records[0]["at"] if records else None) if t is not None]
    clipped = from_first_tick and bool(known) and min(known) > start
    if clipped:
        start = min(known)

    # Route at the start of the window: the last flip before it, else the first flip's origin.
    before = [r for r in records if r["at"] < start]
    inside = [r for r in records if start <= r["at"] <= now]
    if before:
        route = before[-1]["route"]
    elif inside:
        route = inside[0].get("from") or "plan"
    else:
        route = state.get("route") or "plan"

    time_on = {}
    cursor = start
    for rec in inside:
        time_on[route] = time_on.get(route, 0.0) + rec["at"] - cursor
        route, cursor = rec["route"], rec["at"]
    time_on[route] = time_on.get(route, 0.0) + now - cursor

    # Spills: every stay on a target that overlaps the window, with the OpenRouter spend.
    current_usage = _usage(((state.get("budget") or {}).get("key") or {}).get("usage"))
    spills, open_spill = [], None
    for rec in records:
        if open_spill is not None:
            open_spill.update(end=rec["at"], end_usage=_usage(rec.get("openrouter_usage")))
            spills.append(open_spill)
            open_spill = None
        if rec["route"] not in policy.NOT_SPILLED:
            open_spill = {"route": rec["route"], "start": rec["at"], "end": None,
                          "start_usage": _usage(rec.get("openrouter_usage")), "end_usage": None, "reason": rec.get("reason")}
    if open_spill is not None:
        open_spill["end_usage"] = current_usage
        spills.append(open_spill)
    shown = []
    for spill in spills:
        end = spill["end"] if spill["end"] is not None else now
        if end < start:
            continue
        spend = None
        if spill["route"] == "openrouter" and spill["start_usage"] is not None and spill["end_usage"] is not None:
            spend = round(max(0.0, spill["end_usage"] - spill["start_usage"]), 6)
        shown.append({
            "route": spill["route"], "start": spill["start"], "end": spill["end"], "running": spill["end"] is None,
            "seconds": round(end - spill["start"]), "spend": spend, "reason": redact(spill["reason"] or ""),
        })
    openrouter = [s for s in shown if s["route"] == "openrouter"]
    return {
        "since": start,
        "since_first_tick": clipped,
        "now": now,
        "route": state.get("route"),
        "flips": [{"at": r["at"], "from": r.get("from"), "to": r["route"], "reason": redact(r.get("reason") or ""),
                   "hot_bucket": r.get("hot_bucket"), "downshift": _downshift(r)} for r in inside],
        "time_on_route": {k: round(v) for k, v in sorted(time_on.items(), key=lambda kv: -kv[1]) if v > 0},
        "spills": shown,
        "openrouter_spend": round(sum(s["spend"] for s in openrouter if s["spend"] is not None), 6),
        "openrouter_spend_complete": all(s["spend"] is not None for s in openrouter),
    }


def _downshift(record):
    """The downshift a history line started ("fable>opus"), or None (none, or it ended there)."""
    value = record.get("downshift")
    return redact(value) if isinstance(value, str) and value else None


def windows(data):
    """The five-hour windows of a `collect()` answer as charts.Window rows: the route across each
    (from the flips), its peak and weekly peaks (from samples.jsonl), spill minutes and spend."""
    from spillover import charts, samples

    since, now = data["since"], data["now"]
    first = data["flips"][0]["from"] if data["flips"] else None
    # A model-wall downshift keeps the route on the plan; the timeline draws it as its own segment.
    changes = [(since, first or data["route"] or "plan")] + [
        (f["at"], "downshift" if f["to"] == "plan" and f.get("downshift") else f["to"]) for f in data["flips"]]
    readings = [(s.observed_at, s.bucket, s.percent, s.resets_at)
                for s in samples.read(paths.state_path(paths.SAMPLES_JSONL), since=since - charts.FIVE_HOURS)]
    spends = [(s["start"], s["spend"]) for s in data["spills"] if s["spend"] is not None]
    return charts.build_windows(charts.route_spans(changes, since, now), readings, since, now, spends)


def run(since="7d", as_json=False, chart=False, out=None):
    out = out or sys.stdout
    seconds = parse_duration(since)
    data = collect(seconds, from_first_tick=True)
    if chart and not as_json:
        from spillover import charts

        out.write(charts.timeline(windows(data), charts.style_for(out, os.environ)) + "\n")
        return 0
    if as_json:
        out.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
        return 0
    w = out.write
    if data["since_first_tick"]:
        w(f"since the first tick, {clock(data['since'])} ({_span(data['now'] - data['since'])} ago; you asked for {since})\n\n")
    else:
        w(f"since {clock(data['since'])} ({since})\n\n")
    if not os.path.exists(paths.state_path(paths.HISTORY_JSONL)):
        w("no flips recorded yet (the tick writes history.jsonl when the route changes)\n\n")
    w("flips\n")
    if not data["flips"]:
        w("  (none in this window)\n")
    for f in data["flips"]:
        w(f"  {clock(f['at'])}  {f['from'] or '?'} → {f['to']}: {f['reason']}\n")
    w("\ntime on each route\n")
    total = max(1.0, data["now"] - data["since"])
    for route, seconds in data["time_on_route"].items():
        w(f"  {route:<11} {_span(seconds):>8}  {100 * seconds / total:5.1f}%\n")
    if data["spills"]:
        w("\nspills\n")
        for s in data["spills"]:
            end = "now (running)" if s["running"] else clock(s["end"])
            cost = "" if s["route"] != "openrouter" else ("  spend unknown" if s["spend"] is None else f"  spent ${s['spend']:,.2f}")
            w(f"  {clock(s['start'])} → {end}  {s['route']:<10} {_span(s['seconds']):>8}{cost}\n")
    spend = f"${data['openrouter_spend']:,.2f}"
    if not data["openrouter_spend_complete"]:
        spend += " (some spills have no usage reading)"
    w(f"\nOpenRouter spend during spills: {spend}\n")
    return 0
