"""`spillover simulate TRACE`: replay a quota trace through the real decision.

The trace is samples.jsonl's shape (what the statusline and the tick record). A simulated clock
steps every `--step` seconds; at each step the decision sees only the samples observed by then
(merged newest-wins, recent ones as forecast history), a healthy spill target, and the user's
configuration overridden by the flags. The report tells how long the user would have sat on the
plan at the wall, how long they would have been spilled, how much of that came after the reset of
the window that caused the spill (over-spill: time paid for while the plan had answered again),
how often the route flipped, and what the spill would have cost at a flat $/hour.
"""

import json
import os
import sys
from dataclasses import replace

from spillover import config, paths, policy, samples
from spillover.errors import UsageError
from spillover.policy import Previous, Signals, TargetHealth

TARGET = TargetHealth("openrouter", True, "simulated")
CONFIRMING = ("oauth", "command")  # the sources that read the plan while spilled (can_confirm_reset)
CONFIRM_RECENT = 35 * 60  # as the tick: within 3 poll intervals (10 min) + 5 min


def load_trace(path):
    if not os.path.exists(path):
        raise UsageError(f"{path}: no such trace file")
    out = []
    for line in samples.iter_lines(path):
        out.extend(samples.to_samples(line))
    if not out:
        raise UsageError(f"{path}: no samples in it (expected JSONL lines like "
                         '{"t": 1767300000, "five_hour": {"percent": 87, "resets_at": 1767312000}})')
    out.sort(key=lambda s: s.observed_at)
    return out


def at_wall(merged, now):
    """Whether a plan bucket that stops Claude Code is at 100% right now, by the latest reading."""
    for bucket in policy.HOT:
        s = merged.get(bucket)
        if s is not None and s.percent >= 100.0 and (s.resets_at is None or now < s.resets_at):
            return True
    return False


def replay(trace, pol, step, cost_per_hour, timeline=None):
    """Walk the simulated clock over the trace. Returns the report dict. A `timeline` dict, when
    given, receives the decisions [(t, route)] and the wall intervals [(start, end)] for charts."""
    start, end = trace[0].observed_at, trace[-1].observed_at
    prev = Previous()
    merged, history, seen = {}, [], []
    flips, decisions, index = [], [], 0
    spill_reset = None  # the reset of the window whose wall caused the current spill
    now = start
    while now <= end:
        while index < len(trace) and trace[index].observed_at <= now:
            history.append(trace[index])
            seen.append(trace[index])
            index += 1
        seen = [s for s in seen if now - s.observed_at <= CONFIRM_RECENT]
        history = [s for s in history if now - s.observed_at <= policy.HISTORY_WINDOW]
        merged = policy.merge(list(merged.values()) + history)
        by_bucket = {}
        for s in history:
            by_bucket.setdefault(s.bucket, []).append(s)
        # The sources that could confirm a reset at this moment: those that read the plan while
        # spilled (the usage endpoint, a meter) and produced a reading recently in the trace.
        recent = CONFIRM_RECENT
        confirmers = tuple(sorted({s.source for s in seen if s.source in CONFIRMING and now - s.observed_at <= recent}))
        signals = Signals(buckets=merged, history=by_bucket, targets=(TARGET,), confirmers=confirmers)
        decision = policy.decide(prev, signals, pol, now)
        flipped = decision.route != prev.route
        if decision.route in policy.NOT_SPILLED:
            spill_reset = None
        elif prev.route in policy.NOT_SPILLED or spill_reset is None:
            cause = merged.get(decision.hot_bucket) if decision.hot_bucket else None
            spill_reset = None if cause is None else cause.resets_at
        if flipped:
            flips.append({"at": now, "from": prev.route, "to": decision.route, "reason": decision.reason,
                          "five_hour": None if merged.get("five_hour") is None else merged["five_hour"].percent})
        # What the tick stores in state.json and reads back as the previous decision.
        prev = Previous(decision.route, now if flipped else prev.since, decision.hot_bucket,
                        decision.reason if flipped else prev.reason)
        decisions.append((now, decision.route, spill_reset))
        now += step
    walls = []
    wall, spilled, blocked, over = account(trace, decisions, end, walls)
    if timeline is not None:
        timeline.update(decisions=[(t, route) for t, route, _ in decisions], walls=walls)
    return {
        "trace_start": start,
        "trace_end": end,
        "samples": len(trace),
        "step_seconds": step,
        "threshold": pol.threshold,
        "resume": pol.resume,
        "lead_minutes": pol.lead_seconds / 60,
        "minutes_at_wall_on_plan": round(wall / 60, 1),
        "minutes_spilled": round(spilled / 60, 1),
        "minutes_spilled_after_reset": round(over / 60, 1),
        "minutes_blocked": round(blocked / 60, 1),
        "flips": len(flips),
        "cost_per_hour": cost_per_hour,
        "spill_cost_usd": round(spilled / 3600 * cost_per_hour, 2),
        "events": flips,
    }


