"""Moments as servers and files write them, read once, at the edge, into epoch seconds."""

from datetime import datetime


def parse_time(value):
    """ISO-8601 (`…+00:00` or `…Z`), epoch seconds, epoch milliseconds, or a numeric string → epoch seconds."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:
            return None
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
    else:
        return None
    if number != number or number <= 0:
        return None
    return number / 1000 if number > 1e11 else number  # milliseconds look like the year 5000+
