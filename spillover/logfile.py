"""tick.log: what the scheduler appends the tick's stderr to (cron `>>`, systemd `append:`, launchd
StandardErrorPath). Each of them opens the file anew for every tick, so the tick keeps it bounded by
renaming it to tick.log.1 once it passes MAX_BYTES: at most two files of about MAX_BYTES each."""

import os

from spillover import paths

MAX_BYTES = 512 * 1024


def rotate(path=None, max_bytes=MAX_BYTES):
    """Rename tick.log to tick.log.1 (replacing the older one) when it is larger than max_bytes."""
    path = path or paths.state_path(paths.LOG)
    try:
        if os.path.getsize(path) <= max_bytes or os.path.islink(path):
            return False
        os.replace(path, path + ".1")
    except OSError:
        return False
    return True


def previous_problems():
    """The problems (config warnings among them) the last tick recorded in state.json."""
    from spillover import fsutil

    try:
        state = fsutil.read_json(paths.state_path(paths.STATE_JSON), default={}) or {}
    except (OSError, ValueError):
        return ()
    problems = state.get("problems") if isinstance(state, dict) else None
    return tuple(p for p in problems if isinstance(p, str)) if isinstance(problems, list) else ()
