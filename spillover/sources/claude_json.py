"""`~/.claude.json` extra usage (design §4.5): do Anthropic's own usage credits carry the plan on?

Claude Code caches the overage state in its global config: `cachedExtraUsageDisabledReason` is
null when usage credits are on and a reason string (`out_of_credits`, `org_level_disabled`, …)
when they are off; the key is missing when Claude Code never learned it.
`oauthAccount.hasExtraUsageEnabled` is the fallback. Never fails: unreadable means unknown.
"""

import os

from spillover import jsonsafe, paths
from spillover.sources.base import Source, SourceResult

CLAUDE_JSON_MAX_BYTES = 64 << 20  # it keeps every project's history; tens of MiB at most

SOURCE = "~/.claude.json"


def path_for(cfg):
    """Claude Code keeps `.claude.json` inside CLAUDE_CONFIG_DIR when that is set, else in HOME."""
    if cfg.claude_config_dir:
        return os.path.join(cfg.claude_dirs[0], ".claude.json")
    return paths.claude_json()


def extra_usage(cfg):
    path = path_for(cfg)
    info = {"enabled": None, "reason": None, "path": path, "source": SOURCE}
    try:
        data = jsonsafe.load_file(path, CLAUDE_JSON_MAX_BYTES)
    except FileNotFoundError:
        info["reason"] = f"{path} does not exist (Claude Code not used here yet?)"
        return info
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        info["reason"] = f"{path} cannot be read ({exc.__class__.__name__})"
        return info
    if not isinstance(data, dict):
        info["reason"] = f"{path} is not a JSON object"
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


class ClaudeJsonSource(Source):
    """Claude Code's cached extra-usage state; always read (it is one small local file)."""

    name = "claude_json"
    local = True

    def enabled(self, cfg):
        return True

    def read(self, ctx):
        return SourceResult([], None, {"extra_usage": extra_usage(ctx.cfg)})


READER = ClaudeJsonSource()
