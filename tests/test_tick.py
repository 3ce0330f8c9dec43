"""The core loop end to end: `python -m spillover tick/check/status/env` as subprocesses against
fake usage and OpenRouter servers on loopback, in a sandboxed HOME."""

import fcntl
import json
import os
import stat
import subprocess
import time

import pytest

from tests import fakes
from tests.conftest import OAUTH_TOKEN, OR_KEY

MANAGED = (
    "ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_DEFAULT_FABLE_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL", "CLAUDE_CODE_SUBAGENT_MODEL",
)
POLL_NOW = {"SPILLOVER_POLL_MINUTES": "0"}  # every tick may read the usage endpoint


def tick(sb, **env):
    proc = sb.run("tick", env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def check(sb):
    return sb.run("check").returncode


def status_json(sb):
    proc = sb.run("status", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_cool_plan_stays_on_plan(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(42.0))
    tick(wired)
    assert check(wired) == 0
    assert "# route: plan" in wired.route_env()
    state = wired.state()
    assert state["route"] == "plan" and state["buckets"]["five_hour"]["percent"] == 42.0
    assert state["buckets"]["five_hour"]["source"] == "oauth"


def test_wall_with_budget_spills_to_openrouter(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired)
    assert check(wired) == 3
    text = wired.route_env()
    assert "export SPILLOVER_ROUTE='openrouter'" in text
    assert f"export ANTHROPIC_BASE_URL='{wired.openrouter.url}/api'" in text
    assert "export ANTHROPIC_API_KEY=''" in text
    assert "five_hour 96% ≥ 95%" in text
    # the exact headers of design §4.1
    request = wired.usage.hits("/api/oauth/usage")[-1]
    assert request["headers"]["Authorization"] == f"Bearer {OAUTH_TOKEN}"
    assert request["headers"]["anthropic-beta"] == "oauth-2025-04-20"
    assert request["headers"]["User-Agent"].startswith("claude-code/")
    assert request["headers"]["Accept"] == "application/json"
    assert wired.openrouter.hits("/api/v1/key")[-1]["headers"]["Authorization"] == f"Bearer {OR_KEY}"


def test_limits_array_shape_is_read(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0, limits=True, sonnet=33.0))
    tick(wired)
    state = wired.state()
    assert state["route"] == "openrouter"
    assert state["buckets"]["seven_day_sonnet"]["percent"] == 33.0


def test_key_under_floor_stays_on_plan_and_check_says_blocked(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=0.4))
    tick(wired)
    assert check(wired) == 4
    text = wired.route_env()
    assert "export SPILLOVER_ROUTE='blocked'" in text
    assert "ANTHROPIC_BASE_URL" in text.splitlines()[-1]  # in the unset line
    assert "key remaining $0.40 (monthly) < floor $3.60 = one Fable turn" in status_json(wired)["reason"]


def test_reset_passed_and_low_reading_returns_to_plan(wired):
    # The window resets two minutes on; the second tick runs three minutes on (faketime), so a slow
    # first tick cannot see the reset pass before it decides.
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0, resets_in=120))
    tick(wired, **POLL_NOW)
    assert check(wired) == 3
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(10.0, resets_in=5 * 3600))
    wired.run("tick", env=POLL_NOW, at="+3m", check=True)
    assert wired.run("check", at="+3m").returncode == 0
    assert "five_hour back to 10%" in wired.state()["reason"]
    history = [json.loads(line) for line in (wired.state_dir / "history.jsonl").read_text().splitlines()]
    assert [(h["from"], h["route"]) for h in history] == [("plan", "openrouter"), ("openrouter", "plan")]


def test_hysteresis_band_keeps_the_spill(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired, **POLL_NOW)
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(70.0, resets_in=5 * 3600))  # the next window, busy already
    tick(wired, **POLL_NOW)
    assert check(wired) == 3
    assert "staying until five_hour reads under 50%" in wired.state()["reason"]


