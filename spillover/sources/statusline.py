"""`spillover statusline`: Claude Code's `statusLine` command (design §4.2).

Claude Code pipes a JSON object to this command on every status-line render. For Pro/Max it
carries `rate_limits.five_hour/seven_day` ({"used_percentage": 87, "resets_at": 1767312000}),
a free and fresh quota reading. We record it as a trace line in samples.jsonl and print one line:
route, 5-hour percent and time to reset, and the target's remaining budget when spilled.

This runs on every render, so it imports only os, sys, json, time and spillover.paths/samples/fmt/sanitize,
and it never fails the status line: anything unexpected prints a neutral line and exits 0.
"""

import json
import os
import sys
import time

from spillover import jsonsafe, paths, samples
from spillover.fmt import until
from spillover.sanitize import number

SOURCE = "statusline"
WINDOWS = ("five_hour", "seven_day")
MAX_INPUT = 1 << 20  # bytes of stdin read; the payload is a few KB
SAME_READING_SECONDS = 60  # an identical reading younger than this is not written again
TAIL_BYTES = 8192  # where the last statusline line of samples.jsonl is looked for
PREVIOUS_FILE = "statusline-previous.json"  # written by `spillover install statusline`
CHAIN_TIMEOUT = 2.0
CHAIN_GUARD = "SPILLOVER_STATUSLINE_CHAINED"  # stops a chain that leads back to us
SEPARATOR = " │ "
NEUTRAL = "spillover"


def readings(payload):
    """{window: (percent, resets_at or None)} from the payload's `rate_limits` (absent → {})."""
    limits = payload.get("rate_limits") if isinstance(payload, dict) else None
    if not isinstance(limits, dict):
        return {}
    out = {}
    for window in WINDOWS:
        entry = limits.get(window)
        if not isinstance(entry, dict):
            continue
        pct = number(entry.get("used_percentage"), strings=True, minimum=0)
        if pct is None or pct > 1000:
            continue
        resets = number(entry.get("resets_at"), strings=True, minimum=0)
        if resets is not None and resets > 1e11:
            resets /= 1000  # milliseconds
        out[window] = (min(pct, 150.0), resets or None)
    return out


def _last_statusline_line(path):
    """The newest statusline trace line near the end of samples.jsonl, or None."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - TAIL_BYTES))
            tail = handle.read()
    except OSError:
        return None
    for raw in reversed(tail.split(b"\n")):
        if b'"statusline"' not in raw:
            continue
        try:
            line = jsonsafe.loads(raw)
        except ValueError:
            continue
        if isinstance(line, dict) and line.get("source") == SOURCE:
            return line
    return None


def _same(line, previous):
    return all(line.get(k) == previous.get(k) for k in WINDOWS + ("account",))


def _compact(state_dir, path):
    """Compact under the tick lock (non-blocking: when a tick runs, it compacts itself)."""
    from spillover.fsutil import Busy, Lock

    try:
        with Lock(state_dir):
            samples.compact(path)
    except Busy:
        pass


def record(found, now, account=None):
    """Append the reading to samples.jsonl unless it repeats the last one.

    Claude Code re-sends the last API response's numbers on every render (claude_code_live.md §3):
    a reading's time is when its value was first seen, so an identical reading is never written
    again (it keeps its first time and ages as the response does). `account`: the config dir of
    the Claude Code that rendered (its CLAUDE_CONFIG_DIR, else ~/.claude)."""
    state_dir = paths.state_dir()
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(state_dir, paths.SAMPLES_JSONL)
    account = account or paths.primary_account()
    line = samples.record(now, SOURCE, found, account)
    previous = _last_statusline_line(path)
    if previous is not None and _same(line, previous) and float(previous.get("t") or 0) <= now:
        return False
    if samples.append(path, line) > samples.MAX_BYTES:
        _compact(state_dir, path)
    return True


def _pct(value):
    return f"{value:.0f}%"


def _budget(state, route):
    """Remaining USD of the spill target, from the last tick's guard or OpenRouter key snapshot."""
    for target in (state.get("details") or {}).get("targets") or ():
        if isinstance(target, dict) and target.get("name") == route and isinstance(target.get("remaining"), (int, float)):
            return target["remaining"]
    if route == "openrouter":
        key = (state.get("budget") or {}).get("key") or {}
        if isinstance(key.get("limit_remaining"), (int, float)):
            return key["limit_remaining"]
    return None


