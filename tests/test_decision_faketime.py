"""Decision v2 as whole processes under libfaketime: the real `tick`, `statusline`, `check` and
`status`, each started at a simulated moment (`faketime -f @…`), a tick every minute around the
events only (a tick process costs ~0.3 s).

(a) a transcript wall with SPILLOVER_SOURCES=statusline,transcripts ends within 5 min of its reset;
(b) a five-hour spill with oauth on returns to the plan within 2 min of the reset;
(c) the token expires while spilled and the spill still ends at the reset;
(d) two config dirs (two accounts) flip only on the primary account's readings;
(e) a Fable wall with five_hour at 40% stays on the plan with the fable alias on Opus, until its reset;
(f) a wall with a later 3% statusline reading of the same window stays a wall.
"""

import json
import time

from spillover.publishers import claude_settings as cs
from tests import fakes
from tests.test_burn_faketime import run_at
from tests.test_statusline import payload
from tests.test_transcripts import chat_records, reset_text, session_file, wall_record, write_lines


def minute_after(seconds):
    return (int(time.time() + seconds) // 60 + 1) * 60


def tick(box, now, **env):
    proc = run_at(box, now, "tick", env=env)
    assert proc.returncode == 0, proc.stderr
    state = box.state()
    assert abs(state["decided_at"] - now) < 30  # the tick ran on the fake clock
    return state


def run_env(box, now, *args, **env):
    return run_at(box, now, *args, env=env)


def statusline(box, now, five_hour, resets_at, config_dir=None):
    body = payload(five_hour, resets_in=resets_at - now, now=now)
    env = {"CLAUDE_CONFIG_DIR": config_dir} if config_dir else {}
    proc = run_at(box, now, "statusline", input=body, env=env)
    assert proc.returncode == 0, proc.stderr


def first_plan(box, start, end, **env):
    """Tick every minute from start to end; the first moment the route is plan (or None)."""
    for now in range(int(start), int(end) + 1, 60):
        if tick(box, now, **env)["route"] == "plan":
            return now
    return None


def test_a_transcript_wall_ends_within_5_minutes_of_its_reset_without_oauth(wired):
    env = {"SPILLOVER_SOURCES": "statusline,transcripts"}
    t0 = minute_after(0)
    reset = t0 + 20 * 60
    write_lines(session_file(wired.claude_dir), chat_records(t0 - 120) + [
        wall_record(f"You've hit your usage limit · resets {reset_text(reset)}", t0 - 30)])
    state = tick(wired, t0, **env)
    assert state["route"] == "openrouter" and state["hot_bucket"] == "unknown", state["reason"]
    assert tick(wired, reset - 60, **env)["route"] == "openrouter"
    back = first_plan(wired, reset, reset + 5 * 60, **env)
    assert back is not None and back - reset <= 5 * 60, wired.state()["reason"]
    assert "reset passed" in wired.state()["reason"]


def test_a_five_hour_spill_with_oauth_returns_within_2_minutes_of_the_reset(wired):
    t0 = minute_after(0)
    reset = t0 + 20 * 60
    wired.write_credentials(expires_in=3 * 3600)
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0, resets_in=reset - t0, now=t0))
    assert tick(wired, t0)["route"] == "openrouter"
    polls = len(wired.usage.hits("/api/oauth/usage"))
    for now in range(reset - 3 * 60, reset + 3 * 60 + 1, 60):
        if now >= reset:  # the new window: the plan answers again
            wired.usage.set("/api/oauth/usage", json=fakes.usage_body(3.0, resets_in=reset + 5 * 3600 - now, now=now))
        state = tick(wired, now)
        if state["route"] == "plan":
            break
    assert state["route"] == "plan", state["reason"]
    assert now - reset <= 2 * 60 and "back to 3%" in state["reason"]
    assert len(wired.usage.hits("/api/oauth/usage")) - polls <= 2  # the confirming poll, not a burst


def test_an_expired_token_while_spilled_still_ends_at_the_reset(wired):
    t0 = minute_after(0)
    reset = t0 + 30 * 60
    # Valid now; expired (with Claude Code's 5-minute margin) 15 minutes before the reset.
    wired.write_credentials(expires_in=t0 - time.time() + 20 * 60)
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0, resets_in=reset - t0, now=t0))
    assert tick(wired, t0)["route"] == "openrouter"
    # The poll 12 minutes before the reset (the last one that leaves room for the confirming one).
    state = tick(wired, reset - 12 * 60)
    assert state["route"] == "openrouter" and state["sources"]["oauth"]["kind"] == "expired"
    back = first_plan(wired, reset - 60, reset + 5 * 60)
    assert back is not None and back - reset <= 3 * 60, wired.state()["reason"]
    assert "no working source reads the plan" in wired.state()["reason"]


