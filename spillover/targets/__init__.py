"""Spill targets: one module each, one registry (design §3).

REGISTRY maps a target's name to its `Target` (see targets/base.py) in the order they are
listed to users. Config validation (SPILLOVER_TARGETS), the tick's chain, `pin`, `doctor`,
`status` and the CLI all iterate it: a new target is one module plus one line below.

`route_env(route, cfg)` is the single source of truth for what Claude Code sees: an ordered list
of (NAME, value) where value None means `unset NAME`. Only configuration values go in; nothing a
server returns ever does.
"""

from spillover.policy import NOT_SPILLED  # the routes that are not a target
from spillover.registry import Registry
from spillover.targets import anthropic, gateway, openrouter
from spillover.targets.base import MODEL_VARS, ROUTING_VARS, Target, TargetContext  # noqa: F401 (the interface)

__all__ = ["REGISTRY", "MANAGED", "Target", "TargetContext", "get", "names", "register", "route_env", "unregister"]

REGISTRY = Registry()
unregister, get, names = REGISTRY.unregister, REGISTRY.get, REGISTRY.names
INFO_VARS = ("SPILLOVER_ROUTE", "SPILLOVER_REASON", "SPILLOVER_PIN", "SPILLOVER_DOWNSHIFT")
MANAGED = ROUTING_VARS + MODEL_VARS + INFO_VARS


def register(target):
    """Add a target (an object implementing targets.base.Target) to the registry; returns it."""
    if not target.name or target.name in NOT_SPILLED or not target.name.isidentifier():
        raise ValueError(f"bad target name {target.name!r}")
    return REGISTRY.register(target)


register(openrouter.TARGET)
register(anthropic.TARGET)
register(gateway.TARGET)


def downshift_env(shifts):
    """{NAME: value} of a downshift on the plan (policy.downshift_for): the walled tier's alias
    pointed at the tier below, and SPILLOVER_DOWNSHIFT ("fable>opus") saying so."""
    env = {}
    for shift in shifts or ():
        name = shift.get("variable")
        if name in MODEL_VARS and shift.get("model"):
            env[name] = shift["model"]
    text = ",".join(f"{s['from']}>{s['to']}" for s in shifts or () if s.get("variable") in env)
    return env, text


def route_env(route, cfg, reason="", pin="", downshift=()):
    """Ordered (NAME, value-or-None) pairs for `route`; every managed name appears exactly once.
    `downshift`: the decision's per-model downshifts, applied on the plan route only."""
    env = dict.fromkeys(ROUTING_VARS + MODEL_VARS)  # plan and blocked: everything unset
    if route in REGISTRY:
        got = REGISTRY[route].env(cfg)
        unknown = set(got) - set(env)
        if unknown:
            raise ValueError(f"target {route} sets unmanaged variables {sorted(unknown)}")
        env.update(got)
    elif route not in NOT_SPILLED:
        raise ValueError(f"unknown route {route!r}")
    shift_text = None
    if route == "plan" and downshift:
        models, shift_text = downshift_env(downshift)
        env.update(models)
    pairs = [("SPILLOVER_ROUTE", route), ("SPILLOVER_REASON", reason or None), ("SPILLOVER_PIN", pin or None),
             ("SPILLOVER_DOWNSHIFT", shift_text or None)]
    return pairs + list(env.items())


