"""Pins (issue 5): `spillover pin <route> [--for D | --until-reset] [--force]` and `unpin`.
The expiry is shown with a whole-process fake clock: the `faketime` binary around the tick."""

import json
import subprocess
import sys
import time

import pytest

from tests import fakes
from tests.conftest import ANT_KEY

POLL = {"SPILLOVER_POLL_MINUTES": "0"}


def run_at(sandbox, offset, *args, env=None):
    """`python -m spillover ARGS` with the clock moved by `offset` (e.g. '+31m') for the whole process."""
    return sandbox.run(*args, env=env, at=offset)


def check_json(sandbox, env=None):
    return json.loads(sandbox.run("check", "--json", env=env).stdout)


def test_faketime_moves_pythons_clock(sandbox):
    clock = subprocess.run(["faketime", "-f", "@2030-01-01 00:00:00", sys.executable, "-c", "import time; print(time.time())"],
                           capture_output=True, text=True, env={"TZ": "UTC", "PATH": sandbox.env["PATH"]}, check=True)
    assert abs(float(clock.stdout) - 1893456000) < 60


def test_pin_overrides_then_expires(wired):
    wired.run("tick", env=POLL, check=True)
    assert wired.state()["route"] == "plan"

    proc = wired.run("pin", "openrouter", "--for", "30m", env=POLL, check=True)
    assert "pinned to openrouter until" in proc.stdout
    state = wired.state()
    assert (state["route"], state["status"]) == ("openrouter", "spilled")
    assert state["reason"] == "pinned to openrouter until the pin expires"
    assert wired.run("check", "-q").returncode == 3
    summary = check_json(wired)
    assert summary["pin"]["route"] == "openrouter" and summary["pin"]["honoured"] is True
    assert "[pinned]" in wired.run("check").stdout
    assert "[pinned to openrouter until" in wired.run("status").stdout
    assert "export SPILLOVER_PIN='openrouter until " in wired.route_env()
    until = state["pin"]["until"]

    # 29 minutes later the pin still holds; 31 minutes later it has expired and the quota decides.
    run_at(wired, "+29m", "tick", env=POLL)
    assert until - 120 < wired.state()["decided_at"] < until
    assert wired.state()["route"] == "openrouter"
    proc = run_at(wired, "+31m", "tick", env=POLL)
    assert proc.returncode == 0, proc.stderr
    state = wired.state()
    assert state["decided_at"] > until
    assert (state["route"], state["pin"]) == ("plan", None)
    assert "unset" in wired.route_env() and "SPILLOVER_PIN" in wired.route_env().split("unset", 1)[1]


def test_pin_plan_holds_even_at_the_wall(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0))
    wired.run("pin", "plan", "--for", "1h", env=POLL, check=True)
    wired.run("tick", env=POLL, check=True)
    state = wired.state()
    assert state["route"] == "plan" and state["reason"] == "pinned to plan until the pin expires"
    proc = wired.run("unpin", env=POLL, check=True)
    assert "pin removed" in proc.stdout
    assert wired.state()["route"] == "openrouter"
    assert wired.run("unpin").stdout.strip() == "no pin"


def test_pin_to_an_unhealthy_target_is_refused_unless_forced(wired):
    wired.openrouter.set("/api/v1/key", status=403, json=fakes.KEY_LIMIT_403)
    proc = wired.run("pin", "openrouter", "--for", "1h", env=POLL)
    assert proc.returncode == 1
    assert "refusing to pin openrouter" in proc.stderr and "Key limit exceeded" in proc.stderr and "--force" in proc.stderr
    assert not (wired.state_dir / "pin.json").exists()

    proc = wired.run("pin", "openrouter", "--for", "1h", "--force", env=POLL, check=True)
    state = wired.state()
    assert state["route"] == "openrouter"
    assert "forced; guard says" in state["reason"] and "Key limit exceeded" in state["reason"]


def test_pin_whose_guard_starts_failing_is_ignored_with_the_reason(wired):
    env = dict(POLL, SPILLOVER_TARGETS="openrouter,anthropic", SPILLOVER_ANTHROPIC_API_KEY=ANT_KEY)
    wired.run("pin", "openrouter", "--for", "2h", env=env, check=True)
    assert wired.state()["route"] == "openrouter"
    wired.openrouter.set("/api/v1/key", status=403, json=fakes.KEY_LIMIT_403)
    wired.run("tick", env=env, check=True)
    status = json.loads(wired.run("status", "--json", env=env, check=True).stdout)
    assert status["route"] == "plan"  # quota is fine: the pin is ignored, not followed into a dead key
    assert "Key limit exceeded" in status["pin_ignored"]
    assert "pin     ignored:" in wired.run("status", env=env).stdout


def test_pin_until_reset_from_a_weekly_wall(wired):
    """The command the weekly-wall notification prints does what it says."""
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(42.0, seven_day=100.0))
    wired.run("tick", env=POLL, check=True)
    state = wired.state()
    assert state["hot_bucket"] == "seven_day" and "spillover pin openrouter --until-reset" in state["reason"]
    wired.run("pin", "openrouter", "--until-reset", env=POLL, check=True)
    state = wired.state()
    assert state["route"] == "openrouter"
    assert state["pin"]["until"] == state["buckets"]["seven_day"]["resets_at"]


@pytest.mark.parametrize("args, code, message", [
    (["pin", "anthropic"], 1, "anthropic is not in SPILLOVER_TARGETS (openrouter)"),
    (["pin", "openrouter", "--for", "soon"], 2, "duration 'soon'"),
    (["pin", "openrouter", "--until-reset"], 1, "no known reset for five_hour"),
    (["pin", "nowhere"], 2, "invalid choice"),
])
def test_pin_usage_errors(wired, args, code, message):
    proc = wired.run(*args)
    assert proc.returncode == code
    assert message in proc.stderr


@pytest.mark.parametrize("verb", ["pin", "unpin"])
def test_pin_waits_for_a_running_tick_so_the_files_show_the_pin(wired, verb):
    """A tick that read pin.json before the pin changed would publish the old route after `pin`
    reported success: pin/unpin wait for it, then publish. Either way the files must say plan."""
    from spillover.credential import route_from_file

    used = 97.0 if verb == "pin" else 10.0  # pin: spilled, pinned to plan; unpin: plan, pinned to openrouter
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(used))
    wired.run("tick", env=POLL, check=True)
    if verb == "unpin":
        wired.run("pin", "openrouter", "--for", "1h", check=True)
    assert wired.state()["route"] == "openrouter"
    # The slow tick: the usage endpoint answers after 3 s (SPILLOVER_TIMEOUT raised to 6 for it).
    wired.usage.set("/api/oauth/usage", fakes.Reply(json=fakes.usage_body(used), delay=3.0))
    before = len(wired.usage.requests)
    slow = subprocess.Popen([sys.executable, "-m", "spillover", "tick", "--poll"], env=dict(wired.env, SPILLOVER_TIMEOUT="6", **POLL),
                            cwd=wired.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while len(wired.usage.requests) == before and time.monotonic() < deadline:
        time.sleep(0.05)  # until the slow tick is inside its request (it has read pin.json by then)
    assert len(wired.usage.requests) > before, "the slow tick never asked the usage endpoint"
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(used))
    proc = wired.run(*(["pin", "plan", "--for", "1h"] if verb == "pin" else ["unpin"]), env={"SPILLOVER_TIMEOUT": "6"})
    slow.communicate(timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert slow.returncode == 0
    assert route_from_file(str(wired.state_dir)) == "plan", wired.route_env()
    assert wired.state()["route"] == "plan", wired.state()["reason"]
