"""Notifications (issue 5): once per crossing, through a real hook command and a fake
`notify-send` on PATH that records its arguments; never a secret; never a failed tick."""

import json
import logging
import os
import sys
import time

import pytest

from spillover import config, notify, targets
from tests import fakes
from tests.conftest import ANT_KEY, OR_KEY

CHAIN = {"SPILLOVER_TARGETS": "openrouter,anthropic", "SPILLOVER_POLL_MINUTES": "0"}


class Recorder:
    """A fake notify-send and a hook command, both writing what they got to files in the sandbox."""

    def __init__(self, root):
        self.bin = root / "fake bin"
        self.bin.mkdir()
        self.desktop_log = root / "notify-send.jsonl"
        self.hook_log = root / "hook out" / "events.jsonl"
        self.hook_log.parent.mkdir()
        self.hook_env = root / "hook-env.txt"
        script = self.bin / "notify-send"
        script.write_text(f"#!{sys.executable}\nimport json, sys\n"
                          f"open({str(self.desktop_log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
        script.chmod(0o755)
        hook = self.bin / "hook"
        # Appends stdin (one JSON object) to the file named by its argument, and its environment.
        hook.write_text(f'#!/bin/sh\ncat >> "$1"\nenv > {str(self.hook_env)!r}\n')
        hook.chmod(0o755)
        self.command = f"'{hook}' '{self.hook_log}'"  # quoted: paths with spaces, split without a shell

    def env(self, sandbox, **extra):
        return {"PATH": f"{self.bin}:{sandbox.env['PATH']}", "SPILLOVER_NOTIFY": "on",
                "SPILLOVER_NOTIFY_COMMAND": self.command, **extra}

    def events(self):
        if not self.hook_log.exists():
            return []
        return [json.loads(line) for line in self.hook_log.read_text().splitlines()]

    def desktop(self):
        if not self.desktop_log.exists():
            return []
        return [json.loads(line) for line in self.desktop_log.read_text().splitlines()]


@pytest.fixture
def recorder(tmp_path):
    return Recorder(tmp_path)


def tick(sandbox, env):
    return sandbox.run("tick", env=env, check=True)


def kinds(recorder):
    return [e["event"] for e in recorder.events()]


def test_blocked_notifies_once_not_every_tick(wired, recorder):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", status=403, json=fakes.KEY_LIMIT_403)
    env = recorder.env(wired, **CHAIN)  # anthropic is in the chain but has no key
    for _ in range(3):
        tick(wired, env)
    assert wired.run("check", "-q", env=env).returncode == 4
    [event] = recorder.events()
    assert event["event"] == "blocked"
    assert (event["from"], event["to"], event["route"]) == ("plan", "blocked", "blocked")
    assert "Key limit exceeded" in event["message"] and "SPILLOVER_ANTHROPIC_API_KEY is not set" in event["message"]
    assert event["reason"] == wired.state()["reason"] and isinstance(event["at"], float)
    [args] = recorder.desktop()
    assert args[:3] == ["--app-name=spillover", "--urgency=critical", "--"]
    assert args[3] == event["title"] and args[4] == event["message"]

    # Out of blocked and back in: a new crossing, a new notification.
    wired.openrouter.set("/api/v1/key", json=fakes.key_body())
    tick(wired, env)
    wired.openrouter.set("/api/v1/key", status=403, json=fakes.KEY_LIMIT_403)
    tick(wired, env)
    tick(wired, env)
    assert kinds(recorder) == ["blocked", "flip", "blocked"]
    assert len(recorder.desktop()) == 3


def test_flip_out_and_back(wired, recorder):
    env = recorder.env(wired, SPILLOVER_POLL_MINUTES="0")
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired, env)
    tick(wired, env)
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(10.0, resets_in=5 * 3600))  # after the reset
    tick(wired, env)
    tick(wired, env)
    out, back = recorder.events()
    assert (out["event"], out["from"], out["to"], out["title"]) == ("flip", "plan", "openrouter", "spillover: now on openrouter")
    assert "five_hour 96% ≥ 95%" in out["message"]
    assert (back["event"], back["from"], back["to"], back["title"]) == ("flip", "openrouter", "plan", "spillover: back on the plan")
    assert [a[1] for a in recorder.desktop()] == ["--urgency=normal"] * 2


