"""Notifications on flips, blocks, low budget and weekly walls (issue 5).

`dispatch()` runs at the end of every tick. It compares the new state with what it remembers
having said (state.json `notified`) so that each condition fires once per crossing, and once per
reset cycle for a weekly wall, however many ticks see it. Delivery is best effort and bounded:

- desktop: `notify-send` on Linux (when on PATH), `osascript` on macOS, else the log only;
- `SPILLOVER_NOTIFY_COMMAND`: split like a shell command line (quotes respected) but run
  WITHOUT a shell; it gets the event as one JSON object on stdin. For pipes or redirections, say
  so explicitly: `sh -c 'jq -c . >> ~/spillover-events.jsonl'`.

`SPILLOVER_NOTIFY=off` silences both; the log line and the memory are kept either way, so turning
notifications back on does not replay old events. No text leaves here unredacted.
"""

import json
import logging
import os
import shlex
import shutil
import sys

from spillover import policy
from spillover.fmt import clock
from spillover.redact import redact

log = logging.getLogger("spillover")

TIMEOUT = 5.0  # seconds each delivery (desktop or hook) may take
LOW_BUDGET_REARM = 1.2  # a low-budget alert re-arms once the budget is back above 120% of the floor
# Variables a hook or notifier never needs to inherit.
_SECRET_ENV = ("OPENROUTER_API_KEY", "OPENROUTER_MANAGEMENT_KEY", "SPILLOVER_ANTHROPIC_API_KEY",
               "SPILLOVER_GATEWAY_TOKEN", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")


def dispatch(cfg, old_state, new_state, decision, now):
    """Send what is due; return the updated memory for state.json `notified`. Never raises."""
    try:
        memory, events = _events(cfg, old_state or {}, new_state or {}, now)
    except Exception:  # a notification must never cost the user a tick
        log.exception("notify: could not work out the events")
        return dict((old_state or {}).get("notified") or {})
    for event in events:
        try:
            _deliver(cfg, event)
        except Exception:
            log.exception("notify: delivering %s failed", event.get("event"))
    if events:
        memory["last"] = {"event": events[-1]["event"], "at": now, "title": events[-1]["title"]}
    return memory


# --- what is due ------------------------------------------------------------------------------


def _clock(epoch):
    return clock(epoch, weekday=True)


def _pin_command(cfg, new_state):
    """The decision's own `pin` suggestion (policy.pin_command), so reason, notification and status agree."""
    said = (new_state.get("details") or {}).get("pin_command")
    if isinstance(said, str) and said:
        return said
    targets = (new_state.get("details") or {}).get("targets") or []
    healthy = [t["name"] for t in targets if isinstance(t, dict) and t.get("healthy")]
    name = (healthy or list(cfg.targets) or ["openrouter"])[0]
    return f"spillover pin {name} --until-reset"


def _event(kind, title, message, new_state, now, **extra):
    return {
        "event": kind,
        "title": title,
        "message": message,
        "route": new_state.get("route"),
        "status": new_state.get("status"),
        "reason": new_state.get("reason"),
        "at": now,
        **extra,
    }


def _events(cfg, old_state, new_state, now):
    old_memory = old_state.get("notified") if isinstance(old_state.get("notified"), dict) else {}
    memory = {k: v for k, v in old_memory.items() if k != "last"}
    if "last" in old_memory:
        memory["last"] = old_memory["last"]
    events = []
    old_route = old_state.get("route") or "plan"
    route = new_state.get("route") or "plan"
    details = new_state.get("details") or {}
    buckets = new_state.get("buckets") or {}

    # Weekly walls first: with SPILLOVER_WEEKLY=notify a weekly wall is also what blocks the route,
    # and one message (naming the bucket, the reset and the pin command) says it all.
    walls = [b for b in details.get("weekly_walls") or () if b == policy.SEVEN_DAY or policy.is_model_bucket(b)]
    seen = {b: v for b, v in (memory.get("weekly_wall") or {}).items()
            if isinstance(v, dict) and (v.get("resets_at") is None or v["resets_at"] > now)}
    wall_events = []
    for bucket in walls:
        if (cfg.weekly if bucket == policy.SEVEN_DAY else getattr(cfg, "model_wall", "notify")) == "notify":
            sample = buckets.get(bucket) or {}
            resets_at = sample.get("resets_at")
            known = seen.get(bucket)
            if known is not None and _same_cycle(known.get("resets_at"), resets_at):
                continue
            pin_cmd = _pin_command(cfg, new_state)
            when = f"resets {_clock(resets_at)}" if resets_at else "reset time unknown"
            percent = sample.get("percent")
            level = f" at {policy.fmt_pct(percent)}" if isinstance(percent, (int, float)) else ""
            setting = "SPILLOVER_WEEKLY" if bucket == policy.SEVEN_DAY else "SPILLOVER_MODEL_WALL"
            message = (f"{bucket}{level} ({when}). Waiting does not help for days; spillover stays on the plan "
                       f"({setting}=notify). To spill anyway: {pin_cmd}")
            wall_events.append(_event("weekly_wall", f"spillover: weekly limit {bucket} reached", message, new_state, now,
                                      bucket=bucket, resets_at=resets_at, percent=percent, pin_command=pin_cmd))
            seen[bucket] = {"resets_at": resets_at, "at": now}
    memory["weekly_wall"] = seen

    # A per-model downshift on the plan: once when it starts or changes, once when it ends.
    shift = details.get("downshift_text") if route == "plan" else None
    old_shift = memory.get("downshift")
    if (shift or None) != (old_shift or None):
        if shift:
            moves = "; ".join(f"{s['variable']}={s['model']} ({s['bucket']} at its wall)" for s in details.get("downshift") or ()
                              if isinstance(s, dict))
            events.append(_event("downshift", f"spillover: downshift {shift} on the plan",
                                 f"Staying on the plan with {moves} until its reset. A session pinned to a full model id "
                                 "(not an alias) is not covered.", new_state, now, downshift=shift))
        elif old_shift:
            events.append(_event("downshift_end", f"spillover: downshift {old_shift} ended",
                                 "Back to the plan's own models.", new_state, now, downshift=None))
        memory["downshift"] = shift or None

    # Blocked: once on entering it, re-armed when the route leaves it.
    if route == "blocked":
        if not memory.get("blocked"):
            memory["blocked"] = {"at": now, "from": old_route}
            weekly_block = new_state.get("hot_bucket") in policy.WEEKLY and wall_events
            if not weekly_block:
                events.append(_event("blocked", "spillover: blocked: the plan is at a wall and no spill target is healthy",
                                     new_state.get("reason") or "", new_state, now, **{"from": old_route, "to": route}))
    else:
        memory.pop("blocked", None)
        if route != old_route:
            if route == "plan":
                title = "spillover: back on the plan"
            else:
                title = f"spillover: now on {route}"
            message = f"{old_route} → {route}: {new_state.get('reason') or ''}. New `claude` processes pick it up."
            events.append(_event("flip", title, message, new_state, now, **{"from": old_route, "to": route}))
    events += wall_events

    # Low budget: per target whose remaining budget is known.
    low = dict(memory.get("low_budget") or {})
    for target in details.get("targets") or ():
        if not isinstance(target, dict):
            continue
        name, remaining = target.get("name"), target.get("remaining")
        if not isinstance(remaining, (int, float)):
            continue  # unknown: neither a new crossing nor a recovery
        if remaining < cfg.low_balance:
            if name not in low:
                low[name] = {"at": now, "remaining": remaining}
                message = (f"{name} budget ${remaining:,.2f} is under ${cfg.low_balance:,.2f} (SPILLOVER_LOW_BALANCE); "
                           f"spills stop at ${cfg.min_balance:,.2f}. See `spillover budget`.")
                events.append(_event("low_budget", f"spillover: {name} budget is low", message, new_state, now,
                                     target=name, remaining=remaining, low_balance=cfg.low_balance))
        elif remaining >= cfg.low_balance * LOW_BUDGET_REARM:
            low.pop(name, None)
    memory["low_budget"] = low
    return memory, events


def _same_cycle(a, b):
    if a is None or b is None:
        return a is b
    return abs(float(a) - float(b)) <= policy.SAME_WINDOW_SLACK


# --- delivery ---------------------------------------------------------------------------------


def _clean(value, secrets):
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {k: _clean(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v, secrets) for v in value]
    return value


def _deliver(cfg, event):
    event = _clean(event, cfg.secrets)
    log.info("notify %s: %s: %s", event["event"], event["title"], event["message"])
    if cfg.notify == "off":
        return
    argv = desktop_command(event["title"], event["message"], urgent=event["event"] in ("blocked", "weekly_wall"))
    if argv:
        _run(argv, None, "desktop notification")
    if cfg.notify_command:
        try:
            argv = shlex.split(cfg.notify_command)
        except ValueError as exc:
            log.warning("notify: SPILLOVER_NOTIFY_COMMAND cannot be split (%s)", exc)
            return
        if argv:
            _run(argv, json.dumps(event, ensure_ascii=False, sort_keys=True) + "\n", "SPILLOVER_NOTIFY_COMMAND", cfg.secrets)


def desktop_command(title, message, urgent=False):
    """The argv of the platform's notifier, or None when there is none (then the log is all)."""
    if sys.platform == "darwin":
        osascript = shutil.which("osascript")
        if osascript:
            # Texts go in as arguments, never spliced into the script: no AppleScript quoting to get wrong.
            return [osascript, "-e", "on run argv", "-e", "display notification (item 2 of argv) with title (item 1 of argv)",
                    "-e", "end run", title, message]
        return None
    notify_send = shutil.which("notify-send")
    if notify_send:
        return [notify_send, "--app-name=spillover", f"--urgency={'critical' if urgent else 'normal'}", "--", title, message]
    return None


def _child_env():
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_ENV}
    # cron gives no session bus address; notify-send needs one to reach the desktop.
    if "DBUS_SESSION_BUS_ADDRESS" not in env:
        bus = f"/run/user/{os.getuid()}/bus"
        if os.path.exists(bus):
            env["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"
    return env


def _run(argv, stdin_text, what, secrets=()):
    from spillover import proc

    try:
        code, _, err = proc.run(argv, input=None if stdin_text is None else stdin_text.encode("utf-8"),
                                timeout=TIMEOUT, env=_child_env(), stdout=False)
    except proc.Timeout:
        log.warning("notify: %s did not finish within %g s and was stopped", what, TIMEOUT)
        return False
    except OSError as exc:
        log.warning("notify: %s %s could not start (%s)", what, redact(argv[0], secrets), exc.strerror or exc)
        return False
    if code != 0:
        tail = " ".join(err.decode("utf-8", "replace").split())[-200:]
        log.warning("notify: %s exited %s%s", what, code, f" ({redact(tail, secrets)})" if tail else "")
        return False
    return True
