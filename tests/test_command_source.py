"""The command source (design §4.4): a real program prints JSON, JMESPath picks the buckets."""

import json
import re
import sys
import time

import pytest

from spillover import config
from spillover.errors import SourceError
from spillover.sources import command
from tests import fakes

SECRET = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc890"


def claude_meter_json(now, five_hour=42.0, fetched_ago=5):
    """`claude-meter --json` v0.3.9 (research §3.1): serde prints every key, nulls included."""
    window = lambda pct, secs: {"utilization": pct, "resets_at": fakes.iso(now + secs)}
    return {
        "org_uuid": "0f5e1a3c-3d4b-4b6e-9c1f-6a7b8c9d0e1f",
        "browser": "Claude Code",
        "account_email": "user@example.com",
        "fetched_at": fakes.iso(now - fetched_ago).replace("+00:00", "Z"),
        "usage": {
            "five_hour": window(five_hour, 3600),
            "seven_day": window(15.0, 5 * 86400),
            "seven_day_sonnet": window(18.0, 5 * 86400),
            "seven_day_opus": None,
            "seven_day_oauth_apps": None,
            "seven_day_omelette": None,
            "seven_day_cowork": None,
            "extra_usage": {"is_enabled": True, "monthly_limit": 2000, "used_credits": 520.0, "utilization": 26.0, "currency": "USD"},
        },
        "overage": None,
        "subscription": None,
        "errors": [],
        "stale": False,
    }


def meter(sandbox, output=None, exit=0, stderr="", sleep=0.0, raw=None):
    """An executable meter script in the sandbox; returns the command line for SPILLOVER_METER_COMMAND."""
    path = sandbox.root / "bin" / "fake meter.py"
    path.parent.mkdir(exist_ok=True)
    text = raw if raw is not None else json.dumps(output)
    path.write_text(
        "import sys, time\n"
        f"time.sleep({sleep})\n"
        f"sys.stderr.write({stderr!r})\n"
        f"sys.stdout.write({text!r})\n"
        f"sys.exit({exit})\n"
    )
    return f"{sys.executable} '{path}' --json"


def cfg(monkeypatch, meter_command, **env):
    monkeypatch.setenv("SPILLOVER_METER_COMMAND", meter_command)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return config.load()


def test_claude_meter_json_works_out_of_the_box(sandbox, monkeypatch):
    now = time.time()
    got = command.fetch(cfg(monkeypatch, meter(sandbox, claude_meter_json(now, 77.5))), now)
    by_bucket = {s.bucket: s for s in got}
    assert set(by_bucket) == {"five_hour", "seven_day", "seven_day_sonnet"}  # opus is null: absent, not 0
    five = by_bucket["five_hour"]
    assert (five.percent, five.source, five.wall) == (77.5, "command", False)
    assert five.resets_at == pytest.approx(now + 3600, abs=0.01)
    assert five.observed_at == pytest.approx(now - 5, abs=0.01)  # claude-meter's own fetched_at


def test_other_meters_by_expression(sandbox, monkeypatch):
    now = time.time()
    output = {"quota": [{"name": "session", "pct": "91.5"}, {"name": "week", "used_percentage": 33, "resets_at": int(now + 9000)},
                        {"name": "opus", "percent": 12, "resets_at": int((now + 600) * 1000)}]}
    c = cfg(monkeypatch, meter(sandbox, output),
            SPILLOVER_METER_FIVE_HOUR="quota[?name=='session'].pct | [0]",
            SPILLOVER_METER_SEVEN_DAY="quota[?name=='week'] | [0]",
            SPILLOVER_METER_SEVEN_DAY_OPUS="quota[?name=='opus'] | [0]",
            SPILLOVER_METER_SEVEN_DAY_SONNET="")
    got = {s.bucket: (s.percent, s.resets_at, s.observed_at) for s in command.fetch(c, now)}
    assert got == {"five_hour": (91.5, None, now), "seven_day": (33.0, float(int(now + 9000)), now),
                   "seven_day_opus": (12.0, pytest.approx(int((now + 600) * 1000) / 1000), now)}


