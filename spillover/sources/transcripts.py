"""Transcript signal (design §4.3): wall hits Claude Code wrote into `projects/**/*.jsonl`.

A wall hit is a synthetic assistant record (`"isApiErrorMessage": true`, `"error": "rate_limit"`,
`"apiErrorStatus": 429`) whose text names the limit and, usually, its reset in local time:
`You've hit your 5-hour limit · resets 5:40pm (Europe/Madrid)` (2.1.332; 2.1.197 said "session
limit"), maybe followed by ` · progress saved` or ` · out of usage credits`. Older clients wrote
`Claude AI usage limit reached|<epoch>` or `5-hour limit reached ∙ resets 5am`. 2.1.3xx also
stores the rejected claim and its reset epoch (`quotaLimits`), used when present. The real
wordings of the pinned clients are fixtures in tests/fixtures/transcripts/.

Files are read incrementally: per file we remember the offset after the last complete line, with
inode and size to notice rotation or truncation (`transcripts.json` in the state dir). An
unchanged file costs one stat. New bytes are searched for the marker key at C speed; only the
few lines holding it are parsed.
"""

import json
import os
import stat
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from spillover import fsutil, jsonsafe, paths
from spillover.sources.base import Source, SourceRecord, SourceResult
from spillover.policy import Sample
from spillover.times import parse_time

SOURCE = "transcript"
MARKER = b'"isApiErrorMessage"'
CHUNK = 8 << 20  # bytes read at a time
MAX_LINE = 64 << 20  # a "line" longer than this is skipped, not buffered
OFFSETS_VERSION = 1
# A wall resets at most a week after it is written: an older file cannot hold a current wall.
MAX_WALL_AGE = 8 * 86400
ASSUMED_RESET = {"five_hour": 5 * 3600, "unknown": 5 * 3600, "overage": 5 * 3600}
WEEK = 7 * 86400

# --- classifying a message --------------------------------------------------------------------

# Warnings, notices and transient throttling: never a wall, whatever else the text says.
NOT_A_WALL = re.compile(
    r"You['’]ve used \d+%|Over \d+% of your|Approaching |You're close to"
    r"|You're now using (?:extra usage|usage credits|your usage allocation)|\bNow using (?:extra usage|usage credits|credits|your usage)"
    r"|Server is temporarily limiting requests|temporarily limiting requests"
    r"|^Switched to |Third-party apps now draw from|Extra usage is required for long context|Usage credits (?:are )?required for",
    re.IGNORECASE,
)
# `You've hit your <label>` (and the dialog's `You've reached your Fable limit for this week`). The
# label of each rate-limit claim, 2.1.332: five_hour "5-hour limit", seven_day "weekly limit",
# seven_day_opus "Opus limit", seven_day_sonnet "Sonnet limit", seven_day_overage_included
# "Fable limit", overage "usage credit limit" (2.1.197: "session limit", "Fable 5 limit"); no label
# ("You've hit your limit") is the usage credits' own wall; "usage limit" names no window.
HIT_YOUR = re.compile(
    r"You['’]ve (?:hit|reached) your (?:(session|5-hour|weekly|Opus|Sonnet|Fable(?: \d+(?:\.\d+)?)?|usage credit|usage) )?limit",
    re.IGNORECASE,
)
HIT_BUCKET = {"session": "five_hour", "5-hour": "five_hour", "weekly": "seven_day", "opus": "seven_day_opus",
              "sonnet": "seven_day_sonnet", "fable": "seven_day_fable", "usage credit": "overage", "usage": "unknown",
              None: "overage"}
# Spend caps on the usage credits: "You've hit your monthly spend limit", "… team's pooled group budget".
HIT_SPEND = re.compile(r"You['’]ve hit your [^·.\n]{0,60}?(?:spend limit|usage limit|group budget)", re.IGNORECASE)
# The usage credits (extra usage) that would carry on past a plan wall are gone or needed.
OUT_OF_CREDITS = re.compile(
    r"You['’]re out of (?:extra usage|usage credits)|Your org is out of usage\b|\brequires usage credits\b", re.IGNORECASE
)
# The structured form 2.1.3xx adds to the record: the claim that was rejected and its reset epoch.
CLAIM_BUCKET = {"five_hour": "five_hour", "seven_day": "seven_day", "seven_day_opus": "seven_day_opus",
                "seven_day_sonnet": "seven_day_sonnet", "seven_day_overage_included": "seven_day_fable",
                "overage": "overage"}
