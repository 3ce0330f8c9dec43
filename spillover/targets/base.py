"""What a spill target is: the interface every module in spillover/targets/ implements.

A target is one object with a `name`; the registry in `targets/__init__.py` holds one per
module. Everything that lists or steers targets (config validation, the tick's chain, pin,
doctor, status, the CLI's choices) iterates the registry, so a new target is one module plus
one registry line.
"""

from dataclasses import dataclass, field

from spillover.policy import TargetHealth

ROUTING_VARS = ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")
MODEL_VARS = (
    "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL",
    "CLAUDE_CODE_SUBAGENT_MODEL",
    "ANTHROPIC_DEFAULT_FABLE_MODEL",  # last: targets zip their slugs onto the names before it
)


@dataclass
class TargetContext:
    """What `Target.health` may use besides the config.

    now: the tick's clock. need: a wall is near, the route is spilled or pinned, so budgets are
    read fresh rather than reused. record: the target's own snapshot that state.json keeps
    between ticks (under `Target.record_key`); health() may replace it with a new dict, which the
    tick then stores.
    """

    now: float
    need: bool = True
    record: dict = field(default_factory=dict)


class Target:
    """A spill target. Subclasses set `name` and override what differs."""

    name = ""
    # Where state.json keeps this target's snapshot between ticks (None: it keeps none).
    record_key = None
    # Claude Code sends a stored Anthropic API key (primaryApiKey) as x-api-key to this target:
    # true for every target that points ANTHROPIC_BASE_URL elsewhere.
    leaks_stored_api_key = False

    def configured(self, cfg):
        """(ok, why-not) from the configuration alone, without any network."""
        raise NotImplementedError

    def env(self, cfg):
        """{NAME: value} of the route's variables from ROUTING_VARS + MODEL_VARS, in that order;
        a name left out, or None, is unset. Only configuration values, never a server's answer."""
        raise NotImplementedError

    def health(self, cfg, ctx):
        """TargetHealth: may the tick spill here now? Runs in a worker thread; may use the network
        through spillover.http (bounded). The default: configured is healthy."""
        ok, why = self.configured(cfg)
        return TargetHealth(self.name, ok, self.describe(cfg) if ok else why)

    def describe(self, cfg):
        """One line for a healthy, configured target (never a secret in clear)."""
        return "configured"

    def secrets(self, cfg):
        """The secret values this target holds in the config (for redaction)."""
        return ()

    def doctor(self, report, cfg, state, now):
        """`spillover doctor`'s line(s) for this target. `report.line(mark, piece, text, fix)`."""
        from spillover.doctor import FAIL, OK

        ok, why = self.configured(cfg)
        if ok:
            report.line(OK, self.name, "configured")
        else:
            report.line(FAIL, self.name, why, f"set it in {cfg.path} or remove {self.name} from SPILLOVER_TARGETS")


def bearer_env(base_url, token, opus="", sonnet="", haiku="", subagent=""):
    """env() of an Anthropic-compatible endpoint at `base_url` taking `token` as a bearer token,
    with a model per alias ('' → unset: the endpoint's default)."""
    return dict(
        ANTHROPIC_BASE_URL=base_url,
        ANTHROPIC_AUTH_TOKEN=token,
        ANTHROPIC_API_KEY="",  # must be set and empty: both headers are sent otherwise
        **dict(zip(MODEL_VARS, (opus or None, sonnet or None, haiku or None, subagent or None))),
    )
