"""Running sessions (spillover/live.py, live_watch.py, sources/stopfailure.py): the StopFailure
hook's attribution, pushed ticks' environment and pending mark, install/uninstall live, exclude,
the statusline's actions and doctor's precedence lines. The real client: tests/e2e/test_live.py."""

import io
import json
import os
import time
from pathlib import Path

import pytest

from spillover import config as config_mod
from spillover import live, live_watch
from spillover.publishers import claude_settings as cs
from spillover.sources.base import SourceContext
from spillover.sources.stopfailure import READER
from tests.conftest import OR_KEY

FIXTURES = Path(__file__).parent / "fixtures" / "stopfailure"


def payload(version, name):
    return json.loads((FIXTURES / version / f"{name}.json").read_text())


@pytest.mark.parametrize("version", ["2.1.197", "2.1.332"])
def test_a_plan_wall_is_recorded_and_a_transient_limit_is_not(sandbox, version):
    state = str(sandbox.state_dir)
    now = time.time()
    assert live.stop_failure(payload(version, "five_hour"), {}, state, now) is True
    assert live.stop_failure(payload(version, "transient"), {}, state, now) is False
    walls = [json.loads(line) for line in (sandbox.state_dir / "walls.jsonl").read_text().splitlines()]
    assert len(walls) == 1 and walls[0]["kind"] == "wall" and walls[0]["bucket"] == "five_hour" and walls[0]["route"] == "plan"
    assert walls[0]["resets_at"] and walls[0]["resets_at"] > now - 86400


def test_billing_or_auth_on_a_target_marks_it_unhealthy(sandbox, wired):
    state = str(sandbox.state_dir)
    now = time.time()
    assert live.stop_failure({"error": "authentication_failed", "last_assistant_message": "Invalid API key"},
                             {"SPILLOVER_ROUTE": "openrouter"}, state, now)
    cfg = config_mod.load()
    result = READER.read(SourceContext(cfg, now + 1, state))
    assert result.samples == [] and "openrouter" in result.info["unhealthy_targets"]
    # The tick: the chain moves on (openrouter is the only target here: blocked, not spilled to it).
    wired.usage.set("/api/oauth/usage", json=__import__("tests.fakes", fromlist=["x"]).usage_body(97.0))
    wired.run("tick", "--poll", check=True)
    assert wired.state()["route"] != "openrouter"


def test_a_wall_is_a_sample_until_its_reset(sandbox):
    state = str(sandbox.state_dir)
    now = time.time()
    live.stop_failure(payload("2.1.332", "five_hour"), {"SPILLOVER_ROUTE": ""}, state, now)
    cfg = config_mod.load(environ={}, path="/nonexistent")
    wall = json.loads((sandbox.state_dir / "walls.jsonl").read_text())
    got = READER.read(SourceContext(cfg, now + 1, state)).samples
    assert [(s.bucket, s.percent, s.wall) for s in got] == [("five_hour", 100.0, True)]
    assert READER.read(SourceContext(cfg, wall["resets_at"] + 1, state)).samples == []


def test_the_hook_never_fails_on_garbage(sandbox):
    for text in ("", "not json", "[1,2]", json.dumps({"error": 5, "last_assistant_message": None})):
        assert live.hook_stop_failure([], environ={}, stdin=io.StringIO(text)) == 0


def test_a_pushed_tick_gets_the_scheduled_environment_not_the_sessions(sandbox):
    state = str(sandbox.state_dir)
    session = {"PATH": "/usr/bin", "HOME": str(sandbox.home), "CLAUDE_CONFIG_DIR": "/project/.claude-other",
               "OPENROUTER_API_KEY": "sk-or-v1-session", "ANTHROPIC_BASE_URL": "http://evil", "SPILLOVER_ROUTE": "openrouter",
               "CLAUDECODE": "1", "XDG_STATE_HOME": "/x"}
    env = live.tick_env(state, session)
    assert not [k for k in env if k.startswith(("ANTHROPIC_", "OPENROUTER_", "CLAUDE")) or k == "SPILLOVER_ROUTE"], env
    assert env["SPILLOVER_STATE_DIR"] == state
    sandbox.state_dir.mkdir(parents=True, exist_ok=True)
    (sandbox.state_dir / "live.json").write_text(json.dumps({"env": {"CLAUDE_CONFIG_DIR": "/home/me/.claude"}, "command": ["/bin/true"]}))
    assert live.tick_env(state, session)["CLAUDE_CONFIG_DIR"] == "/home/me/.claude"  # the scheduler's own


