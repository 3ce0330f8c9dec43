"""Layered configuration (design §6): defaults < config file (dotenv) < process environment.

Every value is validated on load; a bad one is a one-line ConfigError naming the key, the value
(redacted when it is a secret) and what is allowed.
"""

import difflib
import ipaddress
import os
import re
import stat
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from spillover import paths
from spillover.errors import ConfigError
from spillover.redact import mask

SOURCES = ("oauth", "statusline", "transcripts", "command")

# Characters that can never be part of a key, URL or slug. Everything else (quotes, `$()`,
# backticks, unicode) is allowed and reaches the shells byte for byte through quoting.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/~@+\-\[\]]*$")


def _text(key, raw):
    if _CONTROL.search(raw):
        raise ConfigError(f"{key}={_show(key, raw)!s}: control characters (newline, tab, NUL…) are not allowed")
    return raw


def _show(key, raw):
    return mask(raw) if key in SECRET_KEYS else repr(raw)


def _percent(key, raw):
    text = raw.strip().rstrip("%").strip()
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected a percent such as 95 (or a fraction such as 0.95)") from None
    if 0 < value <= 1 and "." in text:
        value *= 100  # 0.95 is read as 95 (design §6)
    if not 0 < value <= 100:
        raise ConfigError(f"{key}={raw!r}: expected a percent between 0 and 100")
    return value


def _money(key, raw):
    text = raw.strip().lstrip("$")
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected an amount in USD such as 1.00") from None
    if value < 0 or value != value or value == float("inf"):
        raise ConfigError(f"{key}={raw!r}: expected an amount in USD of 0 or more")
    return value


def _optional_money(key, raw):
    return None if raw.strip() == "" else _money(key, raw)


def _minutes(key, raw):
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected a number of minutes") from None
    if not 0 <= value <= 24 * 60:
        raise ConfigError(f"{key}={raw!r}: expected minutes between 0 and 1440")
    return value


def _seconds(key, raw):
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected a number of seconds") from None
    if not 0.1 <= value <= 120:
        raise ConfigError(f"{key}={raw!r}: expected seconds between 0.1 and 120")
    return value


def _tokens(key, raw):
    try:
        value = int(raw.strip().replace("_", ""))
    except ValueError:
        raise ConfigError(f"{key}={raw!r}: expected a whole number of tokens") from None
    if not 1000 <= value <= 10_000_000:
        raise ConfigError(f"{key}={raw!r}: expected tokens between 1000 and 10000000")
    return value


def _choice(*allowed):
    def parse(key, raw):
        value = raw.strip().lower()
        if value not in allowed:
            raise ConfigError(f"{key}={raw!r}: expected one of {', '.join(allowed)}")
        return value

    return parse


def _list_of(*allowed, empty_ok=False):
    """A comma/space list of names from `allowed` (or from `allowed[0]()` when it is a callable,
    read at parse time: the target registry)."""

    def parse(key, raw):
        choices = allowed[0]() if len(allowed) == 1 and callable(allowed[0]) else allowed
        return _pick_list(key, raw, choices, empty_ok)

    return parse


def _target_names():
    from spillover import targets

    return targets.names()


def _pick_list(key, raw, allowed, empty_ok):
    items = [part for part in re.split(r"[\s,]+", raw.strip().lower()) if part]
    bad = [item for item in items if item not in allowed]
    if bad:
        hint = difflib.get_close_matches(bad[0], allowed, 1)
        extra = f" (did you mean {hint[0]}?)" if hint else ""
        raise ConfigError(f"{key}={raw!r}: {bad[0]!r} is not one of {', '.join(allowed)}{extra}")
    if len(set(items)) != len(items):
        raise ConfigError(f"{key}={raw!r}: each entry may appear only once")
    if not items and not empty_ok:
        raise ConfigError(f"{key}={raw!r}: name at least one of {', '.join(allowed)}")
    return tuple(items)


def is_loopback(host):
    """Literal loopback addresses and `localhost` itself. A `*.localhost` name resolves through
    whatever resolver the machine has, so it is not trusted with a credential over plain http."""
    host = (host or "").strip("[]").rstrip(".").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _safe_url(raw):
    """The URL as it may be shown: without user info, query or fragment (they can hold a key)."""
    parts = urlsplit(raw)
    host = parts.hostname or ""
    netloc = ("…@" if parts.username or parts.password else "") + host + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc, query="…" if parts.query else "", fragment="").geturl()


