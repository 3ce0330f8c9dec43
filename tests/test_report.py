"""`spillover report` (issue 15): one self-contained HTML page that parses, has one SVG per chart
with one segment per route span, and carries no key, token or path."""

import time
from html.parser import HTMLParser

import pytest

from spillover import report
from tests import fakes
from tests.conftest import ANT_KEY, MGMT_KEY, OAUTH_TOKEN, OR_KEY
from tests.test_charts import fixed_windows  # noqa: F401 (the same fixed trace as the golden pictures)

GATEWAY_TOKEN = "gw-secret-token-0123456789abcdef"


class Page(HTMLParser):
    """Every start tag with its attributes, each SVG's segment classes, and all text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tags, self.svgs, self.text, self.stack = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "svg":
            self.svgs.append({"class": attrs.get("class"), "segs": []})
        classes = (attrs.get("class") or "").split()
        if tag == "rect" and classes[:1] == ["seg"] and self.svgs:
            self.svgs[-1]["segs"].append(classes[1])

    def handle_data(self, data):
        self.text.append(data + " ")


def parse(page):
    parser = Page()
    parser.feed(page)
    parser.close()
    return parser


@pytest.fixture(autouse=True)
def _local_time_is_utc(utc):
    """Every test here prints local times: UTC (tests/conftest.py `utc`)."""


def test_fixed_trace_gives_one_svg_per_chart_and_one_rect_per_segment():
    windows = fixed_windows()
    summary = {"since": windows[0].start, "until": windows[-1].end, "route": "plan", "threshold": 95.0, "resume": 50.0,
               "flips": [{"at": windows[0].start + 3.5 * 3600, "from": "plan", "to": "openrouter",
                          "reason": "five_hour 92% → 95% in ~5 min (forecast) <script>alert(1)</script> & co"}]}
    buckets = [("five_hour", 88.0, 104.0, 3540), ("seven_day", 41.0, None, 86400)]
    page = report.render_html(summary, windows, buckets)
    p = parse(page)
    assert [s["class"] for s in p.svgs] == ["bars", "timeline", "timeline", "timeline"]
    assert [s["segs"] for s in p.svgs[1:]] == [
        ["seg-plan", "seg-openrouter"],
        ["seg-openrouter", "seg-plan", "seg-blocked", "seg-plan"],
        ["seg-plan", "seg-downshift", "seg-anthropic", "seg-plan"],
    ]
    assert page.count('<rect class="seg ') == 10
    assert page.count('<rect class="bar ') == 2
    # self-contained: no script, no external reference of any kind
    assert not [t for t, _ in p.tags if t in ("script", "link", "img", "iframe", "object", "embed")]
    assert "http" not in page and "url(" not in page and "src=" not in page
    # escaped: the reason is text, not markup
    assert "<script>alert(1)</script> & co" in "".join(p.text) and "&lt;script&gt;" in page
    text = " ".join("".join(p.text).split())
    assert "minutes spilled after a reset 40m" in text and "spend during spills $7.25 + unknown" in text
    assert "at the wall 6m" in text and "weekly seven_day 50%, seven_day_fable 100%" in text


def test_no_buckets_no_windows_still_a_page():
    page = report.render_html({"since": 0, "until": 3600, "route": None, "flips": []}, [], [])
    p = parse(page)
    assert p.svgs == [] and "No windows in this period." in page and page.startswith("<!DOCTYPE html>")


def run_at(sandbox, offset, *args):
    return sandbox.run(*args, env={"SPILLOVER_POLL_MINUTES": "0", "TZ": "UTC"}, at=offset, check=True)


def test_report_from_real_ticks_has_the_spill_and_no_secret(wired, tmp_path):
    # every secret the config can hold, next to the OAuth token in the credentials file
    config = wired.config_file.read_text() + (
        f"OPENROUTER_MANAGEMENT_KEY='{MGMT_KEY}'\nSPILLOVER_ANTHROPIC_API_KEY='{ANT_KEY}'\n"
        f"SPILLOVER_GATEWAY_BASE_URL='https://gw.example.test/v1'\nSPILLOVER_GATEWAY_TOKEN='{GATEWAY_TOKEN}'\n")
    wired.config_file.write_text(config)
    # out at 96% with the key at $133.25; 30 minutes to the reset; back 40 minutes later at $140.50
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0, resets_in=30 * 60))
    wired.run("tick", env={"SPILLOVER_POLL_MINUTES": "0"}, check=True)
    assert wired.state()["route"] == "openrouter"
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(usage=140.5))
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(10.0, resets_in=5 * 3600, now=time.time() + 40 * 60))
    run_at(wired, "+40m", "tick")
    assert wired.state()["route"] == "plan"

    out = tmp_path / "shared" / "page.html"
    out.parent.mkdir()
    proc = run_at(wired, "+41m", "report", "--since", "1d", "-o", str(out))
    assert "wrote" in proc.stderr and "2 five-hour windows" in proc.stderr
    page = out.read_text(encoding="utf-8")
    piped = run_at(wired, "+41m", "report", "--since", "1d", "-o", "-").stdout
    assert parse(piped).svgs == parse(page).svgs
    p = parse(page)
    # the bars, then the window that held the spill (plan, then openrouter until its reset), then
    # the next window (plan since the flip back); the 10 minutes after the reset are over-spill
    assert [s["class"] for s in p.svgs] == ["bars", "timeline", "timeline"]
    assert [s["segs"] for s in p.svgs[1:]] == [["seg-plan", "seg-openrouter"], ["seg-plan"]]
    text = " ".join("".join(p.text).split())
    assert "spend during spills $7.25" in text and "minutes spilled after a reset 10m" in text
    assert "minutes spilled (paid) 30m" in text and "five_hour 96% ≥ 95%" in text
    for secret in (OR_KEY, MGMT_KEY, ANT_KEY, OAUTH_TOKEN, GATEWAY_TOKEN, "sk-or-v1", "sk-ant", "gw.example", "Bearer"):
        assert secret not in page, secret
    for path in (str(wired.root), str(wired.home), str(wired.state_dir), str(tmp_path), "/tmp", "/home", ".claude",
                 "config.env", str(wired.usage.url), "127.0.0.1"):
        assert path not in page, path
