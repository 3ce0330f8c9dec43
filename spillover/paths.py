"""Every path spillover reads or writes, in one place (design §6).

Only `os` is imported: this module is on the hot path of `check` and `statusline`.
"""

import os

HOME = os.path.expanduser("~")

ROUTE_ENV = "route.env"
ROUTE_FISH = "route.fish"
STATE_JSON = "state.json"
HISTORY_JSONL = "history.jsonl"
SAMPLES_JSONL = "samples.jsonl"
TRANSCRIPT_OFFSETS = "transcripts.json"
LOCK = "tick.lock"
# mtime = when the last decision goes stale; lets direnv notice a dead cron tick without a fork
FRESH_UNTIL = "fresh-until"
LOG = "tick.log"
PIN_JSON = "pin.json"
LIVE_STATUS_JSON = "live-status.json"  # {settings path: {status, reason, route, phase, at}} (live.py)


def _xdg(var, fallback):
    value = os.environ.get(var, "")
    # The XDG spec says relative values are invalid and must be ignored.
    return value if os.path.isabs(value) else os.path.join(os.path.expanduser("~"), fallback)


def config_home():
    return _xdg("XDG_CONFIG_HOME", ".config")


def config_file():
    return os.environ.get("SPILLOVER_CONFIG") or os.path.join(config_home(), "spillover", "config.env")


def state_dir():
    return os.environ.get("SPILLOVER_STATE_DIR") or os.path.join(_xdg("XDG_STATE_HOME", os.path.join(".local", "state")), "spillover")


def state_path(name):
    return os.path.join(state_dir(), name)


def claude_config_dirs(value=None):
    """Claude Code's config dirs: `CLAUDE_CONFIG_DIR` may be a comma-separated list (ccusage does the same)."""
    value = value if value is not None else os.environ.get("CLAUDE_CONFIG_DIR", "")
    dirs = [os.path.expanduser(part.strip()) for part in value.split(",") if part.strip()]
    return dirs or [os.path.join(os.path.expanduser("~"), ".claude")]


def account(config_dir):
    """The account a reading belongs to: its Claude Code config dir, as one normalised path."""
    return os.path.normpath(os.path.abspath(os.path.expanduser(config_dir)))


def primary_account(value=None):
    """The account of the first config dir: the one the decision is made for."""
    return account(claude_config_dirs(value)[0])


def claude_json(config_dir=None):
    """`~/.claude.json` lives beside the default config dir, or inside `CLAUDE_CONFIG_DIR` when that is set."""
    if config_dir and os.environ.get("CLAUDE_CONFIG_DIR"):
        return os.path.join(config_dir, ".claude.json")
    return os.path.join(os.path.expanduser("~"), ".claude.json")


def direnv_lib():
    return os.path.join(config_home(), "direnv", "lib", "spillover.sh")


def shipped(name):
    """A file shipped inside the package (direnvrc, cron template, hooks), found from a wheel or a checkout."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "shell", name)
