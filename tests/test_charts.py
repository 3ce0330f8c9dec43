"""Terminal pictures (issue 15): golden text of every chart for fixed inputs, widths that hold,
colour only where it belongs, and the real `status`/`history`/`simulate` drawing them.

Regenerate the golden files after an intended change with SPILLOVER_UPDATE_GOLDEN=1."""

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from spillover import charts, samples, simulate
from spillover.charts import Style
from spillover.policy import Policy
from tests import fakes

GOLDEN = Path(__file__).resolve().parent / "golden"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
T0 = 1_800_000_000.0 - (1_800_000_000 % 3600)  # an hour boundary
H = 3600


@pytest.fixture(autouse=True)
def _local_time_is_utc(utc):
    """Every test here prints local times: UTC (tests/conftest.py `utc`)."""


def fixed_windows():
    """Three windows: a forecast spill that ran 40 minutes past the reset, a quiet one with a
    short block, and one with a downshift and an anthropic spill."""
    spans = [
        (T0, T0 + 3.5 * H, "plan"), (T0 + 3.5 * H, T0 + 5 * H + 40 * 60, "openrouter"),
        (T0 + 5 * H + 40 * 60, T0 + 7 * H, "plan"), (T0 + 7 * H, T0 + 7 * H + 12 * 60, "blocked"),
        (T0 + 7 * H + 12 * 60, T0 + 11 * H, "plan"), (T0 + 11 * H, T0 + 12 * H, "downshift"),
        (T0 + 12 * H, T0 + 13 * H, "anthropic"), (T0 + 13 * H, T0 + 15 * H, "plan"),
    ]
    readings = []
    for w, peak in enumerate((97.0, 64.0, 99.0)):
        reset = T0 + (w + 1) * 5 * H
        for m in range(0, 300, 30):
            readings.append((T0 + w * 5 * H + m * 60, "five_hour", peak * (m + 30) / 300, reset))
        readings.append((T0 + w * 5 * H + 60, "seven_day", 20.0 + 15 * w, T0 + 6 * 86400))
    readings.append((T0 + 10 * H + 60, "seven_day_fable", 100.0, T0 + 3 * 86400))
    walls = [(T0 + 13 * H, T0 + 13 * H + 6 * 60)]
    return charts.build_windows(spans, readings, T0, T0 + 15 * H, spends=[(T0 + 3.5 * H, 7.25)], walls=walls)


def picture(style):
    parts = [
        charts.bucket_bar("five_hour", 88.0, 95.0, 50.0, 104.0, 59 * 60, style),
        charts.bucket_bar("seven_day", 41.0, 95.0, 50.0, 52.0, 4.2 * 86400, style),
        charts.bucket_bar("seven_day_fable", 100.0, 95.0, 50.0, None, 2 * 86400 + 3 * H, style),
        charts.bucket_bar("seven_day_opus", 12.0, 95.0, 50.0, None, None, style),
        charts.sparkline([(T0 + m * 60, 10 + m * 0.32) for m in range(0, 220, 4)], T0, T0 + 5 * H, 95.0, 22.0,
                         style, now=T0 + 222 * 60),
        charts.timeline(fixed_windows(), style),
        charts.compare(fixed_windows(), fixed_windows()[:2], ("threshold 95%", "threshold 90%"), style),
    ]
    return "\n".join(parts) + "\n"


STYLES = [(u, w, c) for u in (True, False) for w in (80, 120) for c in (False, True)]