def _url(key, raw, *, optional=False):
    raw = _text(key, raw.strip())
    if optional and not raw:
        return ""
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 — raises on a bad port
    except ValueError:
        raise ConfigError(f"{key}: not a valid URL") from None
    shown = repr(_safe_url(raw))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{key}={shown}: expected an http(s) URL such as https://openrouter.ai/api")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(f"{key}={shown}: a URL that carries a credential must be https (http only for loopback)")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigError(f"{key}={shown}: expected a plain base URL without query, fragment or user info")
    return raw.rstrip("/")


def _optional_url(key, raw):
    return _url(key, raw, optional=True)


# Keys issued by OpenRouter and Anthropic are far longer than this; a gateway token may be short.
_MIN_KEY_LENGTH = {"OPENROUTER_API_KEY": 20, "OPENROUTER_MANAGEMENT_KEY": 20, "SPILLOVER_ANTHROPIC_API_KEY": 20}
_PLACEHOLDER = re.compile(r"…|\.\.\.|<[^>]*>|[<>]")
_INVISIBLE = {"\u200b": "a zero-width space", "\u200c": "a zero-width non-joiner", "\u200d": "a zero-width joiner",
              "\ufeff": "a byte-order mark", "\u00a0": "a no-break space", " ": "a space"}


def _secret(key, raw):
    value = _text(key, raw.strip())
    if not value:
        return value
    if _PLACEHOLDER.search(value):
        raise ConfigError(f"{key}={mask(value)}: this is the README's placeholder, not a key: replace the placeholder "
                          f"with your real key (no `…`, `...` or `<>`)")
    for i, char in enumerate(value):
        if not ("!" <= char <= "~"):
            what = _INVISIBLE.get(char) or ("whitespace" if char.isspace() else f"the non-ASCII character U+{ord(char):04X}")
            raise ConfigError(f"{key}={mask(value)}: contains {what} at character {i + 1}; a key is printable ASCII "
                              "without spaces: paste it again")
    if len(value) < _MIN_KEY_LENGTH.get(key, 8):
        raise ConfigError(f"{key}={mask(value)}: too short to be a key ({len(value)} characters): paste the whole key")
    return value


def _slug(key, raw):
    value = _text(key, raw.strip())
    if value and not _SLUG.match(value):
        raise ConfigError(f"{key}={raw!r}: expected a model slug such as anthropic/claude-sonnet-4.6")
    return value


def _command(key, raw):
    return _text(key, raw.strip())


def _jmespath(key, raw):
    value = _text(key, raw.strip())
    if value:
        import jmespath  # only when a meter command is configured

        try:
            jmespath.compile(value)
        except jmespath.exceptions.JMESPathError as exc:
            raise ConfigError(f"{key}={raw!r}: not a valid JMESPath expression ({str(exc).splitlines()[0]})") from None
    return value


def _path(key, raw):
    return os.path.expanduser(_text(key, raw.strip()))


@dataclass(frozen=True)
class Key:
    name: str
    attr: str
    default: str
    parse: object
    help: str
    secret: bool = False


