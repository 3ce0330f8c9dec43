"""spillover: flip Claude Code from a Pro/Max plan to a paid target before the usage wall, and back.

The small public API, imported lazily so that `spillover check` and the statusline stay fast:
- `load_config(environ=None, path=None)` → Config (raises errors.ConfigError)
- `decide(prev, signals, policy, now)` → policy.Decision (the pure decision)
- `tick(cfg, now=None, dry_run=False, force_poll=False)` → (Decision, state.json dict, changed)
  (`spillover.tick` is also the module; calling it calls `spillover.tick.run`)
"""

__version__ = "0.1.0"
__all__ = ["__version__", "decide", "load_config", "tick"]


def __getattr__(name):
    if name == "decide":
        from spillover.policy import decide

        return decide
    if name == "load_config":
        from spillover.config import load

        return load
    if name == "tick":
        import importlib

        return importlib.import_module("spillover.tick")
    raise AttributeError(f"module 'spillover' has no attribute {name!r}")
