"""`~/.claude.json` (design §4.5): do Anthropic's own usage credits carry the plan on, and
Claude Code's own copy of the usage answer.

Claude Code caches the overage state in its global config: `cachedExtraUsageDisabledReason` is
null when usage credits are on and a reason string (`out_of_credits`, `org_level_disabled`, …)
when they are off; the key is missing when Claude Code never learned it.
`oauthAccount.hasExtraUsageEnabled` is the fallback. Never fails: unreadable means unknown.

`cachedUsageUtilization` = {fetchedAtMs, accountUuid, utilization: <the usage endpoint's body>}
is written by Claude Code's own usage fetches, rarely and on no schedule (seen 8 days old). Its
buckets are read with the usage endpoint's parser, only while their window is still open, and
aged by `fetchedAtMs` (never newer than that). It cannot confirm a reset on its own: Claude Code
does not fetch usage while it runs on another provider, so a reading after a reset comes only
when the user is back on the plan; a reading fetched before the reset is of a closed window and
is dropped.
"""

import os
import re

from spillover import jsonsafe, paths
from spillover.sources.base import Source, SourceResult

CLAUDE_JSON_MAX_BYTES = 64 << 20  # it keeps every project's history; tens of MiB at most

SOURCE = "~/.claude.json"


def path_for(cfg):
    """Claude Code keeps `.claude.json` inside CLAUDE_CONFIG_DIR when that is set, else in HOME."""
    if cfg.claude_config_dir:
        return os.path.join(cfg.claude_dirs[0], ".claude.json")
    return paths.claude_json()


def load(cfg):
    """(path, the parsed file or None, why not)."""
    path = path_for(cfg)
    try:
        data = jsonsafe.load_file(path, CLAUDE_JSON_MAX_BYTES)
    except FileNotFoundError:
        return path, None, f"{path} does not exist (Claude Code not used here yet?)"
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        return path, None, f"{path} cannot be read ({exc.__class__.__name__})"
    if not isinstance(data, dict):
        return path, None, f"{path} is not a JSON object"
    return path, data, None


def extra_usage(cfg, loaded=None):
    path, data, why = loaded or load(cfg)
    info = {"enabled": None, "reason": None, "path": path, "source": SOURCE}
    if data is None:
        info["reason"] = why
        return info
    # An API key Claude Code stored at a console login: the client sends it as x-api-key even when
    # ANTHROPIC_API_KEY is set and empty, i.e. to the spill target too.
    info["stored_api_key"] = isinstance(data.get("primaryApiKey"), str) and bool(data["primaryApiKey"])
    if "cachedExtraUsageDisabledReason" in data:
        reason = data["cachedExtraUsageDisabledReason"]
        if reason is None:
            info["enabled"] = True
        else:
            info.update(enabled=False, reason=str(reason))
        return info
    account = data.get("oauthAccount")
    flag = account.get("hasExtraUsageEnabled") if isinstance(account, dict) else None
    if isinstance(flag, bool):
        info.update(enabled=flag, reason=None if flag else "oauthAccount.hasExtraUsageEnabled is false")
    else:
        info["reason"] = "Claude Code has not recorded whether usage credits are on"
    return info


_ACCOUNT = re.compile(r"[A-Za-z0-9-]{1,64}")


def usage_cache(data, now, previous=None):
    """(samples, fetched_at, account, severity) of `cachedUsageUtilization`; ([], None, None, {})
    when absent. Only buckets whose window is still open (resets_at in the future); observed at
    fetchedAtMs, a future fetch time clamped to now."""
    from spillover.errors import SourceError
    from spillover.sanitize import number
    from spillover.sources import oauth

    cache = data.get("cachedUsageUtilization") if isinstance(data, dict) else None
    if not isinstance(cache, dict) or not isinstance(cache.get("utilization"), dict):
        return [], None, None, {}
    fetched_ms = number(cache.get("fetchedAtMs"), minimum=0)
    if fetched_ms is None:
        return [], None, None, {}
    fetched_at = min(fetched_ms / 1000, now)
    account = cache.get("accountUuid")
    account = account if isinstance(account, str) and _ACCOUNT.fullmatch(account) else None
    try:
        got = oauth.parse_usage(cache["utilization"], fetched_at, source=READER.name, previous=previous)
    except SourceError:
        return [], fetched_at, account, {}
    open_now = [s for s in got if s.resets_at is not None and s.resets_at > now]
    severity = {b: v for b, v in oauth.severities(cache["utilization"]).items() if any(s.bucket == b for s in open_now)}
    return open_now, fetched_at, account, severity


def rejected_key(cfg, key, loaded=None):
    """Whether Claude Code keeps `key` (an Anthropic API key) in customApiKeyResponses.rejected:
    it stores the last 20 characters of keys the user declined, and then ignores that key (the
    anthropic route would fall back to "Not logged in")."""
    if not key or len(key) < 20:
        return False
    _, data, _ = loaded or load(cfg)
    responses = data.get("customApiKeyResponses") if isinstance(data, dict) else None
    rejected = responses.get("rejected") if isinstance(responses, dict) else None
    return isinstance(rejected, list) and key[-20:] in [r for r in rejected[:1000] if isinstance(r, str)]


class ClaudeJsonSource(Source):
    """Claude Code's cached extra-usage state and usage answer; always read (one local file)."""

    name = "claude_json"
    local = True
    can_confirm_reset = False  # see the module's docstring

    def enabled(self, cfg):
        return True

    def read(self, ctx):
        loaded = load(ctx.cfg)
        info = {"extra_usage": extra_usage(ctx.cfg, loaded)}
        samples, fetched_at, account, severity = usage_cache(loaded[1], ctx.now, ctx.merged)
        rec = ctx.record
        if fetched_at is None:
            if rec.last_attempt_at is None:
                return SourceResult([], None, info)  # never had a usage copy: nothing to keep
            rec.succeeded(ctx.now, fetched_at=None, account=None, severity={}, open_buckets=[])  # gone (a logout)
            rec.last_reading_at = None
            return SourceResult([], rec, info)
        rec.succeeded(ctx.now, fetched_at=fetched_at, account=account, severity=severity,
                      open_buckets=sorted(s.bucket for s in samples))
        rec.last_reading_at = fetched_at
        return SourceResult(samples, rec, info)


READER = ClaudeJsonSource()