KEYS = (
    Key("SPILLOVER_THRESHOLD", "threshold", "95", _percent, "spill when a watched bucket reaches this percent (0.95 reads as 95)"),
    Key("SPILLOVER_RESUME", "resume", "50", _percent, "return to the plan when the hot bucket is back under this percent"),
    Key("SPILLOVER_TARGETS", "targets", "openrouter", _list_of(_target_names), "ordered spill targets: openrouter, anthropic, gateway"),
    Key("SPILLOVER_WEEKLY", "weekly", "notify", _choice("notify", "spill", "ignore"), "weekly bucket at the wall: notify, spill or ignore"),
    Key("SPILLOVER_MODEL_WALL", "model_wall", "downshift", _choice("downshift", "spill", "notify"), "a per-model weekly bucket (Fable, Opus, …) at the wall: downshift that tier's alias on the plan, spill, or notify"),
    Key("SPILLOVER_PLAN_FABLE_MODEL", "plan_fable_model", "claude-fable-5-1", _slug, "Anthropic model id of the fable tier on the plan (a downshift target)"),
    Key("SPILLOVER_PLAN_OPUS_MODEL", "plan_opus_model", "claude-opus-5-5", _slug, "Anthropic model id the fable alias moves to when Fable is at its wall"),
    Key("SPILLOVER_PLAN_SONNET_MODEL", "plan_sonnet_model", "claude-sonnet-5-5", _slug, "Anthropic model id a walled opus (or fable) alias moves to"),
    Key("SPILLOVER_PLAN_HAIKU_MODEL", "plan_haiku_model", "claude-haiku-5-5", _slug, "Anthropic model id a walled sonnet alias moves to"),
    Key("SPILLOVER_EXTRA_USAGE", "extra_usage", "spill", _choice("spill", "stay"), "when Anthropic's usage credits are on: still spill, or stay on the plan"),
    Key("SPILLOVER_LEAD_MINUTES", "lead_minutes", "5", _minutes, "spill when the forecast reaches the threshold within this many minutes"),
    Key("SPILLOVER_FRESH_MINUTES", "fresh_minutes", "15", _minutes, "a quota sample older than this is stale and never flips the route"),
    Key("SPILLOVER_POLL_MINUTES", "poll_minutes", "10", _minutes, "poll the OAuth usage endpoint about this often (sooner near a wall)"),
    Key("SPILLOVER_STALE_MINUTES", "stale_minutes", "5", _minutes, "a decision older than this means the cron tick is not running"),
    Key("SPILLOVER_TIMEOUT", "timeout", "5", _seconds, "timeout of each HTTP request, in seconds"),
    Key("SPILLOVER_SOURCES", "sources", "oauth,statusline,transcripts,command", _list_of(*SOURCES, empty_ok=True), "plan-quota signals to use"),
    Key("SPILLOVER_CLAUDE_USAGE_URL", "usage_url", "https://api.anthropic.com/api/oauth/usage", _url, "OAuth usage endpoint"),
    Key("CLAUDE_CONFIG_DIR", "claude_config_dir", "", _command, "Claude Code's config dir(s), comma-separated (default ~/.claude)"),
    Key("SPILLOVER_METER_COMMAND", "meter_command", "", _command, "a command that prints quota JSON, e.g. `claude-meter --json`"),
    Key("SPILLOVER_METER_FIVE_HOUR", "meter_five_hour", "usage.five_hour", _jmespath, "JMESPath of the 5-hour bucket in the meter's JSON"),
    Key("SPILLOVER_METER_SEVEN_DAY", "meter_seven_day", "usage.seven_day", _jmespath, "JMESPath of the weekly bucket"),
    Key("SPILLOVER_METER_SEVEN_DAY_OPUS", "meter_seven_day_opus", "usage.seven_day_opus", _jmespath, "JMESPath of the weekly Opus bucket"),
    Key("SPILLOVER_METER_SEVEN_DAY_SONNET", "meter_seven_day_sonnet", "usage.seven_day_sonnet", _jmespath, "JMESPath of the weekly Sonnet bucket"),
    Key("OPENROUTER_API_KEY", "openrouter_key", "", _secret, "OpenRouter inference key (becomes ANTHROPIC_AUTH_TOKEN when spilled)", True),
    Key("OPENROUTER_MANAGEMENT_KEY", "openrouter_management_key", "", _secret, "optional OpenRouter management key, for the account balance", True),
    Key("OPENROUTER_API_URL", "openrouter_api_url", "https://openrouter.ai/api/v1", _url, "OpenRouter REST base"),
    Key("SPILLOVER_OPENROUTER_BASE_URL", "openrouter_base_url", "https://openrouter.ai/api", _url, "what Claude Code gets as ANTHROPIC_BASE_URL on the openrouter route"),
    Key("SPILLOVER_MIN_BALANCE", "min_balance", "1.00", _money, "USD floor for key remaining and account balance"),
    Key("SPILLOVER_LOW_BALANCE", "low_balance", "5.00", _money, "notify once when a target's budget falls under this (USD)"),
    Key("SPILLOVER_DAILY_CAP", "daily_cap", "", _optional_money, "skip OpenRouter when the key spent this much today (USD, UTC day)"),
    Key("SPILLOVER_MONTHLY_CAP", "monthly_cap", "", _optional_money, "skip OpenRouter when the key spent this much this month (USD)"),
    Key("SPILLOVER_TURN_CONTEXT_TOKENS", "turn_context_tokens", "200000", _tokens, "context tokens of one maximal turn, for the OpenRouter budget floor"),
    Key("SPILLOVER_TURN_OUTPUT_TOKENS", "turn_output_tokens", "32000", _tokens, "output tokens of one maximal turn (Claude Code's max_tokens for an OpenRouter slug)"),
    Key("SPILLOVER_FABLE_MODEL", "fable_model", "", _slug, "OpenRouter slug for the fable alias (unset: the newest in OpenRouter's catalog)"),
    Key("SPILLOVER_OPUS_MODEL", "opus_model", "", _slug, "OpenRouter slug for the opus alias (unset: the newest in OpenRouter's catalog)"),
    Key("SPILLOVER_SONNET_MODEL", "sonnet_model", "", _slug, "OpenRouter slug for the sonnet alias (unset: the newest in OpenRouter's catalog)"),
    Key("SPILLOVER_HAIKU_MODEL", "haiku_model", "", _slug, "OpenRouter slug for the haiku alias and background work (unset: from the catalog)"),
    Key("SPILLOVER_SUBAGENT_MODEL", "subagent_model", "", _slug, "OpenRouter slug for subagents (unset: the sonnet slug)"),
    Key("SPILLOVER_ANTHROPIC_API_KEY", "anthropic_key", "", _secret, "Anthropic API key for the anthropic target", True),
    Key("SPILLOVER_GATEWAY_BASE_URL", "gateway_base_url", "", _optional_url, "base URL of an Anthropic-compatible gateway"),
    Key("SPILLOVER_GATEWAY_TOKEN", "gateway_token", "", _secret, "bearer token for the gateway", True),
    Key("SPILLOVER_GATEWAY_HEALTH_URL", "gateway_health_url", "", _optional_url, "optional URL that must answer 2xx for the gateway to count as healthy"),
    Key("SPILLOVER_GATEWAY_FABLE_MODEL", "gateway_fable_model", "", _slug, "gateway model for the fable alias (unset: the gateway's default)"),
    Key("SPILLOVER_GATEWAY_OPUS_MODEL", "gateway_opus_model", "", _slug, "gateway model for the opus alias (unset: the gateway's default)"),
    Key("SPILLOVER_GATEWAY_SONNET_MODEL", "gateway_sonnet_model", "", _slug, "gateway model for the sonnet alias"),
    Key("SPILLOVER_GATEWAY_HAIKU_MODEL", "gateway_haiku_model", "", _slug, "gateway model for the haiku alias"),
    Key("SPILLOVER_GATEWAY_SUBAGENT_MODEL", "gateway_subagent_model", "", _slug, "gateway model for subagents"),
    Key("SPILLOVER_LIVE", "live", "", _choice("", "on", "off"), "publish the route into Claude Code's settings.json so running sessions follow it (default: on once `spillover install live` ran)"),
    Key("SPILLOVER_LIVE_CREDENTIAL", "live_credential", "helper", _choice("helper", "env"), "how a running session gets the target's key: apiKeyHelper (helper) or ANTHROPIC_AUTH_TOKEN in a private settings.json (env)"),
    Key("SPILLOVER_LIVE_EXCLUDE", "live_exclude", "", _command, "project dirs kept on the plan while spilled, separated by ':' (`spillover exclude DIR`)"),
    Key("SPILLOVER_NOTIFY", "notify", "on", _choice("on", "off"), "desktop notifications on flips, blocks, low budget and weekly walls"),
    Key("SPILLOVER_NOTIFY_COMMAND", "notify_command", "", _command, "a command that receives each event as JSON on stdin"),
)