@pytest.mark.parametrize("unicode,width,color", STYLES)
def test_golden(unicode, width, color):
    name = f"charts-{'utf8' if unicode else 'ascii'}-{width}{'-color' if color else ''}.txt"
    text = picture(Style(width=width, unicode=unicode, color=color))
    path = GOLDEN / name
    if os.environ.get("SPILLOVER_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (SPILLOVER_UPDATE_GOLDEN=1 to accept)"


@pytest.mark.parametrize("width", [20, 40, 41, 50, 63, 64, 80, 97, 120, 200])
@pytest.mark.parametrize("unicode", [True, False])
def test_no_line_exceeds_the_width(width, unicode):
    for color in (False, True):
        text = picture(Style(width=width, unicode=unicode, color=color))
        for line in text.splitlines():
            assert len(ANSI.sub("", line)) <= width, (width, line)


def test_ascii_is_ascii_and_colour_only_when_asked():
    plain = picture(Style(80, unicode=False, color=False))
    assert plain.isascii() and "\x1b" not in plain
    assert "\x1b" not in picture(Style(80, unicode=True, color=False))
    coloured = picture(Style(80, unicode=True, color=True))
    assert "\x1b[31m" in coloured
    assert ANSI.sub("", coloured) == picture(Style(80, unicode=True, color=False))


def test_bar_marks_sit_at_their_percents():
    style = Style(width=80, unicode=False, color=False)
    line = charts.bucket_bar("five_hour", 50.0, 90.0, 30.0, 70.0, 600, style)
    bar = line[line.index("[") + 1:line.index("]")]
    n = len(bar)
    assert bar.index("|") == int(0.9 * n) and bar.index("'") == int(0.3 * n) and bar.index(":") == int(0.7 * n)
    assert bar[:int(0.3 * n)] == "#" * int(0.3 * n) and bar[int(0.5 * n) + 1:int(0.7 * n)].strip("-") == ""
    assert line.endswith(" 50% in 10m")
    # a forecast under the reading (a falling bucket) draws no forecast mark
    assert ":" not in charts.bucket_bar("five_hour", 50.0, 90.0, 30.0, 40.0, 600, style)


def test_sparkline_forecast_stops_at_the_threshold():
    style = Style(width=60, unicode=False, color=False)
    pts = [(T0 + m * 60, 50 + m * 0.5) for m in range(0, 60, 5)]  # 50% -> 77.5% in 55 minutes
    text = charts.sparkline(pts, T0, T0 + 5 * H, 90.0, 30.0, style, rows=4)
    top = text.splitlines()[0]
    dots = [i for i, ch in enumerate(top) if ch == "."]
    assert dots, text
    # 77.5% + 30%/h reaches 90% 25 minutes after the last reading: the dotted line ends there
    cols = 60 - 5 - 2 - 1
    assert abs(dots[-1] - 6 - (55 + 25) / 300 * cols) <= 1.5
    assert top[dots[-1] + 1] == "-"  # the threshold line goes on after it


def test_timeline_strip_keeps_short_events_and_counts():
    [w1, w2, w3] = fixed_windows()
    assert (w1.peak, w2.peak, w3.peak) == (97.0, 64.0, 99.0)
    assert w1.spilled_min == 90 and w1.overspill_min == 40 and w1.spend == 7.25
    assert w2.spilled_min == 40 and w2.spend == 0  # the over-spill: its spend counts where it began
    assert w3.spend is None and w3.wall_min == 6  # the anthropic spill has no price
    assert w3.spilled_min == 60 and [r for _, _, r in w3.segments] == ["plan", "downshift", "anthropic", "plan"]
    assert w3.weekly_peak == {"seven_day": 50.0, "seven_day_fable": 100.0}
    # a 12-minute block in a 5-hour window survives a 20-cell strip
    assert "blocked" in charts.strip(w2.segments, w2.start, w2.end, 20)
    text = charts.timeline([w2], Style(width=40, unicode=False, color=False))
    assert "X" in text.splitlines()[1] and "XX blocked" in text


def test_style_for_reads_the_terminal():
    class Stream:
        def __init__(self, tty, encoding="utf-8"):
            self.tty, self.encoding = tty, encoding

        def isatty(self):
            return self.tty

    utf = {"LANG": "en_US.UTF-8"}
    assert charts.style_for(Stream(True), utf).color is True
    assert charts.style_for(Stream(True), dict(utf, NO_COLOR="")).color is False
    assert charts.style_for(Stream(True), dict(utf, TERM="dumb")).color is False
    assert charts.style_for(Stream(False), utf).color is False
    assert charts.style_for(Stream(False), utf) == Style(80, True, False)
    assert charts.style_for(Stream(False), {"LANG": "C"}).unicode is False
    assert charts.style_for(Stream(False), {"LC_ALL": "C", "LANG": "en_US.UTF-8"}).unicode is False
    assert charts.style_for(Stream(False), {"LC_CTYPE": "de_DE.utf8"}).unicode is True
    assert charts.style_for(Stream(False, "ascii"), {}).unicode is False
    assert charts.style_for(Stream(False, "UTF-8"), {}).unicode is True


def test_charts_import_nothing_heavy():
    # status already loads policy (and so dataclasses): charts must add nothing but itself
    code = ("import sys, spillover.policy; before = set(sys.modules); import spillover.charts; "
            "print(sorted(set(sys.modules) - before))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert eval(out) == ["spillover.charts", "spillover.fmt"]  # noqa: S307 — our own list literal


# --- the real commands ------------------------------------------------------------------------

POLL = {"SPILLOVER_POLL_MINUTES": "0"}


def ticked(wired):
    """A state dir written by real ticks against the loopback fakes: three readings, then a spill.
    The window resets in 2 h less half a minute: the countdown reads 1h59m however fast the ticks
    run (at exactly 2 h, a status within the second after the read showed 2h00m)."""
    for pct in (80.0, 85.0, 88.0):
        wired.usage.set("/api/oauth/usage", json=fakes.usage_body(pct, resets_in=2 * H - 30))
        wired.run("tick", env=POLL, check=True)
    state = wired.state()
    assert state["buckets"]["five_hour"]["percent"] == 88.0
    return wired


def run_in_pty(sandbox, args, env):
    """`python -m spillover ARGS` with stdout on a pseudo-terminal (a TTY): what it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "spillover", *args], cwd=sandbox.root, env=env,
                            stdout=slave, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    assert proc.returncode == 0, proc.stderr.read()
    return b"".join(chunks).decode("utf-8", "replace")


def test_status_colour_only_on_a_tty_without_no_color(wired):
    ticked(wired)
    env = {k: v for k, v in wired.env.items() if k != "NO_COLOR"}
    piped = wired.run("status", env={}).stdout  # the sandbox sets NO_COLOR; see below without it
    assert "\x1b" not in piped and "five_hour" in piped
    without = subprocess.run([sys.executable, "-m", "spillover", "status"], cwd=wired.root, env=env,
                             capture_output=True, text=True, timeout=60)
    assert without.returncode == 0 and "\x1b" not in without.stdout  # not a TTY: no colour
    assert "▕" in without.stdout and "█" in without.stdout  # the bars, in Unicode under C.UTF-8
    on_tty = run_in_pty(wired, ["status"], env)
    assert "\x1b[" in on_tty  # a TTY without NO_COLOR: coloured (so the two checks above can fail)
    no_color = run_in_pty(wired, ["status"], dict(env, NO_COLOR="1"))
    assert "\x1b" not in no_color and "five_hour" in no_color
    ascii_out = subprocess.run([sys.executable, "-m", "spillover", "status"], cwd=wired.root,
                               env=dict(env, LANG="C", LC_ALL="C"), capture_output=True, timeout=60).stdout
    assert b"five_hour" in ascii_out and b"|" in ascii_out and b"#" in ascii_out


def test_status_draws_bars_and_the_curve_and_json_is_unchanged(wired):
    ticked(wired)
    text = wired.run("status", check=True).stdout
    bars = [line for line in text.splitlines() if line.startswith("  five_hour ") and "▕" in line]
    assert len(bars) == 1 and re.search(r" 88% ↻1h5\dm$", bars[0].rstrip()), bars  # 2 h - 30 s, less the ticks' time
    assert "100% │" in text and "  0% │" in text  # the five-hour curve: three readings of this window
    data = json.loads(wired.run("status", "--json", check=True).stdout)
    assert set(data) == {
        "config_error", "route", "status", "exit", "reason", "route_reason", "route_since", "decided_at", "stale", "pin",
        "pin_ignored", "buckets", "weekly_walls", "targets", "budget", "sources", "oauth_backoff_until", "extra_usage",
        "problems", "thresholds", "state_dir", "config_file", "models", "floor", "floor_why",
        # decision v2: the pin suggestion, a model-wall downshift, blindness and the accounts
        "pin_command", "downshift", "downshift_text", "blind", "account", "other_accounts"}
    assert not any("\x1b" in str(v) or "█" in str(v) for v in data.values())


def test_history_chart_from_real_ticks(wired):
    ticked(wired)
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0, resets_in=2 * H))
    wired.run("tick", env=POLL, check=True)
    assert wired.state()["route"] == "openrouter"
    text = wired.run("history", "--chart", "--since", "1d", check=True).stdout
    lines = text.splitlines()
    assert lines[0].startswith("window") and "peak spill  over    spend" in lines[0]
    [row] = [line for line in lines if "▕" in line]
    peak, spilled, over, spend = row.rstrip().split()[-4:]
    assert (peak, over, spend) == ("97%", "0m", "$0.00") and re.fullmatch(r"[01]m", spilled)  # began seconds ago
    assert "╰ weekly seven_day 15%  seven_day_sonnet 18%" in text
    assert lines[-1] == "── plan  ██ openrouter"


def test_simulate_chart_and_compare(tmp_path, sandbox):
    lines = []
    for w, rate in enumerate((0.45, 0.2)):
        start, reset, pct = T0 + w * 5 * H, T0 + (w + 1) * 5 * H, 5.0
        for m in range(0, 300, 2):
            lines.append(samples.record(start + m * 60, "statusline", {"five_hour": (min(pct, 100.0), reset)}))
            pct += rate * 2
    trace = tmp_path / "trace.jsonl"
    trace.write_text("".join(json.dumps(line) + "\n" for line in lines))
    # in-process: the windows of a replay
    loaded, timeline = simulate.load_trace(str(trace)), {}
    report = simulate.replay(loaded, Policy(threshold=95.0, resume=50.0, lead_seconds=300), 60, 12.0, timeline)
    windows = simulate.chart_windows(loaded, timeline, 12.0)
    assert len(windows) == 2 and windows[1].spilled_min == 0
    assert sum(w.spilled_min for w in windows) == pytest.approx(report["minutes_spilled"])
    assert windows[0].spend == pytest.approx(report["spill_cost_usd"], abs=0.01)
    # the real command
    env = {"TZ": "UTC"}
    proc = sandbox.run("simulate", str(trace), "--chart", env=env, check=True)
    assert "on the plan at the wall" in proc.stdout and "── plan  ██ openrouter" in proc.stdout
    proc = sandbox.run("simulate", str(trace), "--threshold", "95", "--compare", "80", env=env, check=True)
    head, *rows = proc.stdout.splitlines()
    assert "threshold 95%" in head and "threshold 80%" in head
    assert any(r.strip().startswith("at the wall 0m") for r in rows)
    paid = [r for r in rows if "paid" in r][0]
    left, right = re.findall(r"paid (\S+) \$([\d.]+)", paid)
    assert float(right[1]) > float(left[1])  # the lower threshold pays more
    bad = sandbox.run("simulate", str(trace), "--compare", "80", "--json")
    assert bad.returncode == 2 and json.loads(bad.stdout) == {"error": "--chart and --compare draw pictures; leave out --json", "exit": 2}


def test_window_points_reads_the_current_window_only(sandbox):
    from spillover import status

    reset = T0 + 5 * H
    lines = [samples.record(T0 - 3 * H + m * 60, "oauth", {"five_hour": (50.0 + m / 10, T0)}) for m in range(0, 120, 10)]
    lines += [samples.record(T0 + m * 60, "statusline", {"five_hour": (m / 3, reset), "seven_day": (20.0, None)})
              for m in range(0, 200, 20)]
    lines.insert(3, {"t": T0 + 30, "five_hour": {"percent": 1.0, "resets_at": None}})  # no reset: not this window
    text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
    # a line in another key order (a hand-made trace) and a torn one
    text += json.dumps({"t": T0 + 201 * 60, "five_hour": {"resets_at": reset + 30, "percent": 70.0}}) + "\n" + '{"t": 1, "five_h'
    sandbox.state_dir.mkdir(parents=True)
    (sandbox.state_dir / "samples.jsonl").write_text(text)
    points = status.window_points("five_hour", reset)
    assert points == [(T0 + m * 60, round(m / 3, 2)) for m in range(0, 200, 20)] + [(T0 + 201 * 60, 70.0)]


def test_readme_pictures_are_real_output():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    section = readme.split("### Pictures")[1].split("\n## ")[0]
    blocks = re.findall(r"```\n(.*?)\n```", section, re.S)
    golden = (GOLDEN / "charts-utf8-80.txt").read_text(encoding="utf-8")
    assert len(blocks) == 3 and blocks[0] in golden and blocks[1] in golden  # status, history --chart
    assert "threshold 95%" in blocks[2] and "paid" in blocks[2]  # simulate --compare, from a real run
