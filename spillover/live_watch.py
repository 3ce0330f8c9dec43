"""What the statusline does for running sessions (design §3a), on every render, cheaply.

The statusline runs inside the session with its live environment, so it sees the route the session
really uses (`SPILLOVER_ROUTE`). From that, and only when `spillover install live` ran:
- it notes the session's route in live-sessions.json (the way back to the plan removes spillover's
  keys as soon as every live session reports the plan: phase 2);
- self-heal: when the session's route differs from the published one for more than HEAL_AFTER
  seconds (an old client dropped the write as an echo of its own), it rewrites the settings file
  (rate-limited machine-wide by a stamp);
- watchdog: when the decision is stale (the scheduler died) and the spill's reset has passed, it
  publishes the plan itself;
- push: when a reading crosses the threshold while on the plan, it starts one detached tick (at
  most one per PUSH_EVERY seconds, machine-wide).
Imports here: os, json, fsutil. spillover.live (heavier) only when there is something to do.
"""

import json
import os

from spillover import fsutil

LIVE_JSON = "live.json"
SESSIONS_JSON = "live-sessions.json"
HEAL_AFTER = 3.0
PLAN_ROUTES = ("plan", "blocked")


def _load(path):
    return fsutil.read_json_object(path)


def _write(path, data):
    fsutil.atomic_write(path, json.dumps(data))  # random exclusive temp name: never a planted link


def session_route(environ):
    """The route this session uses: its SPILLOVER_ROUTE; unset or "" is the plan."""
    return (environ.get("SPILLOVER_ROUTE") or "").strip() or "plan"


def published(state_dir, environ):
    """(route, phase, since) spillover last wrote into this session's user settings.json."""
    import hashlib

    config_dir = (environ.get("CLAUDE_CONFIG_DIR") or "").split(",")[0].strip() or os.path.join(os.path.expanduser("~"), ".claude")
    path = os.path.abspath(os.path.join(os.path.expanduser(config_dir), "settings.json"))
    private = _load(os.path.join(state_dir, f"live-{hashlib.sha256(path.encode()).hexdigest()[:12]}.json"))
    route = private.get("route")
    if not isinstance(route, str):
        return "plan", 2, None
    at = private.get("plan_since") if route in PLAN_ROUTES else private.get("at")
    return route, private.get("phase") or 1, at if isinstance(at, (int, float)) else None


def label(state_dir, environ):
    """The route part of the status line: the session's own route, and the published one when
    they differ; None when live is not installed."""
    if not os.path.exists(os.path.join(state_dir, LIVE_JSON)):
        return None
    mine = session_route(environ)
    theirs = published(state_dir, environ)[0]
    return mine if mine == theirs else f"{mine} (published {theirs})"


def watch(state_dir, state, found, now, environ):
    """The checks of one render; never raises (the caller guards it too)."""
    if not os.path.exists(os.path.join(state_dir, LIVE_JSON)):
        return None
    mine = session_route(environ)
    route, phase, since = published(state_dir, environ)
    sid = environ.get("CLAUDE_CODE_SESSION_ID") or str(os.getppid())
    sessions_path = os.path.join(state_dir, SESSIONS_JSON)
    sessions = _load(sessions_path)
    entry = sessions.get(sid)
    first = entry[2] if isinstance(entry, list) and len(entry) == 3 and entry[0] == mine else now
    if not isinstance(entry, list) or len(entry) != 3 or entry[0] != mine or now - float(entry[1] or 0) > 30:
        sessions = {k: v for k, v in sessions.items() if isinstance(v, list) and len(v) == 3 and now - float(v[1] or 0) < 3600}
        sessions[sid] = [mine, now, first]
        try:
            _write(sessions_path, sessions)
        except OSError:
            pass
    action = None
    if route in PLAN_ROUTES and phase == 1 and mine in PLAN_ROUTES and since is not None and now - since >= 1.0:
        action = "phase2"
    elif mine != route and not environ.get("SPILLOVER_EXCLUDED") and now - max(first, since or 0) > HEAL_AFTER:
        action = "heal"
    elif route not in PLAN_ROUTES and _stale(state, now) and _reset_passed(state, now):
        action = "watchdog"
    elif route in PLAN_ROUTES and _crossing(state, found):
        action = "push"
    if action is None:
        return None
    from spillover import live

    return live.statusline_action(action, state_dir, now)


def _stale(state, now):
    decided, stale_after = state.get("decided_at"), state.get("stale_after")
    return isinstance(decided, (int, float)) and isinstance(stale_after, (int, float)) and now > decided + stale_after


def _reset_passed(state, now):
    bucket = (state.get("buckets") or {}).get(state.get("hot_bucket") or "five_hour")
    resets = bucket.get("resets_at") if isinstance(bucket, dict) else None
    return isinstance(resets, (int, float)) and now > resets


def _crossing(state, found):
    threshold = (state.get("thresholds") or {}).get("threshold")
    reading = found.get("five_hour")
    return isinstance(threshold, (int, float)) and reading is not None and reading[0] >= threshold
