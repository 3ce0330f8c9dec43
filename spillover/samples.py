"""The sample trace: `samples.jsonl` in the state dir, one line per reading.

Shape (also what `spillover simulate` replays):
    {"t": 1767300000.0, "source": "statusline",
     "five_hour": {"percent": 87.0, "resets_at": 1767312000.0}, "seven_day": {...}}
Any bucket may be absent; `resets_at` may be null. Appenders use one O_APPEND write per line;
the file is compacted (under the tick lock, or by the statusline when it grows too big) to its
newest lines, so it stays bounded.

Only `os`, `json` and jsonsafe here: the statusline command imports this on every render.
"""

import json
import os

from spillover import jsonsafe

MAX_BYTES = 512 * 1024
KEEP_LINES = 2000
BUCKETS = ("five_hour", "seven_day", "seven_day_opus", "seven_day_sonnet", "unknown", "overage")


def record(t, source, buckets):
    """A trace line: buckets maps name -> (percent, resets_at or None)."""
    line = {"t": round(float(t), 3), "source": source}
    for name, (pct, resets_at) in buckets.items():
        line[name] = {"percent": round(float(pct), 2), "resets_at": resets_at}
    return line


def append(path, line):
    data = (json.dumps(line, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, data)
        size = os.fstat(fd).st_size
    finally:
        os.close(fd)
    return size


def compact(path, keep=KEEP_LINES):
    """Keep the newest `keep` lines (atomic replace)."""
    try:
        with open(path, "rb") as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        return
    if len(lines) <= keep:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.writelines(lines[-keep:])
    os.replace(tmp, path)


def iter_lines(path):
    """Each well-formed trace line (damaged lines, e.g. from a crash mid-write, are skipped)."""
    try:
        handle = open(path, encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return
    with handle:
        for text in handle:
            try:
                line = jsonsafe.loads(text)
            except ValueError:
                continue
            if isinstance(line, dict) and isinstance(line.get("t"), (int, float)):
                yield line


def to_samples(line):
    """policy.Sample objects of one trace line (imports policy: not for the statusline path)."""
    from spillover.policy import Sample

    out = []
    for bucket in BUCKETS:
        entry = line.get(bucket)
        if not isinstance(entry, dict):
            continue
        pct, resets = entry.get("percent"), entry.get("resets_at")
        if isinstance(pct, bool) or not isinstance(pct, (int, float)):
            continue
        resets = float(resets) if isinstance(resets, (int, float)) and not isinstance(resets, bool) else None
        out.append(Sample(bucket, float(pct), float(line["t"]), str(line.get("source", "?")), resets, bool(entry.get("wall"))))
    return out


def read(path, since=None):
    samples = []
    for line in iter_lines(path):
        if since is None or line["t"] >= since:
            samples.extend(to_samples(line))
    return samples