LEGACY_EPOCH = re.compile(r"Claude AI usage limit reached\|(\d{9,13})")
# Also 2.1.332's "Fable limit reached · continuing on Fable uses usage credits · Claude stopped here …".
LEGACY_REACHED = re.compile(r"\b(5-hour|weekly|Opus weekly|Opus|Sonnet weekly|Sonnet|Fable(?: \d+(?:\.\d+)?)?) limit reached",
                            re.IGNORECASE)
LEGACY_BUCKET = {"5-hour": "five_hour", "weekly": "seven_day", "opus weekly": "seven_day_opus", "opus": "seven_day_opus",
                 "sonnet weekly": "seven_day_sonnet", "sonnet": "seven_day_sonnet", "fable": "seven_day_fable"}
CLAUDE_USAGE_REACHED = re.compile(r"Claude (?:AI )?usage limit reached", re.IGNORECASE)

# The reset, after `resets` or `reset at`: `5:40pm (Europe/Madrid)`, `3pm`, `Sep 17 at 10pm (…)`,
# `Mon 12:00am`, `Oct 6, 1pm`.
RESET = re.compile(
    r"\breset(?:s)?(?: at)?\s+"
    r"(?:(?P<weekday>Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*\.?\s+|(?P<month>Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+(?P<day>\d{1,2})(?:,| at)?\s+)?"
    r"(?P<hour>\d{1,2})(?::(?P<minute>\d{2}))?\s*(?P<ampm>am|pm)?"
    r"(?:\s*\((?P<zone>[A-Za-z0-9_+\-/]+)\))?",
    re.IGNORECASE,
)
MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
WEEKDAYS = {d: i for i, d in enumerate(("mon", "tue", "wed", "thu", "fri", "sat", "sun"))}


def classify(text):
    """(bucket, reset match or epoch or None) of a wall message, or None when it is not a wall."""
    if not text or NOT_A_WALL.search(text):
        return None
    m = LEGACY_EPOCH.search(text)
    if m:
        return "unknown", float(m.group(1)) / (1000 if len(m.group(1)) > 11 else 1)
    m = HIT_YOUR.search(text)
    if m:
        label = m.group(1).lower() if m.group(1) else None
        bucket = HIT_BUCKET["fable" if label and label.startswith("fable") else label]
    elif (m := HIT_SPEND.search(text) or OUT_OF_CREDITS.search(text)):
        bucket = "overage"
    else:
        m = LEGACY_REACHED.search(text)
        if m:
            label = m.group(1).lower()
            bucket = LEGACY_BUCKET["fable" if label.startswith("fable") else label]
        elif CLAUDE_USAGE_REACHED.search(text):
            bucket = "unknown"
        else:
            return None  # e.g. `API Error: Request rejected (429) · <not a limit>`
    reset = RESET.search(text, m.end() if m else 0)
    return bucket, reset