def spilled_then(wired, reply):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired, **POLL_NOW)
    assert check(wired) == 3
    before = wired.route_env()
    wired.usage.set("/api/oauth/usage", reply)
    started = time.time()
    tick(wired, **POLL_NOW)
    assert wired.route_env() == before  # the last good route stays
    assert check(wired) == 3
    return status_json(wired), started


@pytest.mark.parametrize(
    "reply,fragment,min_backoff",
    [
        (fakes.Reply(429, fakes.error_body(429, "rate limited"), headers={"Retry-After": "0"}), "HTTP 429", 300),
        (fakes.Reply(body=b"<html>oops</html>"), "not JSON", 60),
        (fakes.Reply(500, fakes.error_body(500, "Internal Server Error")), "HTTP 500", 60),
    ],
    ids=["429-retry-after-0", "garbage", "500"],
)
def test_usage_failures_keep_route_and_push_back_the_poll(wired, reply, fragment, min_backoff):
    status, started = spilled_then(wired, reply)
    oauth = status["sources"]["oauth"]
    assert fragment in oauth["error"]
    assert oauth["backoff_until"] >= started + min_backoff
    assert status["oauth_backoff_until"] == oauth["backoff_until"]
    calls = len(wired.usage.hits("/api/oauth/usage"))
    tick(wired, **POLL_NOW)  # inside the backoff: no call
    assert len(wired.usage.hits("/api/oauth/usage")) == calls
    human = wired.run("status").stdout
    assert fragment in human and "backing off until" in human


def test_usage_server_down_keeps_route(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired, **POLL_NOW)
    before = wired.route_env()
    wired.usage.close()
    tick(wired, **POLL_NOW)
    assert wired.route_env() == before
    status = status_json(wired)
    assert "connection refused" in status["sources"]["oauth"]["error"]
    assert status["oauth_backoff_until"] is not None


def test_expired_token_is_unknown_and_never_refreshed(wired):
    wired.write_credentials(expires_in=-60)
    proc = tick(wired, **POLL_NOW)
    assert wired.usage.requests == []  # no usage call, and no token refresh anywhere
    status = status_json(wired)
    assert "expired" in status["sources"]["oauth"]["error"]
    assert "run `claude`" in status["sources"]["oauth"]["error"]
    assert status["route"] == "plan"
    assert status["buckets"] == []  # nothing known: no reading was made up
    creds = json.loads((wired.claude_dir / ".credentials.json").read_text())
    assert creds["claudeAiOauth"]["refreshToken"] == "sk-ant-ort01-refresh-must-never-be-used"
    assert OAUTH_TOKEN not in proc.stdout + proc.stderr


def test_missing_scope_is_reported(wired):
    wired.write_credentials(scopes=("user:inference",))
    tick(wired)
    assert "user:profile" in status_json(wired)["sources"]["oauth"]["error"]
    assert wired.usage.requests == []


def test_route_file_written_only_on_change_atomically_and_privately(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired, **POLL_NOW)
    route = wired.state_dir / "route.env"
    first = route.stat()
    time.sleep(0.05)
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0))
    tick(wired, **POLL_NOW)
    assert route.stat().st_mtime_ns == first.st_mtime_ns and route.stat().st_ino == first.st_ino
    assert stat.S_IMODE(route.stat().st_mode) == 0o600
    assert stat.S_IMODE((wired.state_dir / "route.fish").stat().st_mode) == 0o600
    assert stat.S_IMODE((wired.state_dir / "state.json").stat().st_mode) == 0o600
    assert stat.S_IMODE(wired.state_dir.stat().st_mode) == 0o700
    assert not [p for p in wired.state_dir.iterdir() if p.name.startswith(".tmp-")]
    assert "T" not in "".join(l for l in route.read_text().splitlines() if l.startswith("#") and "20" in l)  # no timestamps