def test_two_accounts_flip_only_on_the_primary_accounts_readings(wired):
    primary, other = str(wired.home / ".claude"), str(wired.home / ".claude-work")
    env = {"SPILLOVER_SOURCES": "statusline", "CLAUDE_CONFIG_DIR": f"{primary},{other}"}
    t0 = minute_after(0)
    reset_a, reset_b = t0 + 3 * 3600, t0 + 40 * 60
    routes = []
    for i in range(8):
        now = t0 + i * 60
        statusline(wired, now, 30 + i * 0.5, reset_a, config_dir=primary)  # the primary account: far from its wall
        statusline(wired, now + 20, 96 + (i % 3), reset_b, config_dir=other)  # the other: at its wall
        routes.append(tick(wired, now + 30, **env)["route"])
    assert routes == ["plan"] * 8, routes
    status = run_env(wired, t0 + 8 * 60, "status", **env).stdout
    assert f"other account {other}" in status
    # The primary account's own reading does justify a flip.
    statusline(wired, t0 + 9 * 60, 97, reset_a, config_dir=primary)
    assert tick(wired, t0 + 9 * 60 + 30, **env)["route"] == "openrouter"
    history = [json.loads(line) for line in (wired.state_dir / "history.jsonl").read_text().splitlines()]
    assert [h["route"] for h in history] == ["openrouter"]


def test_a_fable_wall_downshifts_on_the_plan_until_its_reset(wired):
    env = {"SPILLOVER_SOURCES": "statusline,transcripts"}
    wired.run("install", "live", check=True)  # running sessions get the downshift too
    settings = wired.claude_dir / "settings.json"
    t0 = minute_after(0)
    reset = t0 + 30 * 60
    statusline(wired, t0 - 30, 40, t0 + 2 * 3600)
    write_lines(session_file(wired.claude_dir), chat_records(t0 - 120) + [
        wall_record(f"You've hit your Fable limit · resets {reset_text(reset)}", t0 - 20)])
    state = tick(wired, t0, **env)
    assert (state["route"], state["status"]) == ("plan", "plan"), state["reason"]
    route_env = wired.route_env()
    assert "export ANTHROPIC_DEFAULT_FABLE_MODEL='claude-opus-5-5'" in route_env
    assert "export SPILLOVER_DOWNSHIFT='fable>opus'" in route_env and "export SPILLOVER_ROUTE='plan'" in route_env
    live_env = json.loads(settings.read_text())["env"]
    assert live_env["ANTHROPIC_DEFAULT_FABLE_MODEL"] == "claude-opus-5-5" and live_env["SPILLOVER_ROUTE"] == "plan"
    assert live_env.get("ANTHROPIC_BASE_URL", "") == "" and "apiKeyHelper" not in json.loads(settings.read_text())
    fish = (wired.state_dir / "route.fish").read_text()
    assert "ANTHROPIC_DEFAULT_FABLE_MODEL 'claude-opus-5-5'" in fish
    check = json.loads(run_env(wired, t0 + 10, "check", "--json", **env).stdout)
    assert check["exit"] == 0 and check["downshift"] == "fable>opus"
    status = run_env(wired, t0 + 10, "status", **env).stdout
    assert "downshift fable>opus: ANTHROPIC_DEFAULT_FABLE_MODEL=claude-opus-5-5" in status
    assert "full model id" in status
    line = run_at(wired, t0 + 10, "statusline", input=payload(40, resets_in=7000, now=t0 + 10)).stdout
    assert "plan ↓fable>opus" in line
    history = [json.loads(line) for line in (wired.state_dir / "history.jsonl").read_text().splitlines()]
    assert history[-1]["downshift"] == "fable>opus" and history[-1]["route"] == "plan"
    # At its reset: no override, one history line saying so.
    state = tick(wired, reset + 60, **env)
    assert state["route"] == "plan" and "downshift" not in state["details"]
    assert "ANTHROPIC_DEFAULT_FABLE_MODEL" in wired.route_env().split("unset", 1)[1]
    assert "SPILLOVER_DOWNSHIFT" not in wired.route_env().split("unset", 1)[0]
    history = [json.loads(line) for line in (wired.state_dir / "history.jsonl").read_text().splitlines()]
    assert history[-1]["downshift"] is None and history[-1]["downshift_before"] == "fable>opus"
    # In settings.json the alias is "" first (a running session keeps a removed key's value), then gone.
    assert json.loads(settings.read_text())["env"]["ANTHROPIC_DEFAULT_FABLE_MODEL"] == ""
    tick(wired, reset + 60 + cs.SETTLE_SECONDS + 60, **env)  # a whole minute: each faketime clock starts at process start
    assert "ANTHROPIC_DEFAULT_FABLE_MODEL" not in json.loads(settings.read_text()).get("env", {})


def test_a_wall_stays_a_wall_after_a_later_low_reading_of_its_window(wired):
    env = {"SPILLOVER_SOURCES": "statusline,transcripts"}
    t0 = minute_after(0)
    reset = t0 + 60 * 60
    write_lines(session_file(wired.claude_dir), chat_records(t0 - 120) + [
        wall_record(f"You've hit your 5-hour limit · resets {reset_text(reset)}", t0 - 20)])
    assert tick(wired, t0, **env)["route"] == "openrouter"
    for i in range(1, 4):
        now = t0 + i * 60
        statusline(wired, now - 10, 3, reset)  # a meter that lags: 3% of the same window
        state = tick(wired, now, **env)
        assert state["route"] == "openrouter", state["reason"]
        assert state["buckets"]["five_hour"]["wall"] is True and state["buckets"]["five_hour"]["percent"] == 100