def _zone(name):
    if not name:
        return None
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def resolve_reset(match, written_at, tz=None):
    """Epoch of the next moment after `written_at` that matches a `resets …` phrase (None if invalid).

    A phrase without a zone is in `tz` (a zone name) or else the machine's local time: Claude Code
    wrote it here.
    """
    hour = int(match.group("hour"))
    minute = int(match.group("minute") or 0)
    ampm = (match.group("ampm") or "").lower()
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    zone = _zone(match.group("zone")) or _zone(tz)
    base = datetime.fromtimestamp(written_at, zone) if zone else datetime.fromtimestamp(written_at).astimezone()

    def at(day):
        """The instants of that wall-clock time on `day`, earliest first: two on a fall-back day
        (fold 0 and fold 1), compared as instants (aware datetimes of one zone compare as wall
        times, which would push a reset in the repeated hour a day late)."""
        out = []
        for fold in (0, 1):
            naive = datetime(day.year, day.month, day.day, hour, minute, fold=fold)
            moment = naive.replace(tzinfo=zone) if zone else naive.astimezone()
            if all(abs(moment.timestamp() - o.timestamp()) > 1 for o in out):
                out.append(moment)
        return sorted(out, key=lambda m: m.timestamp())

    month, weekday = match.group("month"), match.group("weekday")
    if month:
        number = MONTHS[month[:3].lower()]
        for year in (base.year, base.year + 1):
            try:
                candidates = at(datetime(year, number, int(match.group("day"))))
            except ValueError:
                return None
            for candidate in candidates:
                if candidate.timestamp() > written_at - 86400:
                    return candidate.timestamp()
        return None
    day = base
    for _ in range(8):
        for candidate in at(day):
            if candidate.timestamp() > written_at and (weekday is None or candidate.weekday() == WEEKDAYS[weekday[:3].lower()]):
                return candidate.timestamp()
        day = day + timedelta(days=1)
    return None


def classify_wall(text, now, tz=None):
    """(bucket, resets_at epoch or None) of a wall message written at `now`, or None when the text is
    not a wall (a warning, a notice, a transient limit). For any text that carries Claude Code's
    wording: a transcript record, a StopFailure hook's `last_assistant_message`. A reset phrase
    without a zone is read in `tz` (a zone name), else in the machine's local time."""
    found = classify(text)
    if found is None:
        return None
    bucket, reset = found
    if reset is None:
        return bucket, None
    if isinstance(reset, float):
        return bucket, reset
    return bucket, resolve_reset(reset, now, tz)


def _claimed(record):
    """(bucket, reset epoch or None) from the structured `quotaLimits` of a 2.1.3xx wall record."""
    limits = record.get("quotaLimits")
    if not isinstance(limits, dict) or limits.get("status") != "rejected":
        return None
    bucket = CLAIM_BUCKET.get(limits.get("rateLimitType"))
    if bucket is None:
        return None
    key = "overageResetsAt" if bucket == "overage" and limits.get("overageResetsAt") else "resetsAt"
    reset = limits.get(key)
    if isinstance(reset, bool) or not isinstance(reset, (int, float)) or reset <= 0:
        reset = None
    return bucket, None if reset is None else float(reset) / (1000 if reset > 1e11 else 1)


def message_text(record):
    message = record.get("message")
    content = message.get("content") if isinstance(message, dict) else record.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(c.get("text")) for c in content if isinstance(c, dict) and isinstance(c.get("text"), str))
    return ""


def record_time(record):
    return parse_time(record.get("timestamp"))


def wall_of(record, fallback_time):
    """(bucket, observed_at, resets_at or None) of a wall-hit record, or None."""
    if not isinstance(record, dict) or record.get("isApiErrorMessage") is not True:
        return None
    if record.get("error") not in (None, "rate_limit"):
        return None
    status = record.get("apiErrorStatus")
    if status is not None and status != 429:
        return None
    written = record_time(record) or fallback_time
    text = message_text(record)
    found = classify_wall(text, written)
    claimed = _claimed(record)
    if found is None:
        # A wording this module does not know yet, on a record the client marked as a usage wall.
        if claimed is None or record.get("apiError") != "usage_limit_reached" or NOT_A_WALL.search(text or ""):
            return None
        return claimed[0], written, claimed[1]
    bucket, resets_at = found
    if claimed is not None and claimed[0] == bucket and claimed[1] is not None:
        resets_at = claimed[1]  # the exact epoch beats the minute the text shows
    return bucket, written, resets_at


# --- incremental reading ----------------------------------------------------------------------


@dataclass
class ScanResult:
    samples: list = field(default_factory=list)  # policy.Sample with wall=True, percent=100
    last_activity: float | None = None  # newest mtime of any transcript file
    problems: list = field(default_factory=list)
    plan_answered_at: float | None = None  # newest real answer after the newest wall, outside any spill


