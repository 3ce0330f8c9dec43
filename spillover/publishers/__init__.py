"""Publishers: how the decided route reaches Claude Code. One module each, one registry.

A new publisher (say `claude_settings.py`) is one module defining a `Publisher` subclass (see
publishers/base.py) plus one `register(...)` line below.
"""

from spillover.publishers import claude_settings, env_files
from spillover.registry import Registry
from spillover.publishers.base import Publisher, RouteView  # noqa: F401 (the interface)

__all__ = ["REGISTRY", "Publisher", "RouteView", "get", "names", "publish_all", "register", "unregister"]

REGISTRY = Registry()
register, unregister, get, names = REGISTRY.register, REGISTRY.unregister, REGISTRY.get, REGISTRY.names

register(env_files.PUBLISHER)
register(claude_settings.PUBLISHER)  # running sessions (live.py): only when SPILLOVER_LIVE is on


def publish_all(state_dir, view):
    """Run every publisher (in registry order). Returns {name: changed}."""
    return {name: publisher.publish(state_dir, view) for name, publisher in REGISTRY.items()}
