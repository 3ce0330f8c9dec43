"""Walls pushed by Claude Code's StopFailure hook (`spillover hook stop-failure`, live.py).

The hook appends one line per wall to walls.jsonl in the state dir: {"at", "kind": "wall",
"bucket", "resets_at", "route", "error"}, or {"kind": "target", "target", "error"} when a spill
target failed a session with a billing or authentication error. Each wall whose reset has not
passed is a wall sample (100%, believable until its reset), like a wall read from a transcript.
"""

import json
import os

from spillover.policy import Sample
from spillover.sources.base import Source, SourceResult
from spillover.sources.transcripts import ASSUMED_RESET, WEEK

SOURCE = "stopfailure"
WALLS_JSONL = "walls.jsonl"
MAX_BYTES = 1 << 20
KEEP_TARGET_SECONDS = 3600.0


def read_walls(path):
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - MAX_BYTES))
            raw = handle.read()
    except OSError:
        return []
    out = []
    for line in raw.split(b"\n"):
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("at"), (int, float)):
            out.append(entry)
    return out


class StopFailureSource(Source):
    name = SOURCE
    local = True

    def enabled(self, cfg):
        return True  # a local file the hook writes: nothing to read when the hook is not installed

    def read(self, ctx):
        found, unhealthy = [], {}
        for entry in read_walls(os.path.join(ctx.state_dir, WALLS_JSONL)):
            at = float(entry["at"])
            if at > ctx.now + 60:
                continue
            if entry.get("kind") == "target" and isinstance(entry.get("target"), str):
                if ctx.now - at < KEEP_TARGET_SECONDS:
                    unhealthy[entry["target"]] = {"at": at, "error": str(entry.get("error"))[:40]}
                continue
            bucket = entry.get("bucket")
            if entry.get("kind") != "wall" or not isinstance(bucket, str):
                continue
            resets = entry.get("resets_at")
            until = float(resets) if isinstance(resets, (int, float)) else at + ASSUMED_RESET.get(bucket, WEEK)
            if until > ctx.now:
                found.append(Sample(bucket, 100.0, at, SOURCE, until, wall=True))
        info = {"unhealthy_targets": unhealthy} if unhealthy else {}
        return SourceResult(found, None, info)


READER = StopFailureSource()