ANSWER_TAIL = 64 * 1024  # bytes of a transcript's end searched for a real answer after a wall


def answered_after(path, after, spilled_intervals):
    """Time of the newest real assistant answer (not a synthetic error record) in the end of
    `path` written after `after` and outside every spill: proof that the plan answers again."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(fd).st_mode):  # swapped for a FIFO or a device since the scan
                return None
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - ANSWER_TAIL))
            tail = handle.read(ANSWER_TAIL)
    except OSError:
        return None
    for raw in reversed(tail.split(b"\n")):
        if b'"assistant"' not in raw:
            continue
        try:
            record = jsonsafe.loads(raw)
        except ValueError:
            continue
        if not isinstance(record, dict) or record.get("type") != "assistant" or record.get("isApiErrorMessage") is True:
            continue
        message = record.get("message") if isinstance(record.get("message"), dict) else {}
        if message.get("model") == "<synthetic>":
            continue
        written = record_time(record)
        if written is None or written <= after:
            return None  # the newest answer is older than the wall
        if not _in_spill(written, spilled_intervals):
            return written
    return None


def roots(claude_dirs):
    """`<dir>/projects` of each Claude config dir, plus the legacy `~/.config/claude/projects`."""
    found, seen = [], set()
    home = os.path.expanduser("~")
    candidates = [os.path.join(d, "projects") for d in claude_dirs]
    candidates += [os.path.join(paths.config_home(), "claude", "projects"), os.path.join(home, ".config", "claude", "projects")]
    for path in candidates:
        real = os.path.realpath(path)
        if real not in seen and os.path.isdir(path):
            seen.add(real)
            found.append(path)
    return found


def transcript_files(root):
    """(path, stat) of every *.jsonl under root; symlinked dirs are not followed."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames:
            if name.endswith(".jsonl"):
                path = os.path.join(dirpath, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode):  # a FIFO would hang the tick, a device fill its memory
                    yield path, st


