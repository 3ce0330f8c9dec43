"""What a quota source is: the interface every module in spillover/sources/ implements.

A source has a `name` and `read(ctx) -> SourceResult`. The tick reads the local sources first
(`local = True`: free, and they say whether Claude Code is active), then the others concurrently;
each result's record is kept in state.json `sources[name]` (a source whose `read` returns
record=None keeps none).
"""

from dataclasses import dataclass, field, fields

from spillover.errors import SourceError


@dataclass
class SourceRecord:
    """What state.json keeps about one source between ticks (`sources[name]`).

    ok: the last read worked (None: never read). error/kind: the last failure's redacted message
    and SourceError.kind. due: why the next read is (not) due, as text. failures: consecutive
    failures. extra: the source's own fields (oauth: status, client; transcripts: last_activity,
    walls), stored flat beside the others.
    """

    ok: bool | None = None
    error: str | None = None
    kind: str | None = None
    last_attempt_at: float | None = None
    last_ok_at: float | None = None
    last_reading_at: float | None = None
    due: str | None = None
    failures: int | None = None
    backoff_until: float | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, data):
        data = dict(data) if isinstance(data, dict) else {}
        known = {f.name for f in fields(cls)} - {"extra"}
        rec = cls(extra={k: v for k, v in data.items() if k not in known})
        for name in known & data.keys():
            setattr(rec, name, data[name])
        return rec

    def to_json(self):
        out = dict(self.extra)
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name != "extra" and (value is not None or f.name in ("ok", "error")):
                out[f.name] = value
        return out

    def succeeded(self, now, **extra):
        """This record after a good read at `now`."""
        self.last_attempt_at = now
        self.ok, self.last_ok_at, self.error, self.kind, self.failures = True, now, None, None, 0
        self.extra.update(extra)
        return self

    def failed(self, now, exc, **extra):
        """This record after a read that raised SourceError `exc` at `now`."""
        self.last_attempt_at = now
        self.ok, self.error, self.kind = False, str(exc), exc.kind
        self.failures = int(self.failures or 0) + 1
        self.extra.update(extra)
        return self


@dataclass
class SourceResult:
    """samples: policy.Sample readings. record: the source's SourceRecord (None: keeps none).
    info: what the tick passes on besides samples (oauth: extra_usage; transcripts: last_activity;
    claude_json: extra_usage)."""

    samples: list = field(default_factory=list)
    record: SourceRecord | None = None
    info: dict = field(default_factory=dict)


@dataclass
class SourceContext:
    """What a source may use. cfg: Config. now: the tick's clock. state_dir: where it may keep
    files. record: its SourceRecord from the last tick. merged: {bucket: Sample} known so far
    (stored + local sources). spilled: the previous route is a target. active: Claude Code was
    used recently. force: `tick --poll`. dry_run: write nothing. spill_intervals: [(start, end)]
    spent on targets, from history.jsonl."""

    cfg: object
    now: float
    state_dir: str
    record: SourceRecord = field(default_factory=SourceRecord)
    merged: dict = field(default_factory=dict)
    spilled: bool = False
    active: bool = False
    force: bool = False
    dry_run: bool = False
    spill_intervals: list = field(default_factory=list)
    watch: str | None = None  # the bucket that caused the current spill (its reset is what to confirm)


class Source:
    """A quota source. Subclasses set `name` and implement `read`."""

    name = ""
    local = False  # read before the network sources, in the tick's thread
    # It can read the plan's quota while spilled, so it can confirm that a reset really happened.
    can_confirm_reset = False

    def enabled(self, cfg):
        """Whether the tick reads it (default: named in SPILLOVER_SOURCES)."""
        return self.name in cfg.sources

    def read(self, ctx):
        """SourceResult of one read. A failure is a record with ok False, never an exception."""
        raise NotImplementedError


def guarded(source, ctx, fetch):
    """SourceResult of `fetch()` (which returns samples) with the record updated either way."""
    try:
        got = fetch()
    except SourceError as exc:
        return SourceResult([], ctx.record.failed(ctx.now, exc))
    return SourceResult(list(got), ctx.record.succeeded(ctx.now))
