"""Moments as servers and files write them, read once, at the edge, into epoch seconds."""

from datetime import datetime

# Any moment outside these years is a garbled or hostile value, never a real reset or expiry:
# year 0, inf or 1e300 must not reach datetime arithmetic in the tick, status or doctor.
EARLIEST = 946684800.0  # 2000-01-01T00:00:00Z
LATEST = 4102444800.0  # 2100-01-01T00:00:00Z


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
                number = datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
            except (ValueError, OverflowError, OSError):
                return None
            return number if EARLIEST <= number <= LATEST else None
    else:
        return None
    if number != number or number <= 0:
        return None
    number = number / 1000 if number > 1e11 else number  # milliseconds look like the year 5000+
    return number if EARLIEST <= number <= LATEST else None