def test_second_tick_exits_zero_without_work_while_locked(wired):
    wired.state_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(wired.state_dir / "tick.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        proc = wired.run("tick")
        assert proc.returncode == 0 and proc.stdout == "" and proc.stderr == ""
        assert wired.usage.requests == [] and not (wired.state_dir / "state.json").exists()
    finally:
        os.close(fd)


def test_dry_run_prints_decision_and_writes_nothing(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    proc = wired.run("tick", "--dry-run", check=True)
    assert json.loads(proc.stdout)["route"] == "openrouter"
    assert not (wired.state_dir / "route.env").exists() and not (wired.state_dir / "state.json").exists()


def test_tick_is_silent_when_nothing_changes(wired):
    tick(wired)
    proc = tick(wired)
    assert proc.stdout == "" and proc.stderr == ""


def test_check_without_state_is_stale(sandbox):
    proc = sandbox.run("check")
    assert proc.returncode == 5 and "no tick has run yet" in proc.stdout


def test_check_stale_decision(wired):
    tick(wired)
    state = wired.state()
    state["decided_at"] -= 3600
    (wired.state_dir / "state.json").write_text(json.dumps(state))
    proc = wired.run("check", "--json")
    assert proc.returncode == 5
    assert json.loads(proc.stdout)["stale"] is True
    assert "cron tick seems not to run" in json.loads(proc.stdout)["reason"]


def test_check_quiet_json_and_usage(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired)
    quiet = wired.run("check", "--quiet")
    assert quiet.returncode == 3 and quiet.stdout == ""
    data = json.loads(wired.run("check", "--json").stdout)
    assert data["route"] == "openrouter" and data["exit"] == 3 and data["stale"] is False
    assert wired.run("check", "--bogus").returncode == 2
    assert wired.run("frobnicate").returncode == 2


def test_check_does_not_import_requests(wired):
    tick(wired)
    code = "import sys; from spillover.cli import main; rc = main(['check', '-q']); print(sorted(m for m in ('requests', 'dotenv', 'argparse', 'dataclasses', 'jmespath') if m in sys.modules))"
    out = subprocess.run([os.sys.executable, "-c", code], env=wired.env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_status_shows_buckets_sources_and_budget(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired)
    text = wired.run("status", check=True).stdout
    for fragment in ("route   openrouter (spilled)", "five_hour", "96%", "oauth", "key remaining $24.50", "spent today $3.40", "tick    last"):
        assert fragment in text
    assert OR_KEY not in text and OAUTH_TOKEN not in text


def test_env_prints_route_for_sh_and_fish(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired)
    assert wired.run("env", check=True).stdout == wired.route_env()
    fish = wired.run("env", "--shell", "fish", check=True).stdout
    assert "set -gx ANTHROPIC_API_KEY ''" in fish and "set -e -g SPILLOVER_PIN" in fish


def test_env_before_any_tick_is_the_plan(sandbox):
    out = sandbox.run("env", check=True).stdout
    assert "export SPILLOVER_ROUTE='plan'" in out and "unset SPILLOVER_REASON" not in out.splitlines()[0]


# --- route.env sourced by real shells ----------------------------------------------------------

PARENT = {name: f"parent-{name}" for name in MANAGED}


def sourced(shell, route_env, parent=PARENT):
    """The managed variables after `shell` sources route.env under strict mode, as a dict (None: unset)."""
    script = (
        "set -eu; . \"$1\"; for n in " + " ".join(MANAGED + ("SPILLOVER_ROUTE",)) + "; do "
        "if [ -n \"${(P)n+x}\" ]; then printf '%s=%s\\0' \"$n\" \"${(P)n}\"; else printf '%s\\0' \"$n\"; fi; done"
    )
    if shell == "bash":
        script = script.replace("${(P)n+x}", "${!n+x}").replace("${(P)n}", "${!n}")
        argv = ["bash", "-c", "set -o pipefail; " + script, "bash", str(route_env)]
    else:
        argv = ["zsh", "-c", script, "zsh", str(route_env)]
    env = {"PATH": os.environ["PATH"], **parent}
    out = subprocess.run(argv, env=env, capture_output=True, check=True).stdout.decode()
    result = {}
    for item in filter(None, out.split("\0")):
        name, eq, value = item.partition("=")
        result[name] = value if eq else None
    return result


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_openrouter_route_sourced_variable_by_variable(wired, shell):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired)
    env = sourced(shell, wired.state_dir / "route.env")
    assert env == {
        "SPILLOVER_ROUTE": "openrouter",
        "ANTHROPIC_BASE_URL": f"{wired.openrouter.url}/api",
        "ANTHROPIC_AUTH_TOKEN": OR_KEY,
        "ANTHROPIC_API_KEY": "",  # set and empty, not unset
        "ANTHROPIC_DEFAULT_FABLE_MODEL": "anthropic/claude-fable-5.1",  # not in the fake catalog: built-in
        "ANTHROPIC_DEFAULT_OPUS_MODEL": "anthropic/claude-opus-4.8",
        "ANTHROPIC_DEFAULT_SONNET_MODEL": "anthropic/claude-sonnet-4.6",
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": "anthropic/claude-haiku-4.5",
        "CLAUDE_CODE_SUBAGENT_MODEL": "anthropic/claude-sonnet-4.6",
    }


@pytest.mark.parametrize("shell", ["bash", "zsh"])
def test_plan_route_unsets_everything_the_parent_had(wired, shell):
    tick(wired)
    env = sourced(shell, wired.state_dir / "route.env")
    assert env == dict({name: None for name in MANAGED}, SPILLOVER_ROUTE="plan")


def test_broken_config_keeps_route_and_status_says_why(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired)
    before = wired.route_env()
    with open(wired.config_file, "a") as handle:
        handle.write("SPILLOVER_THRESHOLD=ninety\n")
    proc = wired.run("tick")
    assert proc.returncode == 1 and "SPILLOVER_THRESHOLD='ninety'" in proc.stderr
    assert wired.route_env() == before
    status = wired.run("status")
    assert status.returncode == 1
    assert "route   openrouter" in status.stdout
    assert "config: SPILLOVER_THRESHOLD='ninety'" in status.stdout
    data = json.loads(wired.run("status", "--json").stdout)
    assert data["config_error"].startswith("SPILLOVER_THRESHOLD='ninety'")
    assert OR_KEY not in status.stdout + status.stderr


def test_damaged_state_is_rebuilt_and_route_kept(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired)
    (wired.state_dir / "state.json").write_text('{"version": 1, "route": "openr')
    assert wired.run("check").returncode == 5
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(70.0))
    tick(wired, **POLL_NOW)
    state = wired.state()
    assert state["route"] == "openrouter"  # recovered from route.env: 70% is in the band, so it stays
    assert "state.json was unreadable and has been rebuilt" in state["problems"]


def test_damaged_state_fields_never_crash_and_are_reported(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired)
    state = wired.state()
    state.update(budget="abc", stale_after="300", sources={"oauth": "bad"}, details={"states": "zz", "targets": [1]},
                 buckets={"five_hour": "x", "seven_day": {"percent": "a"}})
    (wired.state_dir / "state.json").write_text(json.dumps(state))
    (wired.state_dir / "pin.json").write_text(json.dumps({"route": "openrouter", "until": "soon"}))
    for args in (("check",), ("status",), ("status", "--json")):
        proc = wired.run(*args)
        assert "Traceback" not in proc.stderr and "unexpected" not in proc.stderr, proc.stderr
        assert proc.returncode in (0, 3, 5), (args, proc.stderr)
    tick(wired, **POLL_NOW)
    state = wired.state()
    assert state["route"] == "openrouter" and state["budget"]["key"]["limit_remaining"] == 24.5
    assert any("damaged fields" in p for p in state["problems"])


def test_unexpected_errors_are_one_line(sandbox):
    proc = sandbox.run("tick", env={"SPILLOVER_STATE_DIR": "/proc/spillover-nowhere"})
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["spillover: error: /proc/spillover-nowhere: No such file or directory"]
