"""The gateway target: any Anthropic-compatible gateway (LiteLLM, a company proxy) with a bearer
token, optional per-alias models, and an optional health URL that must answer 2xx."""

from spillover.errors import SourceError
from spillover.policy import TargetHealth
from spillover.targets.base import Target, bearer_env


class Gateway(Target):
    name = "gateway"
    leaks_stored_api_key = True

    def configured(self, cfg):
        if not cfg.gateway_base_url:
            return False, "SPILLOVER_GATEWAY_BASE_URL is not set"
        if not cfg.gateway_token:
            return False, "SPILLOVER_GATEWAY_TOKEN is not set"
        return True, ""

    def env(self, cfg):
        return bearer_env(cfg.gateway_base_url, cfg.gateway_token, cfg.gateway_opus_model, cfg.gateway_sonnet_model,
                          cfg.gateway_haiku_model, cfg.gateway_subagent_model, cfg.gateway_fable_model)

    def describe(self, cfg):
        return f"configured ({cfg.gateway_base_url})"

    def secrets(self, cfg):
        return (cfg.gateway_token,) if cfg.gateway_token else ()

    def health(self, cfg, ctx):
        ok, why = self.configured(cfg)
        if not ok:
            return TargetHealth(self.name, False, why)
        if not cfg.gateway_health_url:
            return TargetHealth(self.name, True, self.describe(cfg))
        from spillover import http

        try:
            http.get(cfg.gateway_health_url, headers={}, timeout=cfg.timeout, secrets=cfg.secrets, name="gateway health check")
        except SourceError as exc:
            if exc.status is not None and not 200 <= exc.status < 300:
                return TargetHealth(self.name, False, f"health check answered HTTP {exc.status}")
            return TargetHealth(self.name, False, f"health check {cfg.gateway_health_url} did not answer")
        return TargetHealth(self.name, True, "health check passed")


TARGET = Gateway()
