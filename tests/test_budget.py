"""`spillover budget [--alert-below USD] [--json]` against the OpenRouter fake (issue 5)."""

import json
from datetime import datetime, timezone

import pytest

from spillover import budget
from tests import fakes
from tests.conftest import MGMT_KEY, OR_KEY

MGMT = {"OPENROUTER_MANAGEMENT_KEY": MGMT_KEY}


def budget_json(sandbox, *args, env=None):
    proc = sandbox.run("budget", "--json", *args, env=env)
    return proc, json.loads(proc.stdout)


def assert_clean(proc):
    for secret in (OR_KEY, MGMT_KEY):
        assert secret not in proc.stdout + proc.stderr


def test_text_shows_key_spend_and_unknown_balance(wired):
    proc = wired.run("budget", check=True)
    out = proc.stdout
    assert "OpenRouter key   sk-or-v1-…c890" in out
    assert "limit          $50.00 (monthly, next reset " in out
    assert "remaining      $24.50" in out
    assert "today $3.40 · this week $12.10 · this month $25.50 · all time $133.25" in out
    assert "free tier      no" in out
    assert "account balance  unknown (set OPENROUTER_MANAGEMENT_KEY" in out
    assert "budget           $24.50" in out
    assert "spill guard      ✔" in out
    assert_clean(proc)
    assert wired.openrouter.hits("/api/v1/credits") == []  # no management key: not even asked


def test_json_with_management_key(wired):
    proc, data = budget_json(wired, env=MGMT)
    assert proc.returncode == 0
    key = data["key"]
    assert key["label"] == "sk-or-v1-…c890"
    assert (key["limit"], key["limit_remaining"], key["limit_reset"]) == (50.0, 24.5, "monthly")
    assert (key["usage_daily"], key["usage_weekly"], key["usage_monthly"], key["usage"]) == (3.4, 12.1, 25.5, 133.25)
    assert key["is_free_tier"] is False
    assert data["account"] == {"total_credits": 100.5, "total_usage": 25.75, "balance": 74.75}
    assert data["budget"] == 24.5  # the lower of key remaining and balance
    assert data["guard"]["healthy"] is True
    assert wired.openrouter.hits("/api/v1/key")[-1]["headers"]["Authorization"] == f"Bearer {OR_KEY}"
    assert wired.openrouter.hits("/api/v1/credits")[-1]["headers"]["Authorization"] == f"Bearer {MGMT_KEY}"
    assert_clean(proc)


@pytest.mark.parametrize("credits, note", [
    (dict(status=403, json=fakes.MANAGEMENT_ONLY_403), "is it a management key?"),
    (dict(json=fakes.credits_body(0, 0)), "is it a management key?"),
    (dict(status=500, json=fakes.error_body(500, "Internal Server Error")), "HTTP 500: Internal Server Error"),
])
def test_balance_unknown_when_credits_unavailable(wired, credits, note):
    wired.openrouter.set("/api/v1/credits", **credits)
    proc, data = budget_json(wired, env=MGMT)
    assert proc.returncode == 0
    assert data["account"] is None and note in data["account_note"]
    assert data["budget"] == 24.5


@pytest.mark.parametrize("threshold, code", [(30, 1), (24.5, 0), (10, 0)])
def test_alert_below_key_remaining(wired, threshold, code):
    proc = wired.run("budget", "--alert-below", str(threshold))
    assert proc.returncode == code
    if code:
        assert f"ALERT: OpenRouter budget $24.50 < threshold ${threshold:.2f}" in proc.stderr
    else:
        assert "ALERT" not in proc.stderr


def test_alert_below_uses_the_account_balance_when_lower(wired):
    wired.openrouter.set("/api/v1/credits", json=fakes.credits_body(100.0, 95.0))
    proc, data = budget_json(wired, "--alert-below", "10", env=MGMT)
    assert proc.returncode == 1
    assert (data["budget"], data["alert"], data["alert_below"]) == (5.0, True, 10.0)
    assert "ALERT: OpenRouter budget $5.00 < threshold $10.00" in proc.stderr


def test_unlimited_key_without_balance_never_alerts(wired):
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(limit=None, remaining=None, reset=None))
    proc = wired.run("budget", "--alert-below", "1000")
    assert proc.returncode == 0
    assert "limit          none (unlimited key)" in proc.stdout
    assert "unlimited as far as spillover can see" in proc.stdout


def test_no_key_is_a_clear_error(sandbox):
    proc = sandbox.run("budget")
    assert proc.returncode == 1
    assert "OPENROUTER_API_KEY is not set" in proc.stderr and "setup openrouter-key" in proc.stderr


@pytest.mark.parametrize("reply, message", [
    (dict(status=401, json=fakes.error_body(401, f"User not found: {OR_KEY}")), "OpenRouter /key: HTTP 401: User not found: sk-or-v1-…c890"),
    (dict(status=403, json=fakes.KEY_LIMIT_403), "HTTP 403: Key limit exceeded (monthly limit)"),
    (dict(status=429, json=fakes.RATE_LIMIT_429), "HTTP 429: Rate limit exceeded"),
    (dict(body=b"<html>oops"), "answer is not JSON"),
])
def test_server_refusal_is_a_clear_error(wired, reply, message):
    wired.openrouter.set("/api/v1/key", **reply)
    proc = wired.run("budget", "--alert-below", "5")
    assert proc.returncode == 1
    assert message in proc.stderr
    assert_clean(proc)


def test_unreachable_server(sandbox):
    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY, OPENROUTER_API_URL="http://127.0.0.1:9/api/v1", SPILLOVER_TIMEOUT="1")
    proc = sandbox.run("budget")
    assert proc.returncode == 1 and "OpenRouter /key: connection refused" in proc.stderr


def _utc(text):
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


@pytest.mark.parametrize("window, now, expected", [
    ("daily", "2026-02-21 23:59:00", "2026-02-22 00:00:00"),
    ("weekly", "2026-02-21 10:00:00", "2026-02-23 00:00:00"),  # a Saturday: the week ends Sunday
    ("weekly", "2026-02-23 00:00:00", "2026-03-02 00:00:00"),  # Monday midnight: the new week just began
    ("monthly", "2026-02-21 10:00:00", "2026-03-01 00:00:00"),
    ("monthly", "2026-12-31 23:00:00", "2027-01-01 00:00:00"),
])
def test_next_reset(window, now, expected):
    assert budget.next_reset(window, _utc(now)) == _utc(expected)


def test_next_reset_without_window():
    assert budget.next_reset(None, 0) is None
