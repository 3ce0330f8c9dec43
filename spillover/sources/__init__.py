"""Plan-quota signals (design §4): one module each, one registry.

Each module defines a source (see sources/base.py: `name`, `read(ctx) -> SourceResult`) as its
`READER`. The registry names the modules and imports one only when it is asked for: the
statusline command imports its own module on every render, and must not pay for the others.
A new source is one module plus one line in BUILTIN (or `register(reader)` for a plug-in).
"""

import importlib

from spillover.registry import Registry

# In reading order: the local sources first (free; they say whether Claude Code is active).
BUILTIN = ("statusline", "stopfailure", "transcripts", "claude_json", "oauth", "command")
_extra = Registry()  # plug-ins: register(reader) adds a source object (sources/base.py)
register, unregister = _extra.register, _extra.unregister


def names():
    return BUILTIN + tuple(n for n in _extra if n not in BUILTIN)


def get(name):
    """The source `name` (its module's READER); KeyError for an unknown one."""
    if name in _extra:
        return _extra[name]
    if name not in BUILTIN:
        raise KeyError(name)
    return importlib.import_module(f"spillover.sources.{name}").READER


def enabled(cfg):
    """The sources the config turns on, in reading order."""
    return [reader for reader in map(get, names()) if reader.enabled(cfg)]
