"""Spill targets: the exact variables of each route (design §3) and each target's budget guard.

`route_env(route, cfg)` is the single source of truth for what Claude Code sees: an ordered list
of (NAME, value) where value None means `unset NAME`. Only configuration values go in; nothing a
server returns ever does.
"""

ROUTING_VARS = ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")
MODEL_VARS = (
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "CLAUDE_CODE_SUBAGENT_MODEL",
)
INFO_VARS = ("SPILLOVER_ROUTE", "SPILLOVER_REASON", "SPILLOVER_PIN")
MANAGED = ROUTING_VARS + MODEL_VARS + INFO_VARS


def _models(opus, sonnet, haiku, subagent):
    return dict(zip(MODEL_VARS, (opus or None, sonnet or None, haiku or None, subagent or None)))


def route_env(route, cfg, reason="", pin=""):
    """Ordered (NAME, value-or-None) pairs for `route`; every managed name appears exactly once."""
    env = dict.fromkeys(ROUTING_VARS + MODEL_VARS)  # plan and blocked: everything unset
    if route == "openrouter":
        env.update(
            ANTHROPIC_BASE_URL=cfg.openrouter_base_url,
            ANTHROPIC_AUTH_TOKEN=cfg.openrouter_key,
            ANTHROPIC_API_KEY="",  # must be set and empty: both headers are sent otherwise
            **_models(cfg.opus_model, cfg.sonnet_model, cfg.haiku_model, cfg.subagent_model),
        )
    elif route == "anthropic":
        env.update(ANTHROPIC_API_KEY=cfg.anthropic_key)
    elif route == "gateway":
        env.update(
            ANTHROPIC_BASE_URL=cfg.gateway_base_url,
            ANTHROPIC_AUTH_TOKEN=cfg.gateway_token,
            ANTHROPIC_API_KEY="",
            **_models(cfg.gateway_opus_model, cfg.gateway_sonnet_model, cfg.gateway_haiku_model, cfg.gateway_subagent_model),
        )
    elif route not in ("plan", "blocked"):
        raise ValueError(f"unknown route {route!r}")
    pairs = [("SPILLOVER_ROUTE", route), ("SPILLOVER_REASON", reason or None), ("SPILLOVER_PIN", pin or None)]
    return pairs + list(env.items())


def configured(name, cfg):
    """(ok, why-not) for a target's configuration alone, without any network."""
    if name == "openrouter":
        return (True, "") if cfg.openrouter_key else (False, "OPENROUTER_API_KEY is not set")
    if name == "anthropic":
        return (True, "") if cfg.anthropic_key else (False, "SPILLOVER_ANTHROPIC_API_KEY is not set")
    if name == "gateway":
        if not cfg.gateway_base_url:
            return False, "SPILLOVER_GATEWAY_BASE_URL is not set"
        if not cfg.gateway_token:
            return False, "SPILLOVER_GATEWAY_TOKEN is not set"
        return True, ""
    return False, f"unknown target {name}"