def test_notify_off_silences_desktop_and_hook_without_replaying_later(wired, recorder):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", status=403, json=fakes.KEY_LIMIT_403)
    off = recorder.env(wired, SPILLOVER_NOTIFY="off", **CHAIN)
    proc = tick(wired, off)
    assert "notify blocked" in proc.stderr  # the log still says it
    assert wired.state()["route"] == "blocked"
    assert recorder.events() == [] and recorder.desktop() == []
    tick(wired, recorder.env(wired, **CHAIN))  # on again, still blocked: nothing new to say
    assert recorder.events() == [] and recorder.desktop() == []


def test_low_budget_fires_once_per_crossing(wired, recorder):
    env = recorder.env(wired, SPILLOVER_POLL_MINUTES="0", SPILLOVER_LOW_BALANCE="5")
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=4.0))  # over the $3.60 floor of one Fable turn
    for _ in range(3):
        tick(wired, env)
    assert kinds(recorder) == ["flip", "low_budget"]
    low = recorder.events()[1]
    assert (low["target"], low["remaining"], low["low_balance"]) == ("openrouter", 4.0, 5.0)
    assert "$4.00 is under $5.00" in low["message"]
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=5.5))  # above the floor, not clearly: no re-arm
    tick(wired, env)
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=4.0))
    tick(wired, env)
    assert kinds(recorder) == ["flip", "low_budget"]
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=20.0))  # topped up: re-armed
    tick(wired, env)
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=4.5))
    tick(wired, env)
    tick(wired, env)
    assert kinds(recorder) == ["flip", "low_budget", "low_budget"]


def test_weekly_wall_with_default_policy_notifies_once_and_does_not_flip(wired, recorder):
    env = recorder.env(wired, SPILLOVER_POLL_MINUTES="0")
    body = fakes.usage_body(42.0, seven_day=100.0)
    wired.usage.set("/api/oauth/usage", json=body)
    for _ in range(3):
        tick(wired, env)
    [event] = recorder.events()
    assert event["event"] == "weekly_wall" and event["bucket"] == "seven_day"
    resets_at = wired.state()["buckets"]["seven_day"]["resets_at"]
    assert abs(event["resets_at"] - resets_at) < 60
    assert event["pin_command"] == "spillover pin openrouter --until-reset"
    assert "`" not in event["pin_command"] and "spillover pin openrouter --until-reset" in event["message"]
    assert time.strftime("%Y-%m-%d", time.localtime(resets_at)) in event["message"]
    assert len(recorder.desktop()) == 1
    # No flip: nothing in route.env routes Claude Code away from the plan.
    state = wired.state()
    assert state["route"] not in targets.names()
    text = wired.route_env()
    assert "export ANTHROPIC" not in text and "export CLAUDE_CODE" not in text
    assert "unset" in text and "ANTHROPIC_AUTH_TOKEN" in text.split("unset", 1)[1]
    assert wired.openrouter.hits("/api/v1/messages", method="POST") == []

    # The next weekly cycle is a new wall: one more notification.
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(42.0, seven_day=100.0, now=time.time() + 7 * 86400))
    tick(wired, env)
    tick(wired, env)
    assert kinds(recorder) == ["weekly_wall", "weekly_wall"]


@pytest.mark.parametrize("weekly, route, events", [("spill", "openrouter", ["flip"]), ("ignore", "plan", [])])
def test_weekly_wall_other_policies(wired, recorder, weekly, route, events):
    env = recorder.env(wired, SPILLOVER_POLL_MINUTES="0", SPILLOVER_WEEKLY=weekly)
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(42.0, seven_day=100.0))
    tick(wired, env)
    tick(wired, env)
    assert wired.state()["route"] == route
    assert kinds(recorder) == events


