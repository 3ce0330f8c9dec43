"""`spillover doctor`: one line per piece, ✔/⚠/✖ with the exact fix, exit 1 when anything is ✖.
It reads state.json (never polls the usage endpoint) and never prints a secret."""

import json
import time

from tests import fakes
from tests.conftest import OAUTH_TOKEN, OR_KEY
from tests.test_cron import real_crontab  # noqa: F401  (fixture)


def fake_claude(sandbox, version="2.1.197"):
    bin_dir = sandbox.root / "bin"
    bin_dir.mkdir(exist_ok=True)
    exe = bin_dir / "claude"
    exe.write_text(f"#!/bin/sh\necho '{version} (Claude Code)'\n")
    exe.chmod(0o755)
    return {"PATH": f"{bin_dir}:{sandbox.env['PATH']}"}


def lines_of(proc):
    """{piece: (mark, text)} of doctor's output (the last line wins for a repeated piece)."""
    out = {}
    for line in proc.stdout.splitlines():
        mark, piece, text = line[0], line[2:].split()[0], line[2:].split(None, 1)[1]
        out.setdefault(piece, []).append((mark, text))
    return out


def doctor(sandbox, **env):
    proc = sandbox.run("doctor", env=env)
    for secret in (OR_KEY, OAUTH_TOKEN, "sk-ant-ort01-refresh-must-never-be-used"):
        assert secret not in proc.stdout + proc.stderr
    return proc, lines_of(proc)


def test_everything_wired_is_all_green(wired, real_crontab):
    env = fake_claude(wired)
    assert wired.run("tick", "--poll").returncode == 0
    for what in ("cron", "direnv", "statusline"):
        assert wired.run("install", what).returncode == 0
    assert wired.run("tick").returncode == 0  # the scheduler fires
    assert wired.run("install", "shell", "--shell", "bash").returncode == 0
    polls = len(wired.usage.hits("/api/oauth/usage"))
    key_reads = len(wired.openrouter.hits("/api/v1/key"))

    proc, got = doctor(wired, **env)
    assert proc.returncode == 0, proc.stdout
    assert "✖" not in proc.stdout
    for piece in ("config", "credentials", "usage", "openrouter", "models", "schedule", "route", "direnv", "hook", "statusline", "claude"):
        assert got[piece][-1][0] == "✔", (piece, proc.stdout)
    assert "Claude Code 2.1.197" in got["claude"][0][1]
    assert "key sk-or-v1-…c890 valid: key remaining $24.50" in got["openrouter"][0][1]
    assert len(wired.usage.hits("/api/oauth/usage")) == polls  # doctor never polls the usage endpoint
    assert len(wired.openrouter.hits("/api/v1/key")) == key_reads  # the tick's budget is recent enough


def test_fresh_machine_says_what_to_do(sandbox):
    proc, got = doctor(sandbox)
    assert proc.returncode == 1
    assert got["credentials"][0][0] == "✖" and "fix: run `claude` and log in" in got["credentials"][0][1]
    assert got["openrouter"][0] == ("✖", f"OPENROUTER_API_KEY is not set; fix: add OPENROUTER_API_KEY='sk-or-v1-…' to {sandbox.config_file}")
    assert got["schedule"][0] == ("✖", "nothing runs the tick every minute; no tick has run yet; fix: spillover install schedule")
    assert got["route"][0][0] == "✖" and "no tick has run yet" in got["route"][0][1]
    assert got["hook"][0][0] == "✖" and "nothing applies the route" in got["hook"][0][1]
    assert got["claude"][0] == ("✖", "`claude` is not on PATH; fix: npm install -g @anthropic-ai/claude-code")


def test_expired_token_and_missing_scope(sandbox):
    sandbox.write_credentials(expires_in=-3600)
    _, got = doctor(sandbox)
    assert got["credentials"][0][0] == "✖"
    assert "expired" in got["credentials"][0][1] and got["credentials"][0][1].endswith("fix: run `claude` once; it renews the token")
    sandbox.write_credentials(scopes=("user:inference",))
    _, got = doctor(sandbox)
    assert got["credentials"][0][0] == "✖" and "lacks the user:profile scope" in got["credentials"][0][1]
    sandbox.write_credentials()
    _, got = doctor(sandbox)
    assert got["credentials"][0][0] == "✔" and "max plan, scope user:profile" in got["credentials"][0][1]


def test_config_readable_by_others(wired):
    wired.config_file.chmod(0o644)
    proc, got = doctor(wired)
    assert proc.returncode == 1
    assert ("✖", f"{wired.config_file} is readable by others (mode 0644); it holds keys; fix: chmod 600 {wired.config_file}") in got["config"]


def test_bad_config_value_is_named(sandbox):
    sandbox.write_config(SPILLOVER_THRESHOLD="lots")
    proc, got = doctor(sandbox)
    assert proc.returncode == 1
    assert got["config"][0][0] == "✖" and "SPILLOVER_THRESHOLD='lots'" in got["config"][0][1]


