"""The spill-target chain (issue 5): guards, fall-through, blocked, and the exact env var set of
every route, sourced by real bash. Everything runs `python -m spillover` against loopback fakes."""

import json
import subprocess

import pytest

from spillover import targets
from tests import fakes
from tests.conftest import ANT_KEY, MGMT_KEY, OAUTH_TOKEN, OR_KEY

SECRETS = (OR_KEY, MGMT_KEY, ANT_KEY, OAUTH_TOKEN)
CHAIN = {"SPILLOVER_TARGETS": "openrouter,anthropic", "SPILLOVER_ANTHROPIC_API_KEY": ANT_KEY, "SPILLOVER_POLL_MINUTES": "0"}
GATEWAY_URL = "http://127.0.0.1:9/gateway"
GATEWAY_TOKEN = "gw-token-0123456789abcdef"
# What a user's shell may already export: spillover must set or unset every one of these.
PARENT = {
    "ANTHROPIC_BASE_URL": "https://parent.example/api",
    "ANTHROPIC_AUTH_TOKEN": "parent-token-123456",
    "ANTHROPIC_API_KEY": "parent-api-key-123456",
    "ANTHROPIC_DEFAULT_OPUS_MODEL": "parent-opus",
    "ANTHROPIC_DEFAULT_SONNET_MODEL": "parent-sonnet",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": "parent-haiku",
    "CLAUDE_CODE_SUBAGENT_MODEL": "parent-subagent",
    "SPILLOVER_PIN": "parent-pin",
    "UNRELATED_VARIABLE": "kept as is",
}
BASH_OWN = {"SHLVL", "_", "PWD", "OLDPWD"}


def tick(sandbox, env=None, check=True):
    return sandbox.run("tick", env=env, check=check)


def check_code(sandbox, env=None):
    return sandbox.run("check", "-q", env=env).returncode


def status_json(sandbox, env=None):
    return json.loads(sandbox.run("status", "--json", env=env, check=True).stdout)


def target(status, name):
    return next(t for t in status["targets"] if t["name"] == name)


def sourced_env(sandbox, parent=PARENT):
    """The environment after real bash, under `set -euo pipefail`, sources route.env."""
    env = dict(sandbox.env, **parent)
    out = subprocess.run(
        ["bash", "-c", 'set -euo pipefail; . "$1"; env -0', "bash", str(sandbox.state_dir / "route.env")],
        env=env, capture_output=True, check=True,
    ).stdout.decode()
    after = dict(item.split("=", 1) for item in out.split("\0") if item)
    for name in set(env) | set(after):
        if name in targets.MANAGED or name in BASH_OWN:
            continue
        assert after.get(name) == env.get(name), f"{name} was changed by route.env"
    return after


def assert_managed(after, expected):
    """Every managed variable, one by one: the exact value, or absent (unset)."""
    for name in targets.MANAGED:
        if name == "SPILLOVER_REASON":
            continue  # free text; checked where it matters
        want = expected.get(name)
        if want is None:
            assert name not in after, f"{name} should be unset, is {after.get(name)!r}"
        else:
            assert name in after, f"{name} should be set"
            assert after[name] == want, f"{name}={after[name]!r}, want {want!r}"


# --- the chain --------------------------------------------------------------------------------


def test_key_with_budget_spills_to_openrouter(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired)
    state = wired.state()
    assert (state["route"], state["status"]) == ("openrouter", "spilled")
    assert check_code(wired) == 3
    health = target(status_json(wired), "openrouter")
    assert health["healthy"] and "key remaining $24.50" in health["reason"]
    assert wired.openrouter.hits("/api/v1/key")[-1]["headers"]["Authorization"] == f"Bearer {OR_KEY}"


