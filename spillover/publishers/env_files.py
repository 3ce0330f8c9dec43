"""route.env and route.fish (design §2, §3): the route as inert env files, published atomically.

route.env is POSIX sh: only comments, `export NAME='value'` and `unset NAME`. route.fish is the
same for fish. Neither carries a timestamp, so a file changes only when the route does, and
direnv and the prompt hooks reload only then.
"""

import os

from spillover import fsutil, paths
from spillover.publishers.base import Publisher

HEADER = "# spillover route file: written by `spillover tick`; do not edit (spillover pin/unpin to steer)."


def sh_quote(value):
    """Single-quote for POSIX sh, bash, zsh and direnv: the only special character is the quote itself."""
    return "'" + value.replace("'", "'\\''") + "'"


def fish_quote(value):
    """Single-quote for fish, where backslash and quote are the escapes inside single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _comment(text):
    return " ".join(str(text).split())  # one line, whatever the reason holds


def _head(route, reason):
    lines = [HEADER, f"# route: {route}"]
    if reason:
        lines.append(f"# reason: {_comment(reason)}")
    return lines


def render_sh(pairs, route, reason=""):
    lines = _head(route, reason)
    unset = []
    for name, value in pairs:
        if value is None:
            unset.append(name)
        else:
            lines.append(f"export {name}={sh_quote(value)}")
    if unset:
        lines.append("unset " + " ".join(unset))
    return "\n".join(lines) + "\n"


def render_fish(pairs, route, reason=""):
    lines = _head(route, reason)
    # `-g`: a bare `set -e` would also erase a universal variable, for good, from every session.
    lines += [f"set -e -g {name}" for name, value in pairs if value is None]
    lines += [f"set -gx {name} {fish_quote(value)}" for name, value in pairs if value is not None]
    # `set -e` of an unset variable leaves status 4, which `set -gx` keeps and `source` returns.
    lines.append("true")
    return "\n".join(lines) + "\n"


def render(shell, pairs, route, reason=""):
    """The route file's text for `shell` (fish, or any POSIX shell)."""
    return (render_fish if shell == "fish" else render_sh)(pairs, route, reason)


def publish_route(state_dir, route, pairs, reason=""):
    """Write route.env and route.fish (each only when changed). Returns True when route.env changed."""
    changed = fsutil.write_if_changed(os.path.join(state_dir, paths.ROUTE_ENV), render_sh(pairs, route, reason))
    fsutil.write_if_changed(os.path.join(state_dir, paths.ROUTE_FISH), render_fish(pairs, route, reason))
    return changed


class EnvFiles(Publisher):
    name = "env_files"

    def publish(self, state_dir, view):
        return publish_route(state_dir, view.route, view.pairs, view.reason)


PUBLISHER = EnvFiles()
