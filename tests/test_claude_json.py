"""`~/.claude.json` extra usage (design §4.5): Claude Code's cached overage state, read safely."""

import json
import re

import pytest

from spillover import config
from spillover.sources import claude_json


def claude_json_body(**overrides):
    """A trimmed real-shaped global config as Claude Code 2.1.x writes it."""
    body = {
        "numStartups": 42, "installMethod": "npm-global", "autoUpdates": True, "theme": "dark",
        "userID": "9b1c3e0d" * 8, "hasCompletedOnboarding": True, "lastOnboardingVersion": "2.1.197",
        "oauthAccount": {"accountUuid": "2f0c…", "emailAddress": "user@example.com", "organizationUuid": "8e1d…",
                         "organizationRole": "admin", "workspaceRole": None, "organizationName": "user@example.com's Organization",
                         "displayName": "User", "hasExtraUsageEnabled": False, "billingType": "stripe_subscription"},
        "projects": {"/home/u/proj": {"allowedTools": [], "history": [], "mcpServers": {}, "lastCost": 0.41}},
        "cachedExtraUsageDisabledReason": "out_of_credits",
    }
    body.update(overrides)
    return body


def write(sandbox, body, where=None):
    path = where or (sandbox.claude_dir / ".claude.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    return path


@pytest.mark.parametrize("body,enabled,reason", [
    (claude_json_body(cachedExtraUsageDisabledReason=None), True, None),
    (claude_json_body(), False, "out_of_credits"),
    (claude_json_body(cachedExtraUsageDisabledReason="org_level_disabled"), False, "org_level_disabled"),
])
def test_cached_disabled_reason(sandbox, body, enabled, reason):
    write(sandbox, body)
    info = claude_json.extra_usage(config.load())
    assert (info["enabled"], info["reason"]) == (enabled, reason)
    assert info["path"] == str(sandbox.claude_dir / ".claude.json")


def test_account_flag_is_the_fallback(sandbox):
    body = claude_json_body()
    del body["cachedExtraUsageDisabledReason"]
    body["oauthAccount"]["hasExtraUsageEnabled"] = True
    write(sandbox, body)
    assert claude_json.extra_usage(config.load())["enabled"] is True
    body["oauthAccount"]["hasExtraUsageEnabled"] = False
    write(sandbox, body)
    assert claude_json.extra_usage(config.load())["enabled"] is False
    del body["oauthAccount"]
    write(sandbox, body)
    info = claude_json.extra_usage(config.load())
    assert info["enabled"] is None and "has not recorded" in info["reason"]


@pytest.mark.parametrize("body,why", [
    (None, "does not exist"),
    ('{"cachedExtraUsageDisabledReason": nul', "cannot be read"),
    ("[]", "not a JSON object"),
    (b"\xff\xfe\x00", "cannot be read"),
])
def test_never_fails(sandbox, body, why):
    if body is not None:
        path = sandbox.claude_dir / ".claude.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
    info = claude_json.extra_usage(config.load())
    assert info["enabled"] is None and why in info["reason"]


def test_home_location_without_claude_config_dir(sandbox, monkeypatch):
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    write(sandbox, claude_json_body(cachedExtraUsageDisabledReason=None), where=sandbox.home / ".claude.json")
    info = claude_json.extra_usage(config.load())
    assert info["enabled"] is True and info["path"] == str(sandbox.home / ".claude.json")


def test_status_shows_usage_credits_and_stay_keeps_the_plan_at_a_wall(wired):
    write(wired, claude_json_body(cachedExtraUsageDisabledReason=None))
    from tests import fakes

    wired.usage.set("/api/oauth/usage", json={**fakes.usage_body(97.0), "extra_usage": None})
    env = {"SPILLOVER_EXTRA_USAGE": "stay"}
    wired.run("tick", check=True, env=env)
    state = wired.state()
    assert state["extra_usage"]["enabled"] is True and state["extra_usage"]["source"] == "~/.claude.json"
    assert state["route"] == "plan" and "usage credits are on" in state["reason"]
    status = wired.run("status", env=env).stdout
    assert re.search(r"usage credits on: Claude Code continues on Anthropic usage credits at a wall; SPILLOVER_EXTRA_USAGE=stay", status), status
    # The default (spill) spills anyway.
    wired.run("tick", check=True)
    assert wired.state()["route"] == "openrouter"


def test_status_shows_why_usage_credits_are_off(wired):
    write(wired, claude_json_body())
    from tests import fakes

    wired.usage.set("/api/oauth/usage", json={**fakes.usage_body(20.0), "extra_usage": None})
    wired.run("tick", check=True)
    assert "usage credits off (out_of_credits)" in wired.run("status").stdout
