"""Pictures in the terminal: bucket bars, the window's curve, route timelines, side-by-side policies.

Pure rendering: every function takes plain data (numbers, tuples, `Window`s) and a `Style`, and
returns text. No I/O, no clock (times come in; `clock` formats them), nothing heavy imported: the
only imports at load time are `dataclasses` and the import-free `fmt`, so `status` stays fast.

A `Style` carries the width (never exceeded: each returned line is at most `width` visible
characters, escape codes aside), whether the terminal shows Unicode, and whether colour is wanted.
`style_for(stream, env)` reads those from a real terminal.
"""

from dataclasses import dataclass, field

from spillover.fmt import span  # noqa: F401 (no imports of its own; report uses it from here too)

FIVE_HOURS = 5 * 3600


@dataclass(frozen=True)
class Style:
    width: int = 80
    unicode: bool = True
    color: bool = False


Canvas = Style


@dataclass(frozen=True)
class Window:
    """One five-hour window, what a timeline row shows.

    segments: ((start, end, route), ...) inside [start, end]; route is plan, a target name,
    blocked or downshift (any other name is drawn with a generic mark). Times are epoch seconds.
    """

    start: float
    end: float
    segments: tuple = ()
    peak: float | None = None  # highest five_hour percent read in the window
    spilled_min: float = 0.0  # minutes on a spill target inside the window
    overspill_min: float = 0.0  # minutes a spill that began by the window's end went on after it
    spend: float | None = None  # USD of the spills that began in the window (None: unknown)
    weekly_peak: dict = field(default_factory=dict)  # weekly bucket -> highest percent in the window
    wall_min: float = 0.0  # minutes on the plan at the wall (known from a replay)


# --- style -------------------------------------------------------------------------------------


def style_for(stream, env):
    """The style for `stream`: colour only on a TTY without NO_COLOR (and TERM not dumb), Unicode
    only when the locale (LC_ALL, LC_CTYPE, LANG, else the stream's encoding) is UTF-8, width from
    the terminal (80 when unknown)."""
    import shutil

    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError):
        tty = False
    color = tty and "NO_COLOR" not in env and env.get("TERM", "") != "dumb"
    locale = env.get("LC_ALL") or env.get("LC_CTYPE") or env.get("LANG") or ""
    if locale:
        unicode = "utf-8" in locale.lower() or "utf8" in locale.lower()
    else:
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("_", "-")
        unicode = encoding in ("utf-8", "utf8")
    width = shutil.get_terminal_size((80, 24)).columns if tty else 80
    return Style(width=max(20, width), unicode=unicode, color=color)


# --- text helpers --------------------------------------------------------------------------------

RESET = "\x1b[0m"
COLORS = {"green": "32", "yellow": "33", "red": "31", "magenta": "35", "cyan": "36", "blue": "34",
          "dim": "2", "bold": "1"}


class _Line:
    """A line built from (text, colour) runs, cut to a width without breaking escape codes."""

    def __init__(self, style):
        self.style = style
        self.runs = []

    def add(self, text, color=None):
        if text:
            self.runs.append((text, color))
        return self

    def __len__(self):
        return sum(len(t) for t, _ in self.runs)

    def render(self, width=None):
        width = self.style.width if width is None else width
        merged, used = [], 0
        for text, color in self.runs:
            if used >= width:
                break
            text = text[: width - used]
            used += len(text)
            color = color if self.style.color else None
            if merged and merged[-1][1] == color:
                merged[-1][0] += text
            else:
                merged.append([text, color])
        if merged and merged[-1][1] is None:
            merged[-1][0] = merged[-1][0].rstrip()
        return "".join(f"\x1b[{COLORS[c]}m{t}{RESET}" if c else t for t, c in merged if t)


