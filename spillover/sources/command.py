"""Command source (design §4.4): any program that prints quota JSON, one JMESPath per bucket.

The defaults read `claude-meter --json`, whose buckets sit under `usage.*` as
`{"utilization": 42.0, "resets_at": "…Z"}` (percent). A picked value may also be a bare number
(percent) or an object with `used_percentage` or `percent`, and `resets_at` as ISO or epoch.
"""

import json
import shlex

from spillover import jsonsafe, proc
from spillover.errors import SourceError
from spillover.policy import Sample
from spillover.redact import redact
from spillover.sources.base import Source, guarded
from spillover.sources.oauth import parse_time, percent

SOURCE = "command"
MAX_OUTPUT = 4 << 20
# bucket -> Config attribute holding its JMESPath expression
EXPRESSIONS = (
    ("five_hour", "meter_five_hour"),
    ("seven_day", "meter_seven_day"),
    ("seven_day_opus", "meter_seven_day_opus"),
    ("seven_day_sonnet", "meter_seven_day_sonnet"),
)
PERCENT_KEYS = ("utilization", "used_percentage", "percent")


def _tail(text, secrets):
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return redact(lines[-1][:200], secrets) if lines else ""


def run(cfg):
    """The command's JSON output; SourceError with a clear reason otherwise."""
    try:
        argv = shlex.split(cfg.meter_command)
    except ValueError as exc:
        raise SourceError(f"SPILLOVER_METER_COMMAND cannot be parsed ({exc})") from None
    if not argv:
        raise SourceError("SPILLOVER_METER_COMMAND is empty")
    name = argv[0]
    try:
        code, out, err = proc.run(argv, timeout=cfg.timeout)
    except FileNotFoundError:
        raise SourceError(f"meter command {name!r} not found (is it installed and on PATH?)") from None
    except PermissionError:
        raise SourceError(f"meter command {name!r} is not executable") from None
    except proc.Timeout:
        raise SourceError(f"meter command {name!r} did not finish within {cfg.timeout:g}s", kind="unavailable") from None
    except OSError as exc:
        raise SourceError(f"meter command {name!r} could not run ({exc.strerror or exc})") from None
    stdout = out[:MAX_OUTPUT].decode("utf-8", "replace")
    if code != 0:
        why = _tail(err.decode("utf-8", "replace"), cfg.secrets) or _tail(stdout, cfg.secrets)
        raise SourceError(f"meter command {name!r} exited {code}" + (f": {why}" if why else ""))
    try:
        return jsonsafe.loads(stdout)
    except ValueError:
        shown = _tail(stdout, cfg.secrets) or "(no output)"
        raise SourceError(f"meter command {name!r} did not print JSON: {shown}") from None


def pick(value):
    """(percent, resets_at or None) of one picked value, or None."""
    resets = None
    if isinstance(value, dict):
        raw = next((value[k] for k in PERCENT_KEYS if value.get(k) is not None), None)
        resets = parse_time(value.get("resets_at"))
        value = raw
    pct = percent(value)
    return None if pct is None else (pct, resets)


def parse(cfg, data, now):
    import jmespath

    if not isinstance(data, (dict, list)):
        raise SourceError("meter command: output is not a JSON object")
    observed = now
    if isinstance(data, dict):
        fetched = parse_time(data.get("fetched_at"))  # claude-meter may print a cached snapshot
        if fetched is not None and fetched < now:
            observed = fetched
    out, problems = [], []
    for bucket, attr in EXPRESSIONS:
        expression = getattr(cfg, attr)
        if not expression:
            continue
        try:
            value = jmespath.search(expression, data)
        except jmespath.exceptions.JMESPathError as exc:
            problems.append(f"{expression}: {exc}")
            continue
        if value is None:
            continue
        got = pick(value)
        if got is None:
            problems.append(f"{expression} gave {json.dumps(value)[:80]}, not a percent")
            continue
        out.append(Sample(bucket, got[0], observed, SOURCE, got[1]))
    if not out:
        why = "; ".join(problems) or "none of the SPILLOVER_METER_* expressions matched"
        raise SourceError(f"meter command: {why}")
    return out


def fetch(cfg, now):
    return parse(cfg, run(cfg), now)


class CommandSource(Source):
    """A meter program (SPILLOVER_METER_COMMAND) that prints quota JSON."""

    name = "command"
    can_confirm_reset = True

    def enabled(self, cfg):
        return self.name in cfg.sources and bool(cfg.meter_command)

    def read(self, ctx):
        return guarded(self, ctx, lambda: fetch(ctx.cfg, ctx.now))


READER = CommandSource()