def read_new(path, offset, on_line):
    """Read complete lines from `offset`; call on_line(bytes) for lines holding MARKER. Returns the new offset."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return offset
        handle.seek(offset)
        carry = b""
        skipping = False  # inside an over-long line: drop bytes up to its newline
        while True:
            chunk = handle.read(CHUNK)
            if not chunk:
                break
            data = carry + chunk if carry else chunk
            cut = data.rfind(b"\n")
            if cut == -1:
                if len(data) > MAX_LINE:
                    offset += len(data)
                    carry, skipping = b"", True
                else:
                    carry = data
                continue
            body, carry = data[: cut + 1], data[cut + 1:]
            if skipping:
                first = body.find(b"\n") + 1
                offset += first
                body, skipping = body[first:], False
            pos = body.find(MARKER)
            while pos != -1:
                start = body.rfind(b"\n", 0, pos) + 1
                end = body.find(b"\n", pos)
                on_line(body[start:end])
                pos = body.find(MARKER, end)
            offset += len(body)
    return offset


def _in_spill(at, intervals):
    return any(start <= at and (end is None or at < end) for start, end in intervals)


def scan(claude_dirs, state_dir, now, spilled_intervals=(), save=True):
    """New wall hits since the last scan, plus the walls still current from earlier scans.
    `save=False` (tick --dry-run) leaves the remembered offsets as they were."""
    offsets_path = os.path.join(state_dir, paths.TRANSCRIPT_OFFSETS)
    saved = fsutil.read_json(offsets_path, default=None)
    if not isinstance(saved, dict) or saved.get("version") != OFFSETS_VERSION:
        saved = {}
    old_files = saved.get("files") if isinstance(saved.get("files"), dict) else {}
    # One wall per bucket and reset: retries and subagent transcripts repeat the same hit; the
    # newest record of it is kept (newest sample wins when merging).
    walls = {}  # (bucket, reset minute, account) -> (observed_at, resets_at)

    def keep(bucket, written, resets_at, account=None):
        key = (bucket, None if resets_at is None else round(resets_at / 60), account)
        if key not in walls or walls[key][0] < written:
            walls[key] = (written, resets_at)

    for entry in saved.get("walls") or ():
        if isinstance(entry, list) and len(entry) in (3, 4) and isinstance(entry[1], (int, float)):
            keep(*entry)
    account = None
    result = ScanResult()
    files = {}

    def on_line(raw):
        try:
            record = jsonsafe.loads(raw)
        except ValueError:
            return
        wall = wall_of(record, now)
        if wall is None:
            return
        if _in_spill(wall[1], spilled_intervals):
            return  # hit while on a spill target: that target's trouble, not the plan's
        keep(*wall, account)

    dirs = {os.path.realpath(os.path.join(d, "projects")): paths.account(d) for d in claude_dirs}
    for root in roots(claude_dirs):
        account = dirs.get(os.path.realpath(root), paths.account(claude_dirs[0]) if claude_dirs else None)
        for path, st in transcript_files(root):
            result.last_activity = max(result.last_activity or 0, st.st_mtime)
            old = old_files.get(path)
            if (isinstance(old, dict) and old.get("ino") == st.st_ino and old.get("size") == st.st_size
                    and old.get("mtime") == st.st_mtime and old.get("offset") == st.st_size):
                files[path] = old  # unchanged since the last scan: not opened again
                continue
            offset = old.get("offset", 0) if isinstance(old, dict) and old.get("ino") == st.st_ino else 0
            if not isinstance(offset, int) or offset > st.st_size:
                offset = 0  # truncated or rewritten: start over
            if offset == 0 and st.st_mtime < now - MAX_WALL_AGE:
                offset = st.st_size  # too old to hold a wall that still matters
            if offset < st.st_size:
                try:
                    offset = read_new(path, offset, on_line)
                except OSError as exc:
                    result.problems.append(f"{path}: cannot be read ({exc.strerror or exc})")
            # Only files seen in this walk are kept: a deleted transcript's offset is forgotten.
            files[path] = {"ino": st.st_ino, "offset": offset, "size": st.st_size, "mtime": st.st_mtime}

    kept = []
    for (bucket, _, account), (written, resets_at) in walls.items():
        until = resets_at if resets_at is not None else written + ASSUMED_RESET.get(bucket, WEEK)
        if until <= now or _in_spill(written, spilled_intervals):
            continue
        kept.append([bucket, written, resets_at, account])
        result.samples.append(Sample(bucket, 100.0, written, SOURCE, until, wall=True, account=account))
    newest_wall = max((s.observed_at for s in result.samples), default=None)
    if newest_wall is not None:
        for root in roots(claude_dirs):
            for path, st in transcript_files(root):
                if st.st_mtime > newest_wall:
                    at = answered_after(path, newest_wall, spilled_intervals)
                    if at is not None and at <= now:
                        result.plan_answered_at = max(result.plan_answered_at or 0, at)
    result.samples.sort(key=lambda s: s.observed_at)
    if save:
        fsutil.write_if_changed(offsets_path, json.dumps({"version": OFFSETS_VERSION, "files": files, "walls": kept}, sort_keys=True))
    return result


class TranscriptsSource(Source):
    """Wall hits Claude Code wrote into its session transcripts, read incrementally."""

    name = "transcripts"
    local = True

    def read(self, ctx):
        result = scan(ctx.cfg.claude_dirs, ctx.state_dir, ctx.now, ctx.spill_intervals, save=not ctx.dry_run)
        answered = max(filter(None, (result.plan_answered_at, ctx.record.extra.get("plan_answered_at"))), default=None)
        record = SourceRecord(ok=not result.problems, error="; ".join(result.problems) or None, last_attempt_at=ctx.now,
                              extra={"last_activity": result.last_activity, "walls": len(result.samples),
                                     "plan_answered_at": answered})
        return SourceResult(result.samples, record, {"last_activity": result.last_activity, "plan_answered_at": answered})


READER = TranscriptsSource()