@pytest.mark.parametrize("exhausted, why", [
    (dict(json=fakes.key_body(remaining=0.0, monthly=50.0)), "key remaining $0.00 (monthly) < floor $3.60 = one Fable turn (anthropic/claude-fable-5.1): 200k in × $10/M + 32k out × $50/M = $3.60"),
    (dict(status=403, json=fakes.KEY_LIMIT_403), "HTTP 403: Key limit exceeded (monthly limit)"),
    (dict(status=402, json=fakes.CREDITS_402), "HTTP 402: Insufficient credits"),
])
def test_key_exhausted_mid_spill_moves_to_anthropic(wired, exhausted, why):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired, CHAIN)
    assert wired.state()["route"] == "openrouter"

    wired.openrouter.set("/api/v1/key", **exhausted)
    before = len(wired.openrouter.hits("/api/v1/key"))
    tick(wired, CHAIN)
    assert len(wired.openrouter.hits("/api/v1/key")) == before + 1  # re-checked on the very next tick
    state = wired.state()
    assert (state["route"], state["status"]) == ("anthropic", "spilled")
    assert why in target(state["details"], "openrouter")["reason"]
    assert check_code(wired, CHAIN) == 3
    assert_managed(sourced_env(wired), {"SPILLOVER_ROUTE": "anthropic", "ANTHROPIC_API_KEY": ANT_KEY})
    flips = [json.loads(line) for line in (wired.state_dir / "history.jsonl").read_text().splitlines()]
    assert [(f["from"], f["route"]) for f in flips] == [("plan", "openrouter"), ("openrouter", "anthropic")]


@pytest.mark.parametrize("reply, why", [
    (dict(status=403, json=fakes.KEY_LIMIT_403), "Key limit exceeded"),
    (dict(status=402, json=fakes.CREDITS_402), "HTTP 402"),
    (dict(status=401, json=fakes.error_body(401, "User not found.")), "HTTP 401: User not found."),
    (dict(status=429, json=fakes.RATE_LIMIT_429, headers={"Retry-After": "60"}), "HTTP 429: Rate limit exceeded"),
    (dict(json=fakes.key_body(remaining=0.4)), "key remaining $0.40 (monthly) < floor $3.60 = one Fable turn (anthropic/claude-fable-5.1): 200k in × $10/M + 32k out × $50/M = $3.60"),
    (dict(json=fakes.key_body(disabled=True)), "disabled"),
    (dict(json=fakes.key_body(expires_at="2020-01-01T00:00:00Z")), "expired"),
    (dict(json=fakes.key_body(is_management_key=True)), "management key"),
])
def test_unhealthy_openrouter_is_skipped_with_the_servers_reason(wired, reply, why):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", **reply)
    tick(wired, CHAIN)
    status = status_json(wired, CHAIN)
    assert status["route"] == "anthropic"
    assert not target(status, "openrouter")["healthy"]
    assert why in target(status, "openrouter")["reason"]
    assert target(status, "anthropic")["healthy"]


