"""The anthropic target: Anthropic's API with a pay-as-you-go key (SPILLOVER_ANTHROPIC_API_KEY)."""

from spillover.redact import mask
from spillover.targets.base import Target


class Anthropic(Target):
    name = "anthropic"

    def configured(self, cfg):
        return (True, "") if cfg.anthropic_key else (False, "SPILLOVER_ANTHROPIC_API_KEY is not set")

    def env(self, cfg):
        return {"ANTHROPIC_API_KEY": cfg.anthropic_key}

    def describe(self, cfg):
        return f"API key {mask(cfg.anthropic_key)}"

    def secrets(self, cfg):
        return (cfg.anthropic_key,) if cfg.anthropic_key else ()


TARGET = Anthropic()