def test_key_only_in_the_environment_warns_that_cron_will_not_see_it(sandbox):
    _, got = doctor(sandbox, OPENROUTER_API_KEY=OR_KEY)
    assert ("⚠", f"OPENROUTER_API_KEY set only in your environment: the scheduled tick does not see it; fix: put it in {sandbox.config_file} (mode 0600)") in got["config"]


def edit_state(sandbox, **changes):
    path = sandbox.state_dir / "state.json"
    state = json.loads(path.read_text())
    state.update(changes)
    path.write_text(json.dumps(state))


def test_usage_endpoint_in_backoff_says_until_when(wired):
    assert wired.run("tick", "--poll").returncode == 0
    until = time.time() + 1200
    state = wired.state()
    oauth = dict(state["sources"]["oauth"], ok=False, error="usage endpoint: HTTP 429 (rate limited)", backoff_until=until)
    edit_state(wired, sources=dict(state["sources"], oauth=oauth))
    _, got = doctor(wired)
    mark, text = got["usage"][0]
    assert mark == "⚠"
    assert text.startswith("usage endpoint: HTTP 429 (rate limited); backing off until " + time.strftime("%Y-%m-%d %H:%M", time.localtime(until)))


def test_stale_tick_with_the_cron_line_installed(wired, real_crontab):
    assert wired.run("tick", "--poll").returncode == 0
    assert wired.run("install", "cron").returncode == 0
    (wired.state_dir / "tick.log").write_text(f"2026-01-01 spillover: error: something broke with Bearer {OR_KEY}\n")
    edit_state(wired, decided_at=time.time() - 20 * 60)
    proc, got = doctor(wired)
    assert proc.returncode == 1
    cron = got["schedule"][0]
    assert cron[0] == "✖" and cron[1].startswith("crontab line installed but not firing: last tick 20m ago, the period is 60s; tick.log says: ")
    assert "fix: no cron daemon is running" in cron[1] or "fix: the cron daemon runs: see tick.log" in cron[1]
    assert got["route"][0][0] == "✖" and "the cron tick seems not to run" in got["route"][0][1]


def test_openrouter_read_live_when_the_tick_has_no_recent_budget(wired):
    wired.openrouter.set("/api/v1/key", status=401, json=fakes.error_body(401, "No auth credentials found"))
    proc, got = doctor(wired)
    assert len(wired.openrouter.hits("/api/v1/key")) == 1
    assert proc.returncode == 1
    mark, text = got["openrouter"][0]
    assert mark == "✖" and text.startswith("key sk-or-v1-…c890: ")
    assert text.endswith("fix: the key is invalid or revoked: create one at https://openrouter.ai/settings/keys and set OPENROUTER_API_KEY")


def test_openrouter_below_the_floor(wired):
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=0.4))
    _, got = doctor(wired)
    mark, text = got["openrouter"][0]
    assert mark == "✖" and "key remaining $0.40 (monthly) < floor $3.60 = one Fable turn" in text


def test_unknown_model_slug(wired):
    config = wired.config_file.read_text() + "SPILLOVER_OPUS_MODEL='anthropic/claude-opus-4-8'\n"
    wired.config_file.write_text(config)
    proc, got = doctor(wired)
    assert proc.returncode == 1
    mark, text = got["models"][0]
    assert mark == "✖" and "anthropic/claude-opus-4-8 is not on OpenRouter (did you mean anthropic/claude-opus-4.8?)" in text


def test_outdated_direnv_lib_and_hook_found(wired):
    lib = wired.home / ".config/direnv/lib/spillover.sh"
    assert wired.run("install", "direnv").returncode == 0
    lib.write_text(lib.read_text() + "# local edit\n")
    assert wired.run("install", "shell", "--shell", "zsh").returncode == 0
    _, got = doctor(wired)
    assert got["direnv"][0] == ("⚠", f"direnv lib {lib} is out of date; fix: spillover install direnv")
    assert got["hook"][0] == ("✔", "prompt hook installed in ~/.zshrc (new shells)")


def test_a_stored_anthropic_key_is_flagged(wired):
    """Claude Code sends a stored primaryApiKey as x-api-key even with ANTHROPIC_API_KEY='' (seen
    with the real 2.1.197 client): on the openrouter route that hands the key to OpenRouter."""
    stored = "sk-ant-api03-stored-by-a-console-login-0123456789abcdef"
    wired.claude_dir.mkdir(parents=True, exist_ok=True)
    claude_json = wired.claude_dir / ".claude.json"  # CLAUDE_CONFIG_DIR is set: Claude Code keeps it there
    claude_json.write_text(json.dumps({"primaryApiKey": stored}))
    proc, lines = doctor(wired)
    mark, text = lines["claude"][-1]
    assert mark == "✖" and "primaryApiKey" in text and "claude /logout" in proc.stdout
    assert proc.returncode == 1 and stored not in proc.stdout + proc.stderr
    assert wired.run("tick").returncode == 0
    problems = json.loads(wired.run("status", "--json").stdout)["problems"]
    assert any("primaryApiKey" in p for p in problems)
    claude_json.write_text(json.dumps({"cachedExtraUsageDisabledReason": None}))
    assert "primaryApiKey" not in doctor(wired)[0].stdout
