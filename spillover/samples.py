"""The sample trace: `samples.jsonl` in the state dir, one line per reading.

Shape (also what `spillover simulate` replays):
    {"t": 1767300000.0, "source": "statusline",
     "five_hour": {"percent": 87.0, "resets_at": 1767312000.0}, "seven_day": {...}}
Any bucket may be absent; `resets_at` may be null. Appenders use one O_APPEND write per line;
the file is compacted (under the tick lock, or by the statusline when it grows too big) to its
newest lines, so it stays bounded.

Only `fsutil` (os, json, fcntl) and `sanitize` here: the statusline command imports this on every render.
"""

import os
import stat

from spillover import fsutil
from spillover.sanitize import number

MAX_BYTES = 512 * 1024
KEEP_LINES = 2000
BUCKETS = ("five_hour", "seven_day", "seven_day_opus", "seven_day_sonnet", "seven_day_fable", "unknown", "overage")
# Claim names that are another name of a bucket (the Fable window's header family is 7d_oi).
ALIASES = {"seven_day_overage_included": "seven_day_fable", "7d_oi": "seven_day_fable"}
MAX_BUCKETS = 24  # per trace line


def bucket_name(name):
    """The bucket a trace line's key names, or None: a known bucket, an alias of one, or any
    per-model weekly bucket `seven_day_<model>` (lowercase letters, digits and `_`)."""
    if not isinstance(name, str):
        return None
    name = ALIASES.get(name, name)
    if name in BUCKETS:
        return name
    rest = name.removeprefix("seven_day_")
    if rest != name and 0 < len(rest) <= 32 and all(c.isdigit() or c == "_" or "a" <= c <= "z" for c in rest):
        return name
    return None


def record(t, source, buckets, account=None):
    """A trace line: buckets maps name -> (percent, resets_at or None); account: the config dir it was read for."""
    line = {"t": round(float(t), 3), "source": source}
    if account:
        line["account"] = account
    for name, (pct, resets_at) in buckets.items():
        line[name] = {"percent": round(float(pct), 2), "resets_at": resets_at}
    return line


def append(path, line):
    """Append one trace line; returns the file's size after the write."""
    return fsutil.append_jsonl(path, line, ensure_ascii=True)


def compact(path, keep=KEEP_LINES, max_bytes=MAX_BYTES):
    """Keep the newest `keep` lines, at most 3/4 of `max_bytes` of them (atomic replace). Only the
    file's last `max_bytes` are read, so a file without newlines costs that much, not its size (it is
    emptied: no whole line is left in it). Not through a symlink, and only a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return
        start = max(0, info.st_size - max_bytes)
        os.lseek(fd, start, os.SEEK_SET)
        chunks, left = [], max_bytes
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
    finally:
        os.close(fd)
    lines = b"".join(chunks).splitlines(keepends=True)
    if start > 0 and lines:
        lines = lines[1:]  # the cut line (or the whole tail of a file without newlines)
    elif len(lines) <= keep and info.st_size <= max_bytes * 3 // 4:
        return
    kept, size = [], 0
    for line in reversed(lines[-keep:]):
        if size + len(line) > max_bytes * 3 // 4:
            break
        kept.append(line)
        size += len(line)
    fsutil.atomic_write(path, b"".join(reversed(kept)))


def iter_lines(path):
    """Each well-formed trace line (damaged lines, e.g. from a crash mid-write, are skipped)."""
    for line in fsutil.read_jsonl(path):
        if isinstance(line.get("t"), (int, float)):
            yield line


def to_samples(line):
    """policy.Sample objects of one trace line (imports policy: not for the statusline path)."""
    from spillover.policy import Sample

    out = []
    account = line.get("account") if isinstance(line.get("account"), str) else None
    for key, entry in line.items():
        bucket = bucket_name(key)
        if bucket is None or not isinstance(entry, dict) or len(out) >= MAX_BUCKETS:
            continue
        pct, resets = number(entry.get("percent")), number(entry.get("resets_at"))
        if pct is None:
            continue
        out.append(Sample(bucket, pct, float(line["t"]), str(line.get("source", "?")), resets, bool(entry.get("wall")),
                          account))
    return out


def read(path, since=None):
    samples = []
    for line in iter_lines(path):
        if since is None or line["t"] >= since:
            samples.extend(to_samples(line))
    return samples
