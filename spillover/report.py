"""`spillover report`: one self-contained HTML page of the buckets, the five-hour windows and the
spills, to keep or share.

`render_html` is pure: plain data in, a page out. The page has inline CSS and one inline `<svg>`
per chart, no script and no external URL; every text is escaped. It is given only what it shows
(bucket names and percents, route names, times, minutes, dollars and flip reasons, which are
redacted before they get here): no key, token, URL or file path.
"""

import html
import os
import sys
import time

from spillover import charts

CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:860px;color:#222;background:#fff}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:1.6em}
table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left}th{font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:.4em 0}figcaption{font-size:12px;color:#555}
svg text{font:12px system-ui,sans-serif;fill:#222}
.bg{fill:#eee}.lv-green{fill:#3a3}.lv-yellow{fill:#d90}.lv-red{fill:#c33}
.mark{stroke-width:2}.threshold{stroke:#c33}.resume{stroke:#3a3}.forecast{stroke:#d90;stroke-dasharray:3 2}
.key span{display:inline-block;width:1em;height:.8em;margin:0 .3em 0 1em}
"""
ROUTE_COLORS = {"plan": "#9c9", "openrouter": "#a3a", "anthropic": "#d90", "gateway": "#399", "blocked": "#c33",
                "downshift": "#36c", "other": "#777"}
CSS += "".join(f".seg-{r}{{fill:{c}}}.key .k-{r}{{background:{c}}}" for r, c in ROUTE_COLORS.items()) + "\n"
KNOWN = tuple(ROUTE_COLORS)


def _e(value):
    return html.escape(str(value), quote=True)


def _route_class(route):
    return route if route in KNOWN else "other"


def bars_svg(buckets, threshold, resume, width=760):
    """One SVG: a bar per bucket with the threshold, resume and forecast-at-reset marks."""
    row, left, right = 26, 150, 170
    inner = width - left - right
    out = [f'<svg class="bars" width="{width}" height="{row * max(1, len(buckets)) + 6}"'
           f' role="img" aria-label="quota buckets">']
    for i, (name, pct, at_reset, left_s) in enumerate(buckets):
        y = 4 + i * row

        def x(p):
            return left + inner * max(0.0, min(100.0, p)) / 100

        out.append(f'<text x="0" y="{y + 14}">{_e(name)}</text>')
        out.append(f'<rect class="bg" x="{left}" y="{y}" width="{inner}" height="18"/>')
        out.append(f'<rect class="bar lv-{charts.level_color(pct, threshold, resume)}" x="{left}" y="{y}" width="{x(pct) - left:.1f}" height="18">'
                   f'<title>{_e(name)} {pct:.0f}%</title></rect>')
        for cls, p in (("resume", resume), ("threshold", threshold)) + ((("forecast", at_reset),) if at_reset else ()):
            out.append(f'<line class="mark {cls}" x1="{x(p):.1f}" x2="{x(p):.1f}" y1="{y - 2}" y2="{y + 20}"><title>{cls} {min(p, 100):.0f}%</title></line>')
        reset = "" if left_s is None else (" resets passed" if left_s <= 0 else f" resets in {charts.span(left_s)}")
        out.append(f'<text x="{left + inner + 8}" y="{y + 14}">{pct:.0f}%{_e(reset)}</text>')
    out.append("</svg>")
    return "".join(out)


def window_svg(window, width=760):
    """One SVG: the route across one five-hour window, one `<rect class="seg seg-ROUTE">` per segment."""
    height = 22
    total = max(1.0, window.end - window.start)
    out = [f'<svg class="timeline" width="{width}" height="{height}" role="img"'
           f' aria-label="route from {_e(charts.clock(window.start, "%Y-%m-%d %H:%M"))}">',
           f'<rect class="bg" x="0" y="0" width="{width}" height="{height}"/>']
    for a, b, route in window.segments:
        x = (a - window.start) / total * width
        w = max(0.5, (b - a) / total * width)
        title = f"{route} {charts.clock(a)}–{charts.clock(b)} ({charts.fmt_minutes((b - a) / 60)})"
        out.append(f'<rect class="seg seg-{_route_class(route)}" x="{x:.1f}" y="0" width="{w:.1f}" height="{height}">'
                   f'<title>{_e(title)}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def render_html(summary, windows, buckets, title="spillover report"):
    """The page. summary: dict with since, until, generated_at (epochs), route, threshold, resume,
    flips ([{at, from, to, reason}]); windows: charts.Window list; buckets: [(name, percent,
    forecast_at_reset, resets_in_seconds)]."""
    threshold, resume = summary.get("threshold", 95.0), summary.get("resume", 50.0)
    when = "%Y-%m-%d %H:%M %Z"
    wall, spilled, over, spend = charts.totals(windows)
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1>",
             f"<p>{_e(charts.clock(summary['since'], when))} → {_e(charts.clock(summary['until'], when))}; "
             f"route now <b>{_e(summary.get('route') or 'unknown')}</b>; threshold {threshold:g}%, resume {resume:g}%.</p>",
             "<h2>Totals</h2><table>"]
    rows = (("five-hour windows", str(len(windows))), ("flips", str(len(summary.get("flips") or ()))),
            ("minutes at the wall on the plan", charts.fmt_minutes(wall)), ("minutes spilled (paid)", charts.fmt_minutes(spilled)),
            ("minutes spilled after a reset", charts.fmt_minutes(over)), ("spend during spills", (charts.fmt_money(spend) if spend is not None else "unknown")
             + (" + unknown" if spend is not None and any(w.spend is None and w.spilled_min for w in windows) else "")))
    parts += [f'<tr><th>{_e(k)}</th><td class="n">{_e(v)}</td></tr>' for k, v in rows]
    parts.append("</table>")
    if buckets:
        parts += ["<h2>Buckets now</h2>", "<figure>", bars_svg(buckets, threshold, resume),
                  f"<figcaption>bar: used share; red line: threshold {threshold:g}%; green line: resume {resume:g}%; "
                  "dashed: the burn-rate forecast at the reset</figcaption></figure>"]
    parts.append("<h2>Five-hour windows</h2>")
    routes = sorted({r for w in windows for _, _, r in w.segments}, key=lambda r: (r != "plan", r))
    parts.append('<p class="key">' + "".join(f'<span class="k-{_route_class(r)}"></span>{_e(r)}'
                                              for r in routes) + "</p>")
    if not windows:
        parts.append("<p>No windows in this period.</p>")
    for w in windows:
        peak = "-" if w.peak is None else f"{w.peak:.0f}%"
        cost = "" if not w.spilled_min and not w.spend else f", spend {charts.fmt_money(w.spend)}"
        caption = (f"{charts.clock(w.start, '%a %Y-%m-%d %H:%M')}–{charts.clock(w.end)}: peak {peak}, "
                   f"spilled {charts.fmt_minutes(w.spilled_min)}, after the reset {charts.fmt_minutes(w.overspill_min)}{cost}")
        if w.wall_min:
            caption += f", at the wall {charts.fmt_minutes(w.wall_min)}"
        if w.weekly_peak:
            caption += "; weekly " + ", ".join(f"{k} {v:.0f}%" for k, v in sorted(w.weekly_peak.items()))
        parts += ["<figure>", window_svg(w), f"<figcaption>{_e(caption)}</figcaption></figure>"]
    flips = summary.get("flips") or []
    if flips:
        parts.append("<h2>Flips</h2><table><tr><th>when</th><th>from</th><th>to</th><th>why</th></tr>")
        for f in flips:
            parts.append(f"<tr><td>{_e(charts.clock(f['at'], '%Y-%m-%d %H:%M'))}</td><td>{_e(f.get('from') or '?')}</td>"
                         f"<td>{_e(f['to'])}</td><td>{_e(f.get('reason') or '')}</td></tr>")
        parts.append("</table>")
    parts.append(f"<p><small>generated {_e(charts.clock(summary.get('generated_at', summary['until']), when))} by spillover</small></p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def run(cfg, args, out=None):
    from spillover import history, status
    from spillover.pins import parse_duration

    out = out or sys.stdout
    now = time.time()
    data = history.collect(parse_duration(args.since), now)
    windows = history.windows(data)
    current = status.collect(cfg, now)
    thresholds = current["thresholds"]
    summary = {
        "since": data["since"], "until": now, "generated_at": now, "route": current["route"],
        "threshold": thresholds.get("threshold", cfg.threshold), "resume": thresholds.get("resume", cfg.resume),
        "flips": [{"at": f["at"], "from": f["from"], "to": f["to"], "reason": f["reason"]} for f in data["flips"]],
    }
    page = render_html(summary, windows, status.bar_rows(current))
    if args.output == "-":
        out.write(page)
        return 0
    tmp = f"{args.output}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(page)
    os.replace(tmp, args.output)
    print(f"spillover: wrote {args.output} ({len(windows)} five-hour window{'' if len(windows) == 1 else 's'} since {charts.clock(data['since'], '%Y-%m-%d %H:%M')})",
          file=sys.stderr)
    return 0