def account(trace, decisions, end, walls=None):
    """Seconds (at the wall on the plan, spilled, blocked, spilled after the reset of the window that
    caused the spill), on a timeline cut at every decision and every reading: a route holds until
    the next decision, a reading until the next reading, so a wall reached between two decisions
    counts from the reading that showed it. `walls`, when given, receives the wall intervals."""
    resets = {r for _, _, r in decisions if r is not None}
    cuts = sorted({t for t, _, _ in decisions} | {s.observed_at for s in trace} | {end} | {r for r in resets if r < end})
    wall = spilled = blocked = over = 0.0
    truth, index, route_index = {}, 0, 0
    for a, b in zip(cuts, cuts[1:]):
        while index < len(trace) and trace[index].observed_at <= a:
            truth = policy.merge(list(truth.values()) + [trace[index]])
            index += 1
        while route_index + 1 < len(decisions) and decisions[route_index + 1][0] <= a:
            route_index += 1
        _, route, spill_reset = decisions[route_index]
        if route not in policy.NOT_SPILLED:
            spilled += b - a
            if spill_reset is not None and a >= spill_reset:
                over += b - a
        elif at_wall(truth, a):
            wall += b - a
            if walls is not None:
                if walls and walls[-1][1] == a:
                    walls[-1] = (walls[-1][0], b)
                else:
                    walls.append((a, b))
        if route == "blocked":
            blocked += b - a
    return wall, spilled, blocked, over


def _clock(epoch):
    import time

    return time.strftime("%Y-%m-%d %H:%M", time.localtime(epoch))


def print_report(report, out):
    w = out.write
    hours = (report["trace_end"] - report["trace_start"]) / 3600
    w(f"trace     {report['samples']} samples over {hours:.1f} h ({_clock(report['trace_start'])} → {_clock(report['trace_end'])}), "
      f"decision every {report['step_seconds']:g}s\n")
    w(f"policy    threshold {report['threshold']:g}%, resume {report['resume']:g}%, lead {report['lead_minutes']:g} min\n\n")
    rows = (
        ("on the plan at the wall", f"{report['minutes_at_wall_on_plan']:g} min"),
        ("spilled", f"{report['minutes_spilled']:g} min"),
        ("over-spill after reset", f"{report['minutes_spilled_after_reset']:g} min"),
        ("blocked", f"{report['minutes_blocked']:g} min"),
        ("flips", str(report["flips"])),
        ("spill cost estimate", f"${report['spill_cost_usd']:.2f} (at ${report['cost_per_hour']:g}/h)"),
    )
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        w(f"  {name:<{width}}  {value}\n")
    if report["events"]:
        w("\nflips\n")
        for e in report["events"]:
            pct = "" if e["five_hour"] is None else f" at five_hour {e['five_hour']:.0f}%"
            w(f"  {_clock(e['at'])}  {e['from']} → {e['to']}{pct}: {e['reason']}\n")


def chart_windows(trace, timeline, cost_per_hour):
    """The replay's five-hour windows as charts.Window rows, spend at the flat rate."""
    from dataclasses import replace as with_

    from spillover import charts

    start, end = trace[0].observed_at, trace[-1].observed_at
    readings = [(s.observed_at, s.bucket, s.percent, s.resets_at) for s in trace]
    spans = charts.route_spans(timeline["decisions"], start, end)
    windows = charts.build_windows(spans, readings, start, end, walls=timeline["walls"])
    return [with_(w, spend=round(w.spilled_min / 60 * cost_per_hour, 2)) for w in windows]


def run(trace=None, from_history=False, threshold=None, resume=None, lead=None, cost_per_hour=10.0, step=60.0,
        as_json=False, chart=False, compare=None, out=None):
    out = out or sys.stdout
    if from_history:
        if trace:
            raise UsageError("give a TRACE file or --from-history, not both")
        path = paths.state_path(paths.SAMPLES_JSONL)
    elif trace:
        path = trace
    else:
        raise UsageError("give a TRACE file (JSONL samples) or --from-history")
    if step <= 0:
        raise UsageError("--step must be a positive number of seconds")
    if cost_per_hour < 0:
        raise UsageError("--cost-per-hour must be 0 or more")
    cfg = config.load()
    pol = policy.Policy.from_config(cfg)
    overrides = {}
    if threshold is not None:
        overrides["threshold"] = config._percent("--threshold", format(threshold, "g"))
    if resume is not None:
        overrides["resume"] = config._percent("--resume", format(resume, "g"))
    if lead is not None:
        if lead < 0:
            raise UsageError("--lead must be 0 or more minutes")
        overrides["lead_seconds"] = lead * 60
    pol = replace(pol, **overrides)
    if pol.resume >= pol.threshold:
        raise UsageError(f"resume {pol.resume:g}% must be under threshold {pol.threshold:g}%")
    chart = chart or compare is not None
    if chart and as_json:
        raise UsageError("--chart and --compare draw pictures; leave out --json")
    samples, timeline = load_trace(path), {}
    report = replay(samples, pol, step, cost_per_hour, timeline)
    report["trace"] = path
    if chart:
        from spillover import charts

        style = charts.style_for(out, os.environ)
        left = chart_windows(samples, timeline, cost_per_hour)
        if compare is None:
            print_report(report, out)
            out.write("\n" + charts.timeline(left, style) + "\n")
            return 0
        other = replace(pol, threshold=config._percent("--compare", format(compare, "g")))
        if other.resume >= other.threshold:
            raise UsageError(f"resume {other.resume:g}% must be under --compare {other.threshold:g}%")
        right_timeline = {}
        replay(samples, other, step, cost_per_hour, right_timeline)
        right = chart_windows(samples, right_timeline, cost_per_hour)
        labels = (f"threshold {pol.threshold:g}%", f"threshold {other.threshold:g}%")
        out.write(charts.compare(left, right, labels, style) + "\n")
        return 0
    if as_json:
        out.write(json.dumps(report, indent=1, sort_keys=True) + "\n")
    else:
        print_report(report, out)
    return 0