KEYS_BY_NAME = {key.name: key for key in KEYS}
SECRET_KEYS = frozenset(key.name for key in KEYS if key.secret)
# Keys that only make sense in the process environment or are read by other tools.
_FOREIGN_OK = {"CLAUDE_CONFIG_DIR", "SPILLOVER_CONFIG", "SPILLOVER_STATE_DIR"}


@dataclass(frozen=True)
class Config:
    """The effective settings: one attribute per KEYS entry (`Key.attr`), plus where each came from."""

    path: str
    origin: dict  # key name -> "default" | "file" | "env"
    warnings: tuple
    threshold: float
    resume: float
    targets: tuple
    weekly: str
    model_wall: str
    plan_fable_model: str
    plan_opus_model: str
    plan_sonnet_model: str
    plan_haiku_model: str
    extra_usage: str
    lead_minutes: float
    fresh_minutes: float
    poll_minutes: float
    stale_minutes: float
    timeout: float
    sources: tuple
    usage_url: str
    claude_config_dir: str
    meter_command: str
    meter_five_hour: str
    meter_seven_day: str
    meter_seven_day_opus: str
    meter_seven_day_sonnet: str
    openrouter_key: str = field(repr=False)
    openrouter_management_key: str = field(repr=False)
    openrouter_api_url: str
    openrouter_base_url: str
    min_balance: float
    low_balance: float
    daily_cap: float | None
    monthly_cap: float | None
    turn_context_tokens: int
    turn_output_tokens: int
    fable_model: str
    opus_model: str
    sonnet_model: str
    haiku_model: str
    subagent_model: str
    anthropic_key: str = field(repr=False)
    gateway_base_url: str
    gateway_token: str = field(repr=False)
    gateway_health_url: str
    gateway_fable_model: str
    gateway_opus_model: str
    gateway_sonnet_model: str
    gateway_haiku_model: str
    gateway_subagent_model: str
    live: str
    live_credential: str
    live_exclude: str
    notify: str
    notify_command: str

    @property
    def values(self):
        """{Key.attr: value} of every setting."""
        return {key.attr: getattr(self, key.attr) for key in KEYS}

    @property
    def secrets(self):
        return tuple(v for k in KEYS if k.secret and (v := getattr(self, k.attr)))

    @property
    def fresh_seconds(self):
        return self.fresh_minutes * 60

    @property
    def claude_dirs(self):
        return paths.claude_config_dirs(self.claude_config_dir)


