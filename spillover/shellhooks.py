"""`spillover hook bash|zsh|fish`: the prompt hook for people without direnv (like `direnv hook`).

The hooks are shipped shell files (spillover/shell/hook.bash, hook.zsh, hook.fish) so that lint
checks them as shell code. Each resolves the state dir when it is evaluated, at shell start, from
SPILLOVER_STATE_DIR / XDG_STATE_HOME: the snippet is the same text for everyone, and a copy saved
to a file keeps working. At each prompt the hook compares a per-shell stamp file with the route
file using the shell's own `-nt` test (no fork) and re-applies the route only when it changed.
"""

import os
import re

from spillover import paths

SHELLS = ("bash", "zsh", "fish")
_STAMP = re.compile(r"^hook\.(\d+)\.stamp$")


def snippet(shell):
    """The hook's shell code for `shell` (bash, zsh or fish)."""
    if shell not in SHELLS:
        raise ValueError(f"unknown shell {shell!r}: expected one of {', '.join(SHELLS)}")
    prune_stamps()
    with open(paths.shipped(f"hook.{shell}"), encoding="utf-8") as handle:
        return handle.read()


def prune_stamps(state_dir=None):
    """Remove the stamps of shells that have exited. Runs when a new shell asks for its hook, so
    the state dir holds at most one stamp per running shell (plus the odd recycled PID)."""
    state_dir = state_dir or paths.state_dir()
    try:
        names = os.listdir(state_dir)
    except OSError:
        return 0
    removed = 0
    for name in names:
        match = _STAMP.match(name)
        if not match or _alive(int(match.group(1))):
            continue
        try:
            os.unlink(os.path.join(state_dir, name))
            removed += 1
        except OSError:
            pass
    return removed


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