def test_a_tick_that_finds_the_lock_held_leaves_a_pending_mark_honoured_by_the_running_one(wired, monkeypatch):
    from spillover import fsutil, tick

    state = str(wired.state_dir)
    cfg = config_mod.load()
    runs = []
    real = tick._run_locked

    def counting(*args):
        runs.append(1)
        if len(runs) == 1:  # while the first tick runs, a pushed one arrives
            with pytest.raises(tick.Busy):
                tick.run(cfg)
            assert os.path.exists(os.path.join(state, live.PENDING))
        return real(*args)

    monkeypatch.setattr(tick, "_run_locked", counting)
    fsutil.ensure_state_dir(state)
    tick.run(cfg)
    assert len(runs) == 2 and not os.path.exists(os.path.join(state, live.PENDING))


def settings_of(box):
    return json.loads((box.claude_dir / "settings.json").read_text())


def test_install_live_merges_hooks_and_uninstall_restores_the_file(wired):
    wired.claude_dir.mkdir(parents=True, exist_ok=True)
    mine = {"hooks": {"StopFailure": [{"matcher": "rate_limit", "hooks": [{"type": "command", "command": "my-notifier"}]}],
                      "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "check"}]}]},
            "env": {"ANTHROPIC_DEFAULT_OPUS_MODEL": "my-own-opus"}, "theme": "dark"}
    (wired.claude_dir / "settings.json").write_text(json.dumps(mine))
    wired.run("install", "live", check=True)
    data = settings_of(wired)
    stop = data["hooks"]["StopFailure"]
    assert stop[0] == mine["hooks"]["StopFailure"][0]
    assert [g["matcher"] for g in stop[1:]] == list(live.STOP_FAILURE_MATCHERS)
    assert all("hook stop-failure --config" in g["hooks"][0]["command"] for g in stop[1:])
    assert "hook prompt" in data["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"]
    # Re-running replaces spillover's entries (here: an older install's path), never duplicates them.
    data["hooks"]["UserPromptSubmit"][0]["hooks"][0]["command"] = "/old/checkout/.venv/bin/spillover hook prompt"
    (wired.claude_dir / "settings.json").write_text(json.dumps(data))
    wired.run("install", "live", check=True)
    again = settings_of(wired)
    assert len(again["hooks"]["UserPromptSubmit"]) == 1 and "/old/checkout" not in json.dumps(again)

    # A spill, then uninstall: the plan values, the wait, then nothing of spillover's is left.
    wired.usage.set("/api/oauth/usage", json=__import__("tests.fakes", fromlist=["x"]).usage_body(97.0))
    wired.run("tick", "--poll", check=True)
    spilled = settings_of(wired)
    assert spilled["env"]["SPILLOVER_ROUTE"] == "openrouter" and cs.helper_target(spilled["apiKeyHelper"]) == "openrouter"
    assert OR_KEY not in json.dumps(spilled)
    started = time.time()
    out = wired.run("uninstall", "live", check=True).stdout
    assert time.time() - started >= cs.SETTLE_SECONDS - 0.5, out  # nobody reported: the full wait
    assert settings_of(wired) == mine, settings_of(wired)


def test_the_plan_publish_of_the_tick_is_phase_one_then_two(wired):
    from spillover import publishers
    from spillover.publishers.base import RouteView

    wired.run("install", "live", check=True)
    cfg = config_mod.load()
    state = str(wired.state_dir)
    live.publish_route(state, "openrouter", cfg=cfg, only_settings=True)
    view = RouteView("plan", tuple(__import__("spillover.targets", fromlist=["x"]).route_env("plan", cfg)))
    publishers.publish_all(state, view)
    data = settings_of(wired)
    assert data["env"]["ANTHROPIC_BASE_URL"] == "" and cs.helper_target(data["apiKeyHelper"]) == "openrouter"
    live.publish_view(state, view, now=time.time() + cs.SETTLE_SECONDS + 1)
    assert "apiKeyHelper" not in settings_of(wired) and "env" not in settings_of(wired)


def test_live_off_writes_nothing(wired):
    wired.run("install", "live", check=True)
    with wired.config_file.open("a") as handle:
        handle.write("SPILLOVER_LIVE='off'\n")
    before = (wired.claude_dir / "settings.json").read_text()
    wired.usage.set("/api/oauth/usage", json=__import__("tests.fakes", fromlist=["x"]).usage_body(97.0))
    wired.run("tick", "--poll", check=True)
    assert wired.state()["route"] == "openrouter"
    assert (wired.claude_dir / "settings.json").read_text() == before


def test_exclude_writes_the_local_override_and_lists_it(sandbox, tmp_path):
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.local.json").write_text(json.dumps({"permissions": {"allow": ["Read"]}}))
    sandbox.run("exclude", str(project), check=True)
    local = json.loads((project / ".claude" / "settings.local.json").read_text())
    assert local["apiKeyHelper"] == "" and local["env"]["ANTHROPIC_BASE_URL"] == "" and local["permissions"] == {"allow": ["Read"]}
    assert str(project) in sandbox.run("exclude", "--list", check=True).stdout
    assert str(project) in sandbox.config_file.read_text()
    sandbox.run("exclude", "--remove", str(project), check=True)
    assert json.loads((project / ".claude" / "settings.local.json").read_text()) == {"permissions": {"allow": ["Read"]}}
    assert "no project is excluded" in sandbox.run("exclude", "--list", check=True).stdout


def test_the_guard_lets_an_excluded_session_through(sandbox, tmp_path):
    from spillover import guard_hook

    project = tmp_path / "proj"
    project.mkdir()
    sandbox.run("exclude", str(project), check=True)
    user = sandbox.claude_dir / "settings.json"
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text(json.dumps({"apiKeyHelper": "/usr/bin/spillover credential --target openrouter", "env": {"SPILLOVER_ROUTE": "openrouter"}}))
    environ = {"CLAUDE_CONFIG_DIR": str(sandbox.claude_dir), "SPILLOVER_ROUTE": "plan", "ANTHROPIC_BASE_URL": ""}
    files = guard_hook.settings_files(str(project), environ, managed="/nonexistent")
    assert guard_hook.problem(environ, files, str(sandbox.config_file)) == ""


def test_doctor_names_files_that_beat_the_user_settings(wired, tmp_path, monkeypatch):
    project = tmp_path / "proj"
    (project / ".claude").mkdir(parents=True)
    (project / ".claude" / "settings.json").write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": "http://x"}, "apiKeyHelper": "mine.sh"}))
    wired.claude_dir.mkdir(parents=True, exist_ok=True)
    (wired.claude_dir / ".claude.json").write_text(json.dumps({"projects": {str(project): {}}}))
    managed = tmp_path / "etc"
    (managed / "managed-settings.d").mkdir(parents=True)
    (managed / "managed-settings.json").write_text(json.dumps({"disableAllHooks": True}))
    (managed / "managed-settings.d" / "10-x.json").write_text(json.dumps({"env": {"ANTHROPIC_DEFAULT_OPUS_MODEL": "x"}}))
    wired.run("install", "live", check=True)
    out = wired.run("doctor", env={live.MANAGED_DIR_ENV: str(managed)}).stdout
    assert f"project settings {project}/.claude/settings.json set ANTHROPIC_BASE_URL, apiKeyHelper (its own)" in out, out
    assert "disableAllHooks" in out and "10-x.json set ANTHROPIC_DEFAULT_OPUS_MODEL" in out, out
    assert "StopFailure hook in" in out and "runs" in out


def test_doctor_says_when_a_command_spillover_wrote_is_gone(wired):
    wired.run("install", "live", check=True)
    data = settings_of(wired)
    data["hooks"]["StopFailure"][0]["hooks"][0]["command"] = "/gone/bin/spillover hook stop-failure --config x --state-dir y"
    (wired.claude_dir / "settings.json").write_text(json.dumps(data))
    out = wired.run("doctor").stdout
    assert "which no longer exists; fix: spillover install live" in out, out


# --- the statusline's actions (live_watch) ------------------------------------------------------


def watch_env(box, route):
    return {"CLAUDE_CONFIG_DIR": str(box.claude_dir), "SPILLOVER_ROUTE": route, "CLAUDE_CODE_SESSION_ID": "s1"}


def test_statusline_heals_a_session_left_on_an_old_route(wired, monkeypatch):
    wired.run("install", "live", check=True)
    state = str(wired.state_dir)
    cfg = config_mod.load()
    live.publish_route(state, "openrouter", cfg=cfg, only_settings=True)
    done = []
    monkeypatch.setattr(live, "statusline_action", lambda action, *a: done.append(action) or action)
    now = time.time()
    assert live_watch.watch(state, {}, {}, now, watch_env(wired, "openrouter")) is None  # it follows: nothing
    assert live_watch.watch(state, {}, {}, now + 1, watch_env(wired, "plan")) is None  # not for long yet
    assert live_watch.watch(state, {}, {}, now + 1 + live_watch.HEAL_AFTER + 0.5, watch_env(wired, "plan")) == "heal"
    assert live_watch.label(state, watch_env(wired, "plan")) == "plan (published openrouter)"


def test_heal_rewrites_the_file_and_is_rate_limited(wired):
    wired.run("install", "live", check=True)
    state = str(wired.state_dir)
    live.publish_route(state, "openrouter", cfg=config_mod.load(), only_settings=True)
    path = wired.claude_dir / "settings.json"
    before, ino = path.read_text(), path.stat().st_ino
    now = time.time()
    assert live.statusline_action("heal", state, now) == "heal"
    assert path.read_text() == before and path.stat().st_ino != ino  # written again, same content
    assert live.statusline_action("heal", state, now + 1) is None  # machine-wide stamp


def test_watchdog_restores_the_plan_when_the_decision_is_stale_past_the_reset(wired):
    wired.run("install", "live", check=True)
    state = str(wired.state_dir)
    live.publish_route(state, "openrouter", cfg=config_mod.load(), only_settings=True)
    now = time.time()
    stale = {"route": "openrouter", "decided_at": now - 600, "stale_after": 300, "hot_bucket": "five_hour",
             "buckets": {"five_hour": {"percent": 97, "resets_at": now - 5}}}
    fresh = dict(stale, decided_at=now - 10)
    assert live_watch.watch(state, fresh, {}, now, watch_env(wired, "openrouter")) is None
    assert live_watch.watch(state, stale, {}, now, watch_env(wired, "openrouter")) == "watchdog"
    assert settings_of(wired)["env"]["SPILLOVER_ROUTE"] == "plan"
    assert "route: plan" in wired.route_env() or "SPILLOVER_ROUTE=plan" in wired.route_env()


def test_phase_two_follows_every_session_reporting_the_plan(wired):
    wired.run("install", "live", check=True)
    state = str(wired.state_dir)
    cfg = config_mod.load()
    live.publish_route(state, "openrouter", cfg=cfg, only_settings=True)
    now = time.time()
    live.publish_route(state, "plan", cfg=cfg, only_settings=True, now=now)
    assert settings_of(wired)["env"]["SPILLOVER_ROUTE"] == "plan"
    other = dict(watch_env(wired, "openrouter"), CLAUDE_CODE_SESSION_ID="s2")
    live_watch.watch(state, {}, {}, now + 0.5, other)  # another session has not applied it yet
    assert live_watch.watch(state, {}, {}, now + 1.5, watch_env(wired, "plan")) is None
    assert "apiKeyHelper" in settings_of(wired)
    live_watch.watch(state, {}, {}, now + 1.6, dict(other, SPILLOVER_ROUTE="plan"))
    assert "apiKeyHelper" not in settings_of(wired) and "env" not in settings_of(wired)


def test_a_reading_over_the_threshold_pushes_one_tick_per_half_minute(wired, monkeypatch):
    wired.run("install", "live", check=True)
    state = str(wired.state_dir)
    spawned = []
    monkeypatch.setattr(live, "spawn_tick", lambda *a, **k: spawned.append(1))
    st = {"route": "plan", "thresholds": {"threshold": 95}}
    now = time.time()
    assert live_watch.watch(state, st, {"five_hour": (80.0, None)}, now, watch_env(wired, "plan")) is None
    assert live_watch.watch(state, st, {"five_hour": (96.0, None)}, now, watch_env(wired, "plan")) == "push"
    assert live_watch.watch(state, st, {"five_hour": (97.0, None)}, now + 5, watch_env(wired, "plan")) is None
    assert live_watch.watch(state, st, {"five_hour": (97.0, None)}, now + live.PUSH_EVERY + 1, watch_env(wired, "plan")) == "push"
    assert len(spawned) == 2


def test_settle_heal_and_phase_two_keep_the_downshift_and_end_it_through_empty(wired):
    """Every republish outside the tick (settle, heal, the statusline's phase 2) carries the last
    decision's downshift; when it ended, sessions reporting the plan do not skip the "" step."""
    from spillover.state import State

    wired.run("install", "live", check=True)
    state = str(wired.state_dir)
    cfg = config_mod.load()
    shift = {"from": "fable", "to": "opus", "model": "claude-opus-5-5", "bucket": "seven_day_fable",
             "resets_at": time.time() + 3600, "variable": "ANTHROPIC_DEFAULT_FABLE_MODEL"}
    State(route="plan", decided_at=time.time(), details={"downshift": [shift]}).save(state)
    now = time.time()
    live.publish_route(state, "plan", cfg=cfg, only_settings=True, now=now)  # what settle and install live do
    assert settings_of(wired)["env"]["ANTHROPIC_DEFAULT_FABLE_MODEL"] == "claude-opus-5-5"
    live.publish_route(state, "plan", cfg=cfg, only_settings=True, now=now + cs.SETTLE_SECONDS + 1)
    assert settings_of(wired)["env"] == {"ANTHROPIC_DEFAULT_FABLE_MODEL": "claude-opus-5-5", "SPILLOVER_ROUTE": "plan"}
    assert live.statusline_action("heal", state, now + 10) == "heal"
    assert settings_of(wired)["env"]["ANTHROPIC_DEFAULT_FABLE_MODEL"] == "claude-opus-5-5"
    # The downshift ends (the tick decided the plan without it): "" first.
    State(route="plan", decided_at=time.time(), details={}).save(state)
    live.publish_route(state, "plan", cfg=cfg, only_settings=True, now=now + 20)
    assert settings_of(wired)["env"]["ANTHROPIC_DEFAULT_FABLE_MODEL"] == ""
    live_watch.watch(state, {}, {}, now + 21, watch_env(wired, "plan"))  # every session reports the plan
    assert live.statusline_action("phase2", state, now + 21) == "phase2"
    # Not removed before sessions applied "", and still "" for the alias alone (no "" base URL).
    assert settings_of(wired)["env"] == {"ANTHROPIC_DEFAULT_FABLE_MODEL": "", "SPILLOVER_ROUTE": "plan"}
    live.publish_route(state, "plan", cfg=cfg, only_settings=True, now=now + 20 + cs.SETTLE_SECONDS + 1)
    assert "env" not in settings_of(wired)


def test_the_plans_phase_two_records_that_it_dropped_the_helper(wired):
    """The prompt guard holds a prompt for the second after spillover's helper left settings.json
    (guard_hook.helper_removed_at): live-status.json says when that write happened."""
    wired.run("install", "live", check=True)
    state = str(wired.state_dir)
    cfg = config_mod.load()
    now = time.time()
    live.publish_route(state, "openrouter", cfg=cfg, only_settings=True, now=now)
    live.publish_route(state, "plan", cfg=cfg, only_settings=True, now=now + 1)
    status = json.loads((wired.state_dir / live.STATUS_JSON).read_text())
    assert [(e["phase"], e["dropped_helper"]) for e in status.values()] == [(1, False)]
    live.publish_route(state, "plan", cfg=cfg, only_settings=True, now=now + 1 + cs.SETTLE_SECONDS)
    status = json.loads((wired.state_dir / live.STATUS_JSON).read_text())
    assert [(e["phase"], e["dropped_helper"], e["at"]) for e in status.values()] == [(2, True, now + 1 + cs.SETTLE_SECONDS)]