def test_no_secret_reaches_a_notification_or_the_hook(wired, recorder):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    # The server echoes the key in its error; the guard's reason goes into the blocked message.
    wired.openrouter.set("/api/v1/key", status=401, json=fakes.error_body(401, f"User not found: {OR_KEY}"))
    env = recorder.env(wired, OPENROUTER_API_KEY=OR_KEY, SPILLOVER_ANTHROPIC_API_KEY="", **CHAIN)
    proc = tick(wired, env)
    assert kinds(recorder) == ["blocked"]
    seen = recorder.hook_log.read_text() + recorder.desktop_log.read_text() + proc.stderr
    assert "User not found" in seen and "sk-or-v1-…c890" in seen
    assert OR_KEY not in seen
    hook_env = recorder.hook_env.read_text()
    assert "SPILLOVER_NOTIFY=on" in hook_env and OR_KEY not in hook_env  # the hook does not inherit keys


def test_a_failing_hook_never_fails_the_tick(wired, recorder):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    env = recorder.env(wired, SPILLOVER_NOTIFY_COMMAND="sh -c 'echo hook broke >&2; exit 3'")
    proc = tick(wired, env)
    assert wired.state()["route"] == "openrouter"
    assert "SPILLOVER_NOTIFY_COMMAND exited 3 (hook broke)" in proc.stderr
    proc = tick(wired, recorder.env(wired, SPILLOVER_NOTIFY_COMMAND=str(recorder.bin / "no-such-hook")))
    assert proc.returncode == 0


# --- in process: delivery edges ---------------------------------------------------------------


def _cfg(sandbox, **env):
    return config.load(dict(sandbox.env, **env))


def _flip_states(route="openrouter"):
    old = {"route": "plan", "notified": {}}
    new = {"route": route, "status": "spilled", "reason": "five_hour 96% ≥ 95%", "details": {"targets": []}, "buckets": {}}
    return old, new


def test_hook_past_its_timeout_is_killed(sandbox, tmp_path, monkeypatch):
    monkeypatch.setattr(notify, "TIMEOUT", 3)  # time for sh to start and write its pid, even on a loaded machine
    monkeypatch.setenv("PATH", "/usr/bin:/bin")  # no notify-send here
    pidfile = tmp_path / "pid"
    cfg = _cfg(sandbox, SPILLOVER_NOTIFY="on", SPILLOVER_NOTIFY_COMMAND=f"sh -c 'echo $$ > {pidfile}; exec sleep 30'")
    memory = notify.dispatch(cfg, *_flip_states(), None, 1000.0)
    assert memory["last"]["event"] == "flip"
    pid = int(pidfile.read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_dispatch_never_raises_on_damaged_state(sandbox, caplog):
    cfg = _cfg(sandbox)
    bad_new = {"route": "blocked", "details": {"targets": ["x", {"name": "openrouter", "remaining": "lots"}],
                                               "weekly_walls": ["seven_day"]}, "buckets": {"seven_day": None}}
    with caplog.at_level(logging.ERROR, logger="spillover"):
        memory = notify.dispatch(cfg, {"notified": {"weekly_wall": "garbage"}, "route": 7}, bad_new, None, 1.0)
    assert isinstance(memory, dict)


def test_osascript_on_macos_gets_texts_as_arguments(sandbox, recorder, monkeypatch):
    fake = recorder.bin / "osascript"
    fake.write_text((recorder.bin / "notify-send").read_text())
    fake.chmod(0o755)
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setenv("PATH", str(recorder.bin))
    title, message = 'it\'s "quoted" & $(odd)', "line with `backticks` and \\"
    cfg = _cfg(sandbox, SPILLOVER_NOTIFY="on")
    notify._deliver(cfg, {"event": "flip", "title": title, "message": message})
    [args] = recorder.desktop()
    assert args[-2:] == [title, message]
    assert args[:6] == ["-e", "on run argv", "-e", "display notification (item 2 of argv) with title (item 1 of argv)", "-e", "end run"]


def test_no_notifier_means_log_only(sandbox, monkeypatch, caplog):
    monkeypatch.setenv("PATH", "/nonexistent")
    cfg = _cfg(sandbox, SPILLOVER_NOTIFY="on", SPILLOVER_ANTHROPIC_API_KEY=ANT_KEY)
    assert notify.desktop_command("t", "m") is None
    old, new = _flip_states("anthropic")
    new["reason"] = f"pinned; key {ANT_KEY}"
    with caplog.at_level(logging.INFO, logger="spillover"):
        notify.dispatch(cfg, old, new, None, 5.0)
    assert "notify flip: spillover: now on anthropic" in caplog.text
    assert ANT_KEY not in caplog.text