def dotenv_quote(value):
    """Quote a value for a python-dotenv file (the config file). python-dotenv decodes backslash
    escapes even inside single quotes, so a value with a backslash takes the double-quoted form."""
    if "'" not in value and "\\" not in value:
        return "'" + value + "'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


CONFIG_MAX_BYTES = 256 * 1024


def read_file(path):
    """The raw key/values of a dotenv config file; a missing file is empty, an unreadable one an error."""
    if path == os.devnull or not os.path.exists(path):
        return {}  # /dev/null: "no config file" (doctor's defaults)
    from spillover import fsutil, jsonsafe

    # A file someone else can write may hold SPILLOVER_METER_COMMAND: it is never read.
    problem = fsutil.trust_problem(path, "config file")
    if problem:
        raise ConfigError(problem)
    try:
        text = jsonsafe.read_file(path, CONFIG_MAX_BYTES)
    except OSError as exc:
        raise ConfigError(f"config file {path}: cannot be read ({exc})") from None
    return _parse(text)[0]


def _parse(text):
    """({key: value}, [line numbers python-dotenv could not parse]) of a dotenv text, without
    python-dotenv's own log line (doctor and the config warnings say it, with the file and line)."""
    from io import StringIO

    from dotenv.parser import parse_stream

    values, bad = {}, []
    for binding in parse_stream(StringIO(text)):
        if binding.error:
            bad.append(binding.original.line)
        elif binding.key is not None:
            # a bare `KEY` line has no value; treat it as empty.
            values[binding.key] = "" if binding.value is None else binding.value
    return values, bad


def parse_problems(path):
    """Warnings for the lines of the config file that python-dotenv cannot parse (they are ignored)."""
    try:
        with open(path, encoding="utf-8") as handle:
            bad = _parse(handle.read())[1]
    except (OSError, UnicodeDecodeError):
        return []
    return [f"{path}:{line}: this line cannot be parsed and is ignored: write it as NAME='value'" for line in bad]


def line_of(path, name):
    """The line number of `name=` in the config file, or None."""
    pattern = re.compile(rf"^\s*(export\s+)?{re.escape(name)}\s*=")
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            found = [i for i, line in enumerate(handle, 1) if pattern.match(line)]
    except OSError:
        return None
    return found[-1] if found else None


