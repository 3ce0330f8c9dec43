"""Numbers from outside (servers, files, Claude Code's payloads) made safe in one place.

Only builtins here: the statusline imports this on every render.
"""

_INF = float("inf")


def number(value, *, strings=False, minimum=None, maximum=None):
    """`value` as a finite float within [minimum, maximum], or None.

    Bools are never numbers; a numeric string counts only with `strings=True`; NaN, infinities
    and ints too big for a float are None.
    """
    if isinstance(value, bool):
        return None
    if strings and isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    if value != value or value in (_INF, -_INF):
        return None
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        return None
    return value


def epoch(value):
    """An epoch-seconds field of a JSON file we wrote (state.json, pin.json): a real number or None."""
    return number(value)
