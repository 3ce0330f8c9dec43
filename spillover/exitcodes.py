"""The exit statuses of design §6, defined once. Only `enum` (already loaded by `json`'s `re`)."""

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    PLAN = 0  # `check`: on the plan (an alias of OK)
    ERROR = 1
    USAGE = 2
    SPILLED = 3
    BLOCKED = 4
    STALE = 5