def render(state, found, now):
    """Our part of the status line."""
    parts = []
    route = state.get("route") if isinstance(state, dict) else None
    if isinstance(route, str) and route:
        pin = state.get("pin")
        head = route + (" (pinned)" if isinstance(pin, dict) and pin.get("honoured") else "")
        shift = (state.get("details") or {}).get("downshift_text") if route == "plan" else None
        if isinstance(shift, str) and shift:
            head += f" ↓{shift}"
        if state.get("status") == "spilled":
            left = _budget(state, route)
            if left is not None:
                head += f" ${left:.2f} left"
        parts.append(head)
    pct = resets = None
    if "five_hour" in found:
        pct, resets = found["five_hour"]
    elif isinstance(state, dict):
        bucket = (state.get("buckets") or {}).get("five_hour")
        if isinstance(bucket, dict) and isinstance(bucket.get("percent"), (int, float)):
            pct, resets = bucket["percent"], bucket.get("resets_at")
    if pct is not None:
        text = "5h " + _pct(pct)
        if isinstance(resets, (int, float)) and resets > now:
            text += " ↻" + until(resets - now, past="now")
        parts.append(text)
    return "spillover " + " · ".join(parts) if parts else NEUTRAL


def _read_state():
    try:
        with open(paths.state_path(paths.STATE_JSON), encoding="utf-8") as handle:
            state = json.load(handle)
    except (OSError, ValueError):
        return {}
    return state if isinstance(state, dict) else {}


def chained(raw):
    """First output line of the user's previous statusLine command, or None."""
    if os.environ.get(CHAIN_GUARD):
        return None
    try:
        with open(os.path.join(paths.config_home(), "spillover", PREVIOUS_FILE), encoding="utf-8") as handle:
            previous = json.load(handle)
    except (OSError, ValueError):
        return None
    command = previous.get("command") if isinstance(previous, dict) else None
    if not isinstance(command, str) or not command.strip():
        return None
    from spillover import proc  # only when chaining: subprocess is the heaviest import here

    try:
        _, out, _ = proc.run(["sh", "-c", command], input=raw, timeout=CHAIN_TIMEOUT,
                             env=dict(os.environ, **{CHAIN_GUARD: "1"}), stderr=False)
    except (OSError, proc.Timeout):
        return None
    lines = out.decode("utf-8", "replace").splitlines()
    return lines[0].rstrip() if lines and lines[0].strip() else None


def main(argv):
    now = time.time()
    raw = b""
    try:
        raw = sys.stdin.buffer.read(MAX_INPUT)
    except (OSError, ValueError, AttributeError):
        pass
    ours = NEUTRAL
    try:
        try:
            payload = jsonsafe.loads(raw) if raw.strip() else None
        except ValueError:
            payload = None
        found = readings(payload)
        if found:
            try:
                record(found, now)
            except OSError:
                pass  # a full disk or a read-only state dir must not break the status line
        ours = render(_read_state(), found, now)
    except Exception:  # noqa: BLE001 - the status line must render whatever happens
        ours = NEUTRAL
    theirs = None
    try:
        theirs = chained(raw)
    except Exception:  # noqa: BLE001
        theirs = None
    line = f"{theirs}{SEPARATOR}{ours}" if theirs else ours
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    return 0


class StatuslineSource:
    """The readings this command appended to samples.jsonl; the tick takes the fresh ones.

    Duck-typed like sources.base.Source: importing it (dataclasses) would slow every render."""

    name = "statusline"
    local = True
    can_confirm_reset = False

    def enabled(self, cfg):
        return self.name in cfg.sources

    def read(self, ctx):
        from spillover.sources.base import SourceResult

        path = os.path.join(ctx.state_dir, paths.SAMPLES_JSONL)
        fresh = [s for s in samples.read(path, since=ctx.now - ctx.cfg.fresh_seconds) if s.source == SOURCE]
        return SourceResult(fresh, None, {"last_activity": max((s.observed_at for s in fresh), default=None)})


READER = StatuslineSource()