@pytest.mark.parametrize("setup,message", [
    (dict(output={"usage": {}}, exit=2, stderr="error: not logged in with " + SECRET + "\n"), r"exited 2: error: not logged in with sk-or-v1-…c890"),
    (dict(raw="Traceback: keychain locked\n"), r"did not print JSON: Traceback: keychain locked"),
    (dict(raw=""), r"did not print JSON: \(no output\)"),
    (dict(output={"usage": {"five_hour": None}}), r"none of the SPILLOVER_METER_\* expressions matched"),
    (dict(output={"usage": {"five_hour": {"utilization": "high"}}}), r"usage.five_hour gave .* not a percent"),
    (dict(output=[1, 2, 3]), r"none of the SPILLOVER_METER_\* expressions matched"),
    (dict(output="a string"), r"output is not a JSON object"),
])
def test_failures_have_a_clear_redacted_reason(sandbox, monkeypatch, setup, message):
    with pytest.raises(SourceError) as info:
        command.fetch(cfg(monkeypatch, meter(sandbox, **setup)), time.time())
    assert re.search(message, str(info.value)), str(info.value)
    assert SECRET not in str(info.value)


def test_a_hanging_meter_times_out(sandbox, monkeypatch):
    c = cfg(monkeypatch, meter(sandbox, {"usage": {}}, sleep=30), SPILLOVER_TIMEOUT="0.5")
    with pytest.raises(SourceError, match=r"did not finish within 0.5s") as info:
        command.fetch(c, time.time())
    assert info.value.kind == "unavailable"


def test_missing_and_unparsable_commands(sandbox, monkeypatch):
    with pytest.raises(SourceError, match=r"'claude-meter-not-installed' not found"):
        command.fetch(cfg(monkeypatch, "claude-meter-not-installed --json"), time.time())
    with pytest.raises(SourceError, match=r"cannot be parsed"):
        command.fetch(cfg(monkeypatch, "claude-meter 'unbalanced"), time.time())


def test_no_shell_is_involved(sandbox, monkeypatch):
    marker = sandbox.root / "pwned"
    c = cfg(monkeypatch, f"{meter(sandbox, claude_meter_json(time.time()))} ; touch {marker}")
    command.fetch(c, time.time())  # `;` and `touch` are just arguments to the meter
    assert not marker.exists()


def test_tick_uses_the_meter_and_status_shows_it(wired):
    now = time.time()
    meter_command = meter(wired, claude_meter_json(now, 96.0, fetched_ago=1))
    env = {"SPILLOVER_SOURCES": "command", "SPILLOVER_METER_COMMAND": meter_command}
    wired.run("tick", check=True, env=env)
    state = wired.state()
    assert state["route"] == "openrouter"
    assert state["buckets"]["five_hour"]["source"] == "command" and state["buckets"]["five_hour"]["percent"] == 96.0
    assert state["sources"]["command"]["ok"] is True
    assert wired.usage.hits("/api/oauth/usage") == []
    assert wired.run("check", "-q", env=env).returncode == 3
    status = wired.run("status", env=env).stdout
    assert re.search(r"five_hour\s+96%\s+\S+\s+command\s+\d+s ago\s+hot", status), status
    assert re.search(r"command\s+✔ ok, last read", status), status
    # The reading is in the trace, so `simulate --from-history` can replay it.
    lines = [json.loads(l) for l in (wired.state_dir / "samples.jsonl").read_text().splitlines()]
    assert any(l["source"] == "command" and l["five_hour"]["percent"] == 96.0 for l in lines)


def test_tick_records_a_failing_meter_and_keeps_the_route(wired):
    env = {"SPILLOVER_SOURCES": "command", "SPILLOVER_METER_COMMAND": meter(wired, {"usage": {}}, exit=1, stderr="boom\n")}
    wired.run("tick", check=True, env=env)
    state = wired.state()
    assert state["route"] == "plan"
    assert state["sources"]["command"]["ok"] is False and "exited 1: boom" in state["sources"]["command"]["error"]
    assert "exited 1: boom" in wired.run("status", env=env).stdout
