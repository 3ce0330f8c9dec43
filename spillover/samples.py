"""The sample trace: `samples.jsonl` in the state dir, one line per reading.

Shape (also what `spillover simulate` replays):
    {"t": 1767300000.0, "source": "statusline",
     "five_hour": {"percent": 87.0, "resets_at": 1767312000.0}, "seven_day": {...}}
Any bucket may be absent; `resets_at` may be null. Appenders use one O_APPEND write per line;
the file is compacted (under the tick lock, or by the statusline when it grows too big) to its
newest lines, so it stays bounded.

Only `fsutil` (os, json, fcntl) and `sanitize` here: the statusline command imports this on every render.
"""


from spillover import fsutil
from spillover.sanitize import number

MAX_BYTES = 512 * 1024
KEEP_LINES = 2000
BUCKETS = ("five_hour", "seven_day", "seven_day_opus", "seven_day_sonnet", "seven_day_fable", "unknown", "overage")


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


def compact(path, keep=KEEP_LINES):
    """Keep the newest `keep` lines (atomic replace)."""
    try:
        with open(path, "rb") as handle:
            lines = handle.readlines()
    except FileNotFoundError:
        return
    if len(lines) <= keep:
        return
    fsutil.atomic_write(path, b"".join(lines[-keep:]))


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
    for bucket in BUCKETS:
        entry = line.get(bucket)
        if not isinstance(entry, dict):
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