def _fit(text, width, style):
    """Cut plain text to width, with an ellipsis when cut."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    return text[: width - 1] + ("…" if style.unicode else "~")


def clock(epoch, fmt="%H:%M"):
    import time

    return time.strftime(fmt, time.localtime(epoch))


def fmt_minutes(value):
    value = round(value or 0)
    if value < 60:
        return f"{value}m"
    return f"{value // 60}h{value % 60:02d}"


def fmt_money(value):
    if value is None:
        return "?"
    return f"${value:,.2f}" if value < 1000 else f"${value:,.0f}"


def level_color(percent, threshold, resume):
    if percent >= threshold:
        return "red"
    if percent >= resume:
        return "yellow"
    return "green"


# --- bucket bars -------------------------------------------------------------------------------


def short_name(name):
    """five_hour -> 5h, seven_day_fable -> 7d_fable: bucket names for narrow terminals."""
    return name.replace("five_hour", "5h").replace("seven_day", "7d")


def _cell(percent, cells):
    return min(cells - 1, max(0, int(percent / 100.0 * cells)))


def bucket_bar(name, percent, threshold, resume, forecast_at_reset=None, resets_in_seconds=None, style=Style()):
    """One line: `name  ███████░░░│░┊  88% ↻59m`.

    The bar fills the used share; the threshold mark (│, ASCII |) and the resume mark (╎, ASCII ')
    sit where those percents fall; the forecast's projected percent at the reset (┊, ASCII :) shows
    where the burn rate lands by then. The countdown says when the bucket resets.
    """
    u = style.unicode
    if style.width < 50:
        name = short_name(name)
        name_w, gap = 8, 1
    else:
        name_w, gap = min(20, max(16, len(name))), 2
    pct = "-" if percent is None else f"{percent:.0f}%"
    reset = "" if resets_in_seconds is None else ("↻" if u else "in ") + ("passed" if resets_in_seconds <= 0 else span(resets_in_seconds))
    suffix = f" {pct:>4} {reset}"
    cells = max(5, style.width - 2 - name_w - gap - 2 - (12 if u else 14))
    line = _Line(style).add("  " + _fit(name, name_w, style).ljust(name_w) + " " * gap)
    fill, empty = ("█", "░") if u else ("#", "-")
    marks = {}
    if forecast_at_reset is not None and percent is not None and forecast_at_reset > percent:
        marks[_cell(min(100.0, forecast_at_reset), cells)] = ("┊" if u else ":", "yellow")
    marks[_cell(resume, cells)] = ("╎" if u else "'", "green")
    marks[_cell(threshold, cells)] = ("│" if u else "|", "red")
    filled = 0 if percent is None else round(max(0.0, min(100.0, percent)) / 100.0 * cells)
    color = None if percent is None else level_color(percent, threshold, resume)
    line.add("[" if not u else "▕", "dim")
    for i in range(cells):
        if i in marks:
            char, mcolor = marks[i]
            line.add(char, mcolor)
        elif i < filled:
            line.add(fill, color)
        else:
            line.add(empty, "dim")
    line.add("]" if not u else "▏", "dim")
    line.add(suffix, color if percent is not None and percent >= threshold else None)
    return line.render()


# --- the window's curve ------------------------------------------------------------------------

EIGHTHS = " ▁▂▃▄▅▆▇█"


def sparkline(points, window_start, window_end, threshold, forecast_rate_per_hour=None, style=Style(),
              rows=4, now=None):
    """The current window's readings as a small chart, `rows` lines high, time across.

    points: [(t, percent)] of one window. Each column is a slice of the window; it shows the
    latest reading by then. After the last reading the forecast (percent per hour) is drawn as a
    dotted line until it reaches the threshold or the window ends. The threshold is a dashed
    line across the empty part of the chart. The last line is the time axis.
    """
    u = style.unicode
    gutter = 5
    cols = max(10, style.width - gutter - 2 - 1)
    span_s = max(1.0, window_end - window_start)
    pts = sorted((t, p) for t, p in points if window_start <= t <= window_end)
    values = [None] * cols
    kinds = [None] * cols
    j, last = 0, None
    last_t = pts[-1][0] if pts else None
    for c in range(cols):
        t_end = window_start + (c + 1) * span_s / cols
        while j < len(pts) and pts[j][0] <= t_end:
            last = pts[j][1]
            j += 1
        if last is not None and last_t is not None and window_start + c * span_s / cols <= last_t:
            values[c], kinds[c] = last, "read"
    if pts and forecast_rate_per_hour and forecast_rate_per_hour > 0:
        t0, p0 = pts[-1]
        for c in range(cols):
            t_mid = window_start + (c + 0.5) * span_s / cols
            if t_mid <= t0 or kinds[c] == "read":
                continue
            p = p0 + forecast_rate_per_hour * (t_mid - t0) / 3600
            values[c], kinds[c] = min(p, 100.0), "forecast"
            if p >= threshold:
                break
    units = rows * 8 if u else rows
    thr_row = min(rows - 1, int(threshold / 100.0 * rows))
    lines = []
    for r in range(rows - 1, -1, -1):
        label = "100% " if r == rows - 1 else ("  0% " if r == 0 else " " * gutter)
        line = _Line(style).add(label, "dim").add("│" if u else "|", "dim")
        for c in range(cols):
            v, kind = values[c], kinds[c]
            char, color = None, None
            if kind == "read":
                h = v / 100.0 * units
                if u:
                    level = max(0, min(8, round(h - r * 8)))
                    if r == 0 and v > 0:
                        level = max(level, 1)
                    char = EIGHTHS[level] if level else None
                else:
                    char = "#" if round(h) > r or (r == 0 and v > 0) else None
                color = level_color(v, threshold, min(threshold, 50.0)) if char else None
            elif kind == "forecast":
                row = min(rows - 1, int(v / 100.0 * rows))
                if row == r:
                    char, color = ("·" if u else "."), "yellow"
            if char is None and r == thr_row:
                char, color = ("┄" if u else "-"), "red"
            line.add(char or " ", color)
        lines.append(line.render())
    axis = _Line(style).add(" " * gutter + ("└" if u else "+"), "dim")
    start_label, end_label = clock(window_start), clock(window_end)
    mid = ""
    if now is not None and window_start < now < window_end:
        at = int((now - window_start) / span_s * cols)
        mid = ("▲" if u else "^") + "now"
        room = cols - len(start_label) - len(end_label)
        at = max(len(start_label) + 1, min(at, cols - len(end_label) - len(mid) - 1))
        if room < len(mid) + 2:
            mid, at = "", 0
    body = [" "] * cols
    for i, ch in enumerate(start_label):
        body[i] = ch
    for i, ch in enumerate(end_label):
        body[cols - len(end_label) + i] = ch
    if mid:
        for i, ch in enumerate(mid):
            body[at + i] = ch
    axis.add("".join(body), "dim")
    lines.append(axis.render())
    return "\n".join(lines)


# --- route timelines ---------------------------------------------------------------------------

ROUTES = {
    # route: (unicode char, ascii char, colour, legend name)
    "plan": ("─", ".", "green", "plan"),
    "openrouter": ("█", "O", "magenta", "openrouter"),
    "anthropic": ("▓", "A", "yellow", "anthropic"),
    "gateway": ("▒", "G", "cyan", "gateway"),
    "blocked": ("╳", "X", "red", "blocked"),
    "downshift": ("▄", "d", "blue", "downshift"),
}
OTHER = ("▚", "?", "bold", "other")
PRIORITY = {"blocked": 4, "downshift": 1, "plan": 0}


def _route_look(route):
    return ROUTES.get(route, OTHER)


def strip(segments, start, end, cells):
    """Per cell, the route shown: the most serious route that holds in it (blocked, a target,
    downshift, plan, in that order), so a short spill is never lost in a wide cell. None: no data."""
    out = [None] * cells
    width = max(1.0, end - start) / cells
    for a, b, route in segments:
        a, b = max(a, start), min(b, end)
        if b <= a:
            continue
        first = int((a - start) / width)
        last = min(cells - 1, int((b - start - 1e-9) / width))
        for c in range(first, last + 1):
            current = out[c]
            rank = PRIORITY.get(route, 2)
            if current is None or rank > PRIORITY.get(current, 2):
                out[c] = route
    return out


def _strip_line(line, cells_routes, style):
    for route in cells_routes:
        if route is None:
            line.add(" ")
            continue
        uchar, achar, color, _ = _route_look(route)
        line.add(uchar if style.unicode else achar, color)


def legend(routes, style):
    line = _Line(style)
    seen = ["plan"] + [r for r in ROUTES if r != "plan" and r in routes] + sorted(r for r in routes if r not in ROUTES)
    for i, route in enumerate(dict.fromkeys(seen)):
        uchar, achar, color, _ = _route_look(route)
        line.add("  " if i else "")
        line.add((uchar if style.unicode else achar) * 2, color)
        line.add(" " + route)
    return line.render()


def _used_routes(windows):
    return {route for w in windows for _, _, route in w.segments}


def _weekly_row(w, indent, style):
    if not w.weekly_peak:
        return None
    parts = [f"{name} {pct:.0f}%" for name, pct in sorted(w.weekly_peak.items())]
    text = (" " * indent) + ("╰ " if style.unicode else "` ") + "weekly " + "  ".join(parts)
    return _Line(style).add(_fit(text, style.width, style), "dim").render()


def timeline(windows, style=Style()):
    """One line per five-hour window: when it began, a strip of the route across it, then the
    window's peak, minutes spilled, minutes spilled after the reset, and spend. Weekly peaks go on
    a second line under a window when known. Starts with a header and ends with a legend."""
    wide = style.width >= 64
    label_fmt, label_w = ("%m-%d %H:%M", 11) if wide else ("%H:%M", 5)
    stats_w = 28 if wide else 11
    cells = max(8, style.width - label_w - 1 - 2 - stats_w)
    bar_l, bar_r = ("▕", "▏") if style.unicode else ("|", "|")
    head = ("window" if wide else "start").ljust(label_w) + " " + "route".ljust(cells + 2)
    head += " peak spill  over    spend" if wide else " peak spill"
    lines = [_Line(style).add(head.rstrip(), "bold").render()]
    if not windows:
        lines.append("  (no windows in this period)")
    for w in windows:
        line = _Line(style).add(clock(w.start, label_fmt).ljust(label_w) + " ")
        line.add(bar_l, "dim")
        _strip_line(line, strip(w.segments, w.start, w.end, cells), style)
        line.add(bar_r, "dim")
        peak = "-" if w.peak is None else f"{w.peak:.0f}%"
        line.add(f" {peak:>4}", "red" if w.peak is not None and w.peak >= 100 else None)
        line.add(f" {fmt_minutes(w.spilled_min):>5}", "magenta" if w.spilled_min else None)
        if wide:
            line.add(f" {fmt_minutes(w.overspill_min):>5}", "yellow" if w.overspill_min >= 1 else None)
            line.add(f" {fmt_money(w.spend) if w.spilled_min or w.spend else '-':>8}")
        lines.append(line.render())
        weekly = _weekly_row(w, label_w + 1, style)
        if weekly:
            lines.append(weekly)
    lines.append(legend(_used_routes(windows), style))
    return "\n".join(lines)


def totals(windows):
    """(minutes at the wall on the plan, minutes spilled, minutes over-spilled, spend or None)."""
    spends = [w.spend for w in windows if w.spend is not None]
    return (sum(w.wall_min for w in windows), sum(w.spilled_min for w in windows),
            sum(w.overspill_min for w in windows), sum(spends) if spends else None)


def compare(left_windows, right_windows, labels, style=Style()):
    """Two policies over the same windows, side by side: each a route strip and its minutes
    spilled, with the totals (minutes at the wall vs minutes paid, and the cost) under each."""
    wide = style.width >= 64
    label_fmt, label_w = ("%m-%d %H:%M", 11) if wide else ("%H:%M", 5)
    side = (style.width - label_w - 1 - 2) // 2
    cells = max(4, side - 2 - 6)
    bar_l, bar_r = ("▕", "▏") if style.unicode else ("|", "|")
    lines = [_Line(style).add(" " * (label_w + 1) + _fit(labels[0], side, style).ljust(side + 2)
                              + _fit(labels[1], side, style), "bold").render()]
    starts = sorted({w.start for w in left_windows} | {w.start for w in right_windows})
    by_l = {w.start: w for w in left_windows}
    by_r = {w.start: w for w in right_windows}
    for start in starts:
        line = _Line(style).add(clock(start, label_fmt).ljust(label_w) + " ")
        for k, w in enumerate((by_l.get(start), by_r.get(start))):
            if k:
                line.add("  ")
            if w is None:
                line.add(" " * side)
                continue
            line.add(bar_l, "dim")
            _strip_line(line, strip(w.segments, w.start, w.end, cells), style)
            line.add(bar_r, "dim")
            line.add(f" {fmt_minutes(w.spilled_min):>5}", "magenta" if w.spilled_min else None)
        lines.append(line.render())
    for row in range(2):
        line = _Line(style).add(" " * (label_w + 1))
        for k, ws in enumerate((left_windows, right_windows)):
            wall, spilled, _, spend = totals(ws)
            partial = any(w.spend is None and w.spilled_min for w in ws)
            text = (f"at the wall {fmt_minutes(wall)}" if row == 0
                    else f"paid {fmt_minutes(spilled)}" + ("" if spend is None else f" {fmt_money(spend)}") + ("+?" if partial else ""))
            if k:
                line.add("  ")
            color = ("red" if wall else "green") if row == 0 else "magenta"
            line.add(_fit(text, side, style), color)
            if not k:
                line.add(" " * (side - min(side, len(text))))
        lines.append(line.render())
    lines.append(legend(_used_routes(list(left_windows) + list(right_windows)), style))
    return "\n".join(lines)


# --- building windows from plain records ---------------------------------------------------------


def route_spans(changes, start, end):
    """[(start, end, route)] covering [start, end] from [(t, route)] route changes (sorted by t;
    the route before the first change is the first change's route)."""
    spans = []
    if not changes:
        return spans
    route = changes[0][1]
    cursor = start
    for t, new in changes:
        if t <= start:
            route = new
            continue
        if t >= end:
            break
        if new != route:
            spans.append((cursor, t, route))
            cursor, route = t, new
    spans.append((cursor, end, route))
    return [s for s in spans if s[1] > s[0]]


def _is_target(route):
    return route not in ("plan", "blocked", "downshift", None)


def build_windows(spans, readings, since, until, spends=(), walls=(), slack=120.0):
    """The five-hour windows of [since, until] as `Window`s.

    spans: [(start, end, route)] (route_spans); readings: [(t, bucket, percent, resets_at)];
    spends: [(t, usd)] charged to the window holding t; walls: [(start, end)] at the wall on the
    plan. Windows come from the five_hour readings' reset times (a window ends at its reset);
    without any, consecutive five-hour slots ending at `until` stand in.
    """
    resets = sorted({r[3] for r in readings if r[1] == "five_hour" and r[3] is not None})
    ends = []
    for r in resets:
        if ends and r - ends[-1] <= slack:
            ends[-1] = max(ends[-1], r)
        else:
            ends.append(r)
    bounds = []
    for e in ends:
        s = e - FIVE_HOURS
        if bounds and s < bounds[-1][1]:
            s = bounds[-1][1]  # a window never overlaps the one before it
        if e > since and s < until:
            bounds.append((s, e))
    if not bounds and spans:
        e = until
        while e > since:
            bounds.append((max(since, e - FIVE_HOURS), e))
            e -= FIVE_HOURS
        bounds.reverse()
    windows = []
    for s, e in bounds:
        # a span cut by the window's edge to a sliver (reset times vary by seconds) is not drawn
        clipped = [(max(a, s), min(b, e), r, a >= s and b <= e) for a, b, r in spans if b > s and a < e]
        seg = tuple((a, b, r) for a, b, r, whole in clipped if whole or b - a >= slack / 2)
        spilled = sum(b - a for a, b, r, _ in clipped if _is_target(r))
        over = sum(b - e for a, b, r in spans if _is_target(r) and a < e < b)
        peak = [p for t, b, p, rs in readings if b == "five_hour" and rs is not None and s < rs <= e]
        peak += [p for t, b, p, rs in readings if b == "five_hour" and rs is None and s <= t < e]
        weekly = {}
        for t, b, p, _ in readings:
            if b.startswith("seven_day") and s <= t < e:
                weekly[b] = max(p, weekly.get(b, 0.0))
        spend = [usd for t, usd in spends if s <= t < e]
        # unknown when a spill began here and nothing says what it cost
        priced = {round(t) for t, _ in spends}
        unknown = any(_is_target(r) and s <= a < e and round(a) not in priced for a, b, r in spans)
        windows.append(Window(
            start=s, end=e, segments=seg, peak=max(peak) if peak else None,
            spilled_min=spilled / 60, overspill_min=over / 60,
            spend=None if unknown else sum(spend),
            weekly_peak=weekly,
            wall_min=sum(max(0.0, min(b, e) - max(a, s)) for a, b in walls) / 60,
        ))
    return windows