def test_both_unhealthy_is_blocked_with_a_reason_per_target(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", status=403, json=fakes.KEY_LIMIT_403)
    env = dict(CHAIN, SPILLOVER_ANTHROPIC_API_KEY="")
    for _ in range(2):
        tick(wired, env)
    state = wired.state()
    assert (state["route"], state["status"]) == ("blocked", "blocked")
    assert "openrouter: OpenRouter /key: HTTP 403: Key limit exceeded" in state["reason"]
    assert "anthropic: SPILLOVER_ANTHROPIC_API_KEY is not set" in state["reason"]
    assert check_code(wired, env) == 4
    # Blocked keeps the plan's variables: nothing routes Claude Code anywhere else.
    assert_managed(sourced_env(wired), {"SPILLOVER_ROUTE": "blocked"})


def test_rate_limited_key_read_keeps_a_recent_budget(wired):
    """A 429 on /key mid-spill is OpenRouter's trouble reading, not an empty key: stay put."""
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    tick(wired, CHAIN)
    wired.openrouter.set("/api/v1/key", status=429, json=fakes.RATE_LIMIT_429)
    tick(wired, CHAIN)
    state = wired.state()
    assert state["route"] == "openrouter"
    assert "HTTP 429" in target(state["details"], "openrouter")["reason"]


def test_recovery_moves_back_up_the_chain_only_via_the_plan(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", status=403, json=fakes.KEY_LIMIT_403)
    tick(wired, CHAIN)
    assert wired.state()["route"] == "anthropic"
    wired.openrouter.set("/api/v1/key", json=fakes.key_body())
    tick(wired, CHAIN)
    # The first healthy target wins: OpenRouter is first in SPILLOVER_TARGETS again.
    assert wired.state()["route"] == "openrouter"
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(10.0, resets_in=5 * 3600))  # after the reset
    tick(wired, CHAIN)
    assert wired.state()["route"] == "plan"


# --- budget guards ----------------------------------------------------------------------------


@pytest.mark.parametrize("cap, why", [
    ({"SPILLOVER_DAILY_CAP": "3"}, "spent $3.40 today ≥ daily cap $3.00"),
    ({"SPILLOVER_MONTHLY_CAP": "25"}, "spent $25.50 this month ≥ monthly cap $25.00"),
])
def test_spend_cap_reached_skips_openrouter(wired, cap, why):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    env = dict(CHAIN, **cap)
    tick(wired, env)
    status = status_json(wired, env)
    assert status["route"] == "anthropic"
    assert target(status, "openrouter") == {"name": "openrouter", "healthy": False, "reason": why, "remaining": 24.5}


def test_cap_not_reached_spills(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    env = dict(CHAIN, SPILLOVER_DAILY_CAP="10", SPILLOVER_MONTHLY_CAP="100")
    tick(wired, env)
    assert wired.state()["route"] == "openrouter"


def test_account_balance_under_the_floor_skips_openrouter(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/credits", json=fakes.credits_body(100.0, 99.5))
    env = dict(CHAIN, OPENROUTER_MANAGEMENT_KEY=MGMT_KEY)
    tick(wired, env)
    status = status_json(wired, env)
    assert status["route"] == "anthropic"
    assert target(status, "openrouter")["reason"] == "account balance $0.50 < floor $3.60 = one Fable turn (anthropic/claude-fable-5.1): 200k in × $10/M + 32k out × $50/M = $3.60"
    assert wired.openrouter.hits("/api/v1/credits")[-1]["headers"]["Authorization"] == f"Bearer {MGMT_KEY}"


@pytest.mark.parametrize("credits", [
    dict(status=403, json=fakes.MANAGEMENT_ONLY_403),
    dict(json=fakes.credits_body(0, 0)),  # what some normal keys get: means "unknown", not "empty"
])
def test_unknown_balance_does_not_block_the_spill(wired, credits):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/credits", **credits)
    tick(wired, dict(CHAIN, OPENROUTER_MANAGEMENT_KEY=MGMT_KEY))
    assert wired.state()["route"] == "openrouter"


def test_gateway_health_url_decides_the_gateway(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    env = {"SPILLOVER_TARGETS": "gateway,anthropic", "SPILLOVER_ANTHROPIC_API_KEY": ANT_KEY,
           "SPILLOVER_GATEWAY_BASE_URL": GATEWAY_URL, "SPILLOVER_GATEWAY_TOKEN": GATEWAY_TOKEN,
           "SPILLOVER_GATEWAY_HEALTH_URL": f"{wired.openrouter.url}/health", "SPILLOVER_POLL_MINUTES": "0"}
    wired.openrouter.set("/health", status=503, json={})
    tick(wired, env)
    status = status_json(wired, env)
    assert status["route"] == "anthropic"
    assert target(status, "gateway")["reason"] == "health check answered HTTP 503"
    wired.openrouter.set("/health", json={"ok": True})
    tick(wired, env)
    assert wired.state()["route"] == "gateway"


# --- the env var set of every route, sourced by real bash -------------------------------------

OPENROUTER_MODELS = {
    "ANTHROPIC_DEFAULT_FABLE_MODEL": "anthropic/claude-fable-5.1",  # the fake catalog has no Fable: built-in
    "ANTHROPIC_DEFAULT_OPUS_MODEL": "anthropic/claude-opus-4.8",
    "ANTHROPIC_DEFAULT_SONNET_MODEL": "anthropic/claude-sonnet-4.6",
    "ANTHROPIC_DEFAULT_HAIKU_MODEL": "anthropic/claude-haiku-4.5",
    "CLAUDE_CODE_SUBAGENT_MODEL": "anthropic/claude-sonnet-4.6",
}
GATEWAY = {"SPILLOVER_TARGETS": "gateway", "SPILLOVER_GATEWAY_BASE_URL": GATEWAY_URL, "SPILLOVER_GATEWAY_TOKEN": GATEWAY_TOKEN}
GATEWAY_MODELS = {"SPILLOVER_GATEWAY_FABLE_MODEL": "gw-fable", "SPILLOVER_GATEWAY_OPUS_MODEL": "gw-opus", "SPILLOVER_GATEWAY_SONNET_MODEL": "gw-sonnet",
                  "SPILLOVER_GATEWAY_HAIKU_MODEL": "gw-haiku", "SPILLOVER_GATEWAY_SUBAGENT_MODEL": "gw-sub"}


def _routes(server_url):
    openrouter = {"ANTHROPIC_BASE_URL": f"{server_url}/api", "ANTHROPIC_AUTH_TOKEN": OR_KEY, "ANTHROPIC_API_KEY": "",
                  **OPENROUTER_MODELS}
    gateway = {"ANTHROPIC_BASE_URL": GATEWAY_URL, "ANTHROPIC_AUTH_TOKEN": GATEWAY_TOKEN, "ANTHROPIC_API_KEY": ""}
    return {
        # case: (usage percent, extra env, expected managed variables besides SPILLOVER_ROUTE)
        "plan": (42.0, {}, {}),
        "blocked": (96.0, {"SPILLOVER_TARGETS": "anthropic"}, {}),
        "openrouter": (96.0, {}, openrouter),
        "anthropic": (96.0, {"SPILLOVER_TARGETS": "anthropic", "SPILLOVER_ANTHROPIC_API_KEY": ANT_KEY}, {"ANTHROPIC_API_KEY": ANT_KEY}),
        "gateway-with-models": (96.0, dict(GATEWAY, **GATEWAY_MODELS), dict(gateway, **{
            "ANTHROPIC_DEFAULT_FABLE_MODEL": "gw-fable", "ANTHROPIC_DEFAULT_OPUS_MODEL": "gw-opus", "ANTHROPIC_DEFAULT_SONNET_MODEL": "gw-sonnet",
            "ANTHROPIC_DEFAULT_HAIKU_MODEL": "gw-haiku", "CLAUDE_CODE_SUBAGENT_MODEL": "gw-sub"})),
        "gateway-without-models": (96.0, GATEWAY, gateway),
    }


@pytest.mark.parametrize("case", ["plan", "blocked", "openrouter", "anthropic", "gateway-with-models", "gateway-without-models"])
def test_route_env_sourced_by_bash_variable_by_variable(wired, case):
    percent, env, expected = _routes(wired.openrouter.url)[case]
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(percent))
    tick(wired, env)
    route = case.split("-")[0]
    assert wired.state()["route"] == route
    after = sourced_env(wired)
    assert_managed(after, dict(expected, SPILLOVER_ROUTE=route))
    assert after["SPILLOVER_REASON"] == wired.state()["route_reason"]
    if route == "openrouter":
        assert after["ANTHROPIC_API_KEY"] == ""  # set and empty, not unset: else both auth headers go out
    # fish gets the same set from route.fish.
    fish = subprocess.run(["fish", "--no-config", "-c", f"source {wired.state_dir / 'route.fish'}; env"],
                          env=dict(wired.env, **PARENT), capture_output=True, text=True, check=True).stdout
    fish_env = dict(line.split("=", 1) for line in fish.splitlines() if "=" in line)
    for name in targets.MANAGED:
        assert fish_env.get(name) == after.get(name), name


# --- secrets ----------------------------------------------------------------------------------


def test_no_secret_in_any_output(wired):
    """Raw keys never reach status, check, budget, history, config or models output."""
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    # A server that echoes the key back in its error message must not leak it either.
    wired.openrouter.set("/api/v1/credits", status=500, json=fakes.error_body(500, f"boom for {MGMT_KEY}"))
    env = dict(CHAIN, OPENROUTER_MANAGEMENT_KEY=MGMT_KEY)
    outputs = [tick(wired, env)]
    wired.openrouter.set("/api/v1/key", status=401, json=fakes.error_body(401, f"User not found: {OR_KEY}"))
    outputs.append(tick(wired, env))
    for args in (["status"], ["status", "--json"], ["check"], ["check", "--json"], ["budget"], ["budget", "--json"],
                 ["history"], ["history", "--json"], ["config"], ["config", "--json"], ["models"], ["tick", "--dry-run"]):
        outputs.append(wired.run(*args, env=env))
    wired.openrouter.set("/api/v1/key", json=fakes.key_body())
    outputs += [wired.run("budget", env=env), wired.run("budget", "--json", env=env)]
    assert "sk-or-v1-…c890" in outputs[-2].stdout
    for proc in outputs:
        for secret in SECRETS:
            assert secret not in proc.stdout + proc.stderr, f"{proc.args[3:]} leaked a secret"
    state_text = (wired.state_dir / "state.json").read_text()
    for secret in SECRETS:
        assert secret not in state_text
