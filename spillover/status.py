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
            "severity": _severity(state.sources, data.get("source"), name),
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
    if state.cut_off:
        problems.insert(0, f"last tick was cut off at the hard deadline: {state.cut_off}")
    models = budget.get("models") if isinstance(budget.get("models"), dict) else None
    floor = floor_why = None
    if "openrouter" in cfg.targets:
        from spillover.targets.openrouter import floor as turn_floor

        floor, floor_why = turn_floor(cfg, models)
    return {
        "config_error": config_error,
        "models": models,
        "floor": floor,
        "floor_why": floor_why,
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
        "pin_command": details.get("pin_command"),
        "downshift": details.get("downshift") or [],
        "downshift_text": summary.get("downshift"),
        "blind": details.get("blind"),
        "account": details.get("account"),
        "other_accounts": details.get("other_accounts") or {},
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


def _severity(records, source, bucket):
    """The usage answer's severity (normal, warning, critical) of a bucket its source kept."""
    record = records.get(source) if isinstance(source, str) else None
    found = record.get("severity") if isinstance(record, dict) else None
    value = found.get(bucket) if isinstance(found, dict) else None
    return value if isinstance(value, str) else None


def _live(cfg):
    """Running sessions (live.py): whether the settings publisher is on, each settings file's
    last result, and the excluded projects."""
    from spillover import live

    state_dir = paths.state_dir()
    files = live._load_json(os.path.join(state_dir, live.STATUS_JSON))
    return {"on": live.enabled(cfg, state_dir), "credential": cfg.live_credential, "settings": files,
            "excluded": live.excluded_dirs(cfg)}


def with_live(data, cfg):
    """`data` plus a "live" entry when running sessions follow the route or a project is excluded."""
    found = _live(cfg)
    if found["on"] or found["excluded"]:
        data["live"] = found
    return data


def bar_rows(data):
    """Per bucket with a reading: (name, percent, forecast percent at the reset or None, resets in)."""
    rows = []
    for b in data["buckets"]:
        if b["percent"] is None:
            continue
        fc, left = b.get("forecast") or {}, b["resets_in_seconds"]
        at_reset = None
        if fc.get("rate_per_hour") and left is not None and left > 0:
            at_reset = fc.get("projected", b["percent"]) + fc["rate_per_hour"] * left / 3600
        rows.append((b["bucket"], b["percent"], at_reset, left))
    return rows


def window_points(bucket, resets_at, tail=256 * 1024):
    """[(t, percent)] of `bucket` in the window ending at `resets_at`, from the tail of samples.jsonl.

    Read from the newest line back to the window's start. Lines are written by samples.record
    with sorted keys, so a regular expression reads them without a JSON parse per line (status
    stays fast); a line it does not match is parsed as JSON."""
    import re

    points = []
    try:
        with open(paths.state_path(paths.SAMPLES_JSONL), "rb") as handle:
            handle.seek(0, 2)
            handle.seek(max(0, handle.tell() - tail))
            lines = handle.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return points
    quick = re.compile(r'"%s": \{"percent": ([-0-9.e]+), "resets_at": ([-0-9.e]+|null)\}' % re.escape(bucket))
    stamp = re.compile(r'"t": ([-0-9.e]+)[,}]')
    start, needle = resets_at - 5 * 3600 - policy.SAME_WINDOW_SLACK, f'"{bucket}"'
    for text in reversed(lines):
        if needle not in text:
            continue
        match, when = quick.search(text), stamp.search(text)
        try:
            if match and when:
                pct, at, t = float(match[1]), None if match[2] == "null" else float(match[2]), float(when[1])
            else:
                entry = json.loads(text)
                t, pct, at = float(entry["t"]), float(entry[bucket]["percent"]), entry[bucket].get("resets_at")
        except (ValueError, KeyError, TypeError):
            continue
        if t < start:
            break
        if at is not None and abs(float(at) - resets_at) <= policy.SAME_WINDOW_SLACK:
            points.append((t, pct))
    points.reverse()
    return points


def pictures(data, now, style):
    """The bucket bars and the five-hour window's curve, as text (empty without readings)."""
    from spillover import charts

    thresholds = data["thresholds"]
    threshold, resume = thresholds.get("threshold", 95.0), thresholds.get("resume", 50.0)
    lines = [charts.bucket_bar(name, pct, threshold, resume, at_reset, left, style) for name, pct, at_reset, left in bar_rows(data)]
    five = next((b for b in data["buckets"] if b["bucket"] == policy.FIVE_HOUR), None)
    if five and five.get("resets_at") and five["percent"] is not None and (five["resets_in_seconds"] or 0) > 0:
        points = window_points(policy.FIVE_HOUR, five["resets_at"])
        if len(points) >= 2:
            rate = (five.get("forecast") or {}).get("rate_per_hour")
            lines.append(charts.sparkline(points, five["resets_at"] - 5 * 3600, five["resets_at"], threshold, rate, style, now=now))
    return "".join(line + "\n" for line in lines)


def show(cfg, as_json=False, out=None, config_error=None):
    import sys

    out = out or sys.stdout
    now = time.time()
    from spillover.redact import known_secrets, redact_tree

    data = redact_tree(with_live(collect(cfg, now, config_error), cfg), known_secrets(cfg))
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
    from spillover import charts

    drawn = pictures(data, now, charts.style_for(out, os.environ))
    if drawn:
        w("\n" + drawn)
    w("\nbucket             used   resets in  source       age     state\n")
    if not data["buckets"]:
        w("  (no readings yet)\n")
    for b in data["buckets"]:
        pct = "-" if b["percent"] is None else f"{b['percent']:.0f}%"
        extra = ""
        if b.get("wall_in_minutes") is not None:
            extra = f"  wall in ~{b['wall_in_minutes']:.0f} min"
        w(f"  {b['bucket']:<16} {pct:>5}   {until(b['resets_in_seconds']):>9}  {b['source'] or '-':<11} {ago(b['age_seconds']):>8}  {b['state'] or '-'}{extra}\n")
    pin_cmd = data.get("pin_command") or "spillover pin openrouter --until-reset"
    for wall in data["weekly_walls"]:
        setting = "SPILLOVER_WEEKLY=spill" if wall == policy.SEVEN_DAY else "SPILLOVER_MODEL_WALL=spill"
        w(f"  ⚠ {wall} is at the wall: spillover does not spill on it unless {setting}; to spill now: `{pin_cmd}`\n")
    for shift in data["downshift"] if data["downshift_text"] else ():
        when = f" until {clock(shift['resets_at'])}" if shift.get("resets_at") else " until its reset"
        w(f"  ↓ downshift {shift['from']}>{shift['to']}: {shift['variable']}={shift['model']} on the plan{when}\n")
    if data["downshift_text"]:
        w("    a session pinned to a full model id (not the alias) is not covered: use /model with an alias\n")
    if data["blind"]:
        w(f"  ✖ blind: {data['blind']}\n")
    for who, got in sorted(data["other_accounts"].items()):
        shown = ", ".join(f"{b} {policy.fmt_pct(v.get('percent', 0))}" for b, v in sorted(got.items()))
        w(f"  other account {who}: {shown} (shown only; the decision uses {data['account']})\n")
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
    if data["floor"] is not None:
        w(f"  openrouter floor {money(data['floor'])} = {data['floor_why']}\n")
    models = data["models"] or {}
    if isinstance(models.get("slugs"), dict):
        mapped = ", ".join(f"{tier} {slug}" for tier, slug in models["slugs"].items())
        w(f"  openrouter models: {mapped} ({models.get('source')})\n")
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
    live = data.get("live") or {}
    if live:
        w(f"\nrunning sessions  {'follow the route (settings.json, credential: ' + live['credential'] + ')' if live['on'] else 'off'}\n")
        for path, rec in sorted((live["settings"] or {}).items()):
            ok = rec.get("status") in ("written", "unchanged")
            w(f"  {'✔' if ok else '✖'} {path}: {rec.get('route')}" + ("" if ok else f" — {rec.get('reason')}") + "\n")
        for directory in live["excluded"]:
            w(f"  excluded (stays on the plan): {directory}\n")
    for problem in data["problems"]:
        w(f"\n⚠ {problem}\n")
    return 0
