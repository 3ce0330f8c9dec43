"""Human-readable durations, shared by `status`, `history` and the statusline (no imports: the
statusline renders on every Claude Code refresh)."""


def span(seconds):
    """A positive duration, compact: 45s, 39m, 2h05m, 3.5d."""
    seconds = max(0, seconds)
    if seconds < 90:
        return f"{seconds:.0f}s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes}m"
    if minutes < 48 * 60:
        return f"{minutes // 60}h{minutes % 60:02d}m"
    return f"{seconds / 86400:.1f}d"


def ago(seconds):
    return "never" if seconds is None else f"{span(seconds)} ago"


def clock(epoch, weekday=False):
    """A moment in local time: 2026-11-22 14:05 CET (with the weekday for far-off resets)."""
    import time

    if epoch is None:
        return None
    return time.strftime(("%a " if weekday else "") + "%Y-%m-%d %H:%M %Z", time.localtime(epoch))


def until(seconds, *, none="-", past="passed"):
    if seconds is None:
        return none
    return past if seconds <= 0 else span(seconds)
