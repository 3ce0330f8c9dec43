"""What a publisher is: something that makes the decided route visible to Claude Code.

The tick calls every registered publisher after the decision, with one RouteView; every other
writer of a published file (`pin`, `unpin`, `uninstall`, `env`) goes through the same code.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class RouteView:
    """The route as published: `pairs` is targets.route_env()'s ordered (NAME, value-or-None)
    list (None: unset), `reason` the route's reason (one line in a comment), `pin` its pin text."""

    route: str
    pairs: tuple
    reason: str = ""
    pin: str = ""


class Publisher:
    name = ""

    def publish(self, state_dir, view):
        """Write what `view` says (only when it changed). Returns True when a file changed."""
        raise NotImplementedError