def _looks_like_ours(name):
    """A name meant for spillover, typos included: any case, SPILOVER_/SPILLOVR_…, OPENROUTER_."""
    upper = name.upper()
    if upper.startswith(("SPILLOVER_", "OPENROUTER_")) or upper in KEYS_BY_NAME:
        return True
    head = upper.split("_", 1)[0]
    return "_" in upper and difflib.SequenceMatcher(None, head, "SPILLOVER").ratio() >= 0.8


def load(environ=None, path=None):
    """Build the Config; raise ConfigError on the first bad value."""
    environ = os.environ if environ is None else environ
    path = path or environ.get("SPILLOVER_CONFIG") or paths.config_file()
    file_values = read_file(path)
    warnings = parse_problems(path) if file_values or os.path.exists(path) else []
    for name in file_values:
        if name not in KEYS_BY_NAME and name not in _FOREIGN_OK and _looks_like_ours(name):
            hint = (difflib.get_close_matches(name.upper(), KEYS_BY_NAME, 1, cutoff=0.8)
                    or difflib.get_close_matches(name, KEYS_BY_NAME, 1))
            warnings.append(f"config file {path}: unknown key {name}" + (f" (did you mean {hint[0]}?)" if hint else ""))
    values, origin = {}, {}
    for key in KEYS:
        if key.name in environ:
            raw, origin[key.name] = environ[key.name], "env"
        elif key.name in file_values:
            raw, origin[key.name] = file_values[key.name], "file"
        else:
            raw, origin[key.name] = key.default, "default"
        values[key.attr] = key.parse(key.name, raw)
    if values["resume"] >= values["threshold"]:
        if origin["SPILLOVER_RESUME"] == "default":
            raise ConfigError(
                f"SPILLOVER_THRESHOLD={values['threshold']:g} is not above SPILLOVER_RESUME={values['resume']:g} (the default): "
                f"raise SPILLOVER_THRESHOLD, or also set SPILLOVER_RESUME under {values['threshold']:g} "
                f"(e.g. SPILLOVER_RESUME={max(1, int(values['threshold']) // 2)})"
            )
        raise ConfigError(
            f"SPILLOVER_RESUME={values['resume']:g}: must be under SPILLOVER_THRESHOLD={values['threshold']:g}"
        )
    warnings.extend(_crossed_keys(values))
    holds_secret = any(origin[k] == "file" and file_values.get(k) for k in SECRET_KEYS)
    if holds_secret:
        mode = stat.S_IMODE(os.stat(path).st_mode)
        if mode & 0o077:
            warnings.append(f"config file {path} holds keys but is readable by others (mode {mode:04o}): chmod 600 {path}")
    return Config(path=path, origin=origin, warnings=tuple(warnings), **values)


def _crossed_keys(values):
    """An Anthropic key where an OpenRouter key belongs, or the reverse: allowed, but almost surely a mix-up."""
    found = []
    if values["openrouter_key"].startswith("sk-ant-"):
        found.append("OPENROUTER_API_KEY holds an Anthropic key (sk-ant-…): it belongs in SPILLOVER_ANTHROPIC_API_KEY; "
                     "put your OpenRouter key (sk-or-…) in OPENROUTER_API_KEY")
    if values["anthropic_key"].startswith("sk-or-"):
        found.append("SPILLOVER_ANTHROPIC_API_KEY holds an OpenRouter key (sk-or-…): it belongs in OPENROUTER_API_KEY; "
                     "put your Anthropic key (sk-ant-…) in SPILLOVER_ANTHROPIC_API_KEY")
    return found


def set_value(path, name, value):
    """Write or replace one `NAME='value'` line in the config file, keeping it 0600."""
    from spillover.fsutil import atomic_write

    lines = []
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    new = f"{name}={dotenv_quote(value)}"
    pattern = re.compile(rf"^\s*(export\s+)?{re.escape(name)}\s*=")
    replaced = False
    for i, line in enumerate(lines):
        if pattern.match(line):
            lines[i], replaced = new, True
    if not replaced:
        lines.append(new)
    os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    atomic_write(path, "\n".join(lines) + "\n", mode=0o600)
