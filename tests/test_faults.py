"""Fault injection: every endpoint spillover calls, abused every way a server can abuse a client.

Each case first establishes a route with a good tick (spilled to OpenRouter at 96 %), then breaks
one endpoint and runs the next tick (`--poll`, so the usage endpoint is really read). Every case:
- the tick ends within its deadline (a correctness bound derived from SPILLOVER_TIMEOUT, not a
  benchmark: it is what keeps a cron tick from piling up behind a hung server);
- the last good route stays (a failed or lying fetch never flips it), except where the server
  says, with authority, that the spill target cannot be used (401/402/403 from /key): then the
  route leaves it and says why;
- the reason is in `status --json`;
- no secret (OAuth token, OpenRouter key, management key) is in the stdout/stderr of tick, status
  and check, in the log, or in state.json — even when the server echoes the key in its error.
"""

import json
import socket
import time

import pytest

from tests import fakes
from tests.conftest import MGMT_KEY, OAUTH_TOKEN, OR_KEY
from tests.fakes import Reply

TIMEOUT = 1  # SPILLOVER_TIMEOUT for these tests
# Interpreter start and imports on a loaded 2-core CI box, plus the sequential /key then /credits
# reads of one tick: a tick that honours its timeouts ends well inside this.
TICK_DEADLINE = 3 * TIMEOUT + 5 + 10  # the tick's hard deadline, plus interpreter start and exit on a loaded machine
MODELS_TIMEOUT = 10  # /models is read with max(SPILLOVER_TIMEOUT, 10): the catalog is large
SECRETS = (OAUTH_TOKEN, OR_KEY, MGMT_KEY)
TEN_MB = 10 * 1024 * 1024

ENDPOINTS = {
    "usage": ("usage", "/api/oauth/usage"),
    "key": ("openrouter", "/api/v1/key"),
    "credits": ("openrouter", "/api/v1/credits"),
    "models": ("openrouter", "/api/v1/models"),
}


def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when we return: connecting is refused


def good_body(endpoint, percent=96.0):
    return {
        "usage": lambda: fakes.usage_body(percent),
        "key": fakes.key_body,
        "credits": fakes.credits_body,
        "models": fakes.models_body,
    }[endpoint]()


def echoing_error(code, message):
    """An error body that repeats the credentials back, as careless servers do."""
    return fakes.error_body(code, f"{message} (key {OR_KEY}, token {OAUTH_TOKEN}, management {MGMT_KEY})")


def wrong_types(endpoint):
    return {
        "usage": {"five_hour": {"utilization": "ninety-six", "resets_at": ["soon"]}, "seven_day": {"utilization": {"x": 1}}},
        "key": fakes.key_body(remaining="24.5 USD", limit=[50], usage_daily={"today": 3}),
        "credits": {"data": {"total_credits": "lots", "total_usage": None}},
        "models": {"data": "anthropic/claude-sonnet-4.6"},
    }[endpoint]


def null_buckets(endpoint):
    if endpoint == "usage":
        return {"five_hour": None, "seven_day": None, "seven_day_sonnet": None, "seven_day_opus": None,
                "seven_day_oauth_apps": None, "extra_usage": None}
    return {"data": None}


def missing_buckets(endpoint):
    return {"extra_usage": {"is_enabled": False}} if endpoint == "usage" else {"links": {}}


def huge_body(endpoint):
    pad = b"x" * TEN_MB
    if endpoint == "usage":
        return b'{"five_hour": {"utilization": 10, "resets_at": null, "pad": "' + pad + b'"}}'
    return b'{"data": {"pad": "' + pad + b'"}}'


# fault -> function(endpoint) -> Reply (None: the special "connection refused" case)
FAULTS = {
    "refused": lambda ep: None,
    "hang": lambda ep: Reply(json=good_body(ep), delay=60),
    "trickle": lambda ep: Reply(json=good_body(ep), trickle=0.05),
    "500": lambda ep: Reply(500, json=echoing_error(500, "Internal Server Error")),
    "429-retry-after": lambda ep: Reply(429, json=fakes.RATE_LIMIT_429, headers={"Retry-After": "120"}),
    "429": lambda ep: Reply(429, json=fakes.RATE_LIMIT_429),
    "401": lambda ep: Reply(401, json=echoing_error(401, "No auth credentials found")),
    "403": lambda ep: Reply(403, json=echoing_error(403, "Key limit exceeded (monthly limit)")),
    "402": lambda ep: Reply(402, json=echoing_error(402, "Insufficient credits")),
    "invalid-json": lambda ep: Reply(body=b"<html><body>Bad gateway</body></html>", headers={"Content-Type": "text/html"}),
    "wrong-types": lambda ep: Reply(json=wrong_types(ep)),
    "fraction": lambda ep: Reply(json=fakes.usage_body(0.96, seven_day=0.15, sonnet=0.18)),
    "null-buckets": lambda ep: Reply(json=null_buckets(ep)),
    "missing-buckets": lambda ep: Reply(json=missing_buckets(ep)),
    "10mb": lambda ep: Reply(body=huge_body(ep)),
}

# What status --json must say, per fault, for the usage endpoint and /key (a fragment of the error).
REASON = {
    "refused": "connection refused",
    "hang": "no answer within",
    "trickle": "trickling",
    "500": "HTTP 500",
    "429-retry-after": "HTTP 429",
    "429": "HTTP 429",
    "401": "HTTP 401",
    "403": "HTTP 403",
    "402": "HTTP 402",
    "invalid-json": "not JSON",
    "wrong-types": "not a number",
    "missing-buckets": "none of five_hour",
    "10mb": "larger than",
}
KEY_REASON = dict(REASON, **{"null-buckets": "no data object", "missing-buckets": "no data object"})
# /key answers that say the key cannot be used: leaving the target is right (design §1, §5).
KEY_AUTHORITATIVE = {"401", "402", "403"}


def cases():
    for endpoint in ENDPOINTS:
        for fault in FAULTS:
            if fault == "fraction" and endpoint != "usage":
                continue  # only the usage endpoint speaks utilization
            if fault == "refused" and endpoint == "credits":
                continue  # /credits shares its host with /key: a refused host is the /key case
            yield pytest.param(endpoint, fault, id=f"{endpoint}-{fault}")


def assert_no_secret(where, text):
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked into {where}"
    # Not even the distinctive middle of a key (a mask keeps only a prefix and the last 4 characters).
    for secret in SECRETS:
        assert secret[12:30] not in text, f"part of a secret leaked into {where}"


@pytest.fixture
def spilled(wired):
    """wired, with a management key, spilled to OpenRouter by a good tick at 96 %."""
    config = wired.config_file.read_text() + f"OPENROUTER_MANAGEMENT_KEY='{MGMT_KEY}'\nSPILLOVER_TIMEOUT='{TIMEOUT}'\n"
    wired.config_file.write_text(config)
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.run("tick", "--poll", check=True)
    state = wired.state()
    assert state["route"] == "openrouter", state["reason"]
    assert state["budget"]["credits"] == {"total_credits": 100.5, "total_usage": 25.75}
    return wired


def run_timed(sandbox, *args, env=None, deadline):
    started = time.monotonic()
    proc = sandbox.run(*args, env=env, timeout=deadline + 30)
    elapsed = time.monotonic() - started
    assert elapsed < deadline, f"`spillover {' '.join(args)}` took {elapsed:.1f} s, deadline {deadline} s"
    return proc


def inject(sandbox, endpoint, fault):
    """Break `endpoint`; returns extra env for the next commands (the refused case moves a URL)."""
    server_name, path = ENDPOINTS[endpoint]
    server = sandbox.usage if server_name == "usage" else sandbox.openrouter
    reply = FAULTS[fault](endpoint)
    if reply is not None:
        server.set(path, reply)
        return {}
    dead = f"http://127.0.0.1:{closed_port()}"
    if endpoint == "usage":
        return {"SPILLOVER_CLAUDE_USAGE_URL": f"{dead}/api/oauth/usage"}
    return {"OPENROUTER_API_URL": f"{dead}/api/v1"}


@pytest.mark.parametrize("endpoint,fault", list(cases()))
def test_fault(spilled, endpoint, fault):
    before = spilled.state()
    before_env = spilled.route_env()
    env = inject(spilled, endpoint, fault)
    outputs = []

    if endpoint == "models":
        proc = run_timed(spilled, "models", env=env, deadline=3 * MODELS_TIMEOUT + 15)
        outputs.append(("models", proc))
        assert proc.returncode != 0, f"models accepted a broken catalog ({fault}): {proc.stdout}"
        assert proc.stderr.strip(), "models failed without saying why"
        assert "Traceback" not in proc.stderr
    else:
        proc = run_timed(spilled, "tick", "--poll", env=env, deadline=TICK_DEADLINE)
        outputs.append(("tick", proc))
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr

    status_proc = spilled.run("status", "--json", env=env)
    outputs.append(("status", status_proc))
    assert status_proc.returncode == 0, status_proc.stderr
    status = json.loads(status_proc.stdout)
    check = spilled.run("check", env=env)
    outputs.append(("check", check))
    state = spilled.state()

    if endpoint == "key" and fault in KEY_AUTHORITATIVE:
        # OpenRouter itself says the key cannot pay: the spill would fail, so leave it and say why.
        assert state["route"] == "blocked", state["reason"]
        assert check.returncode == 4
        assert KEY_REASON[fault] in status["reason"]
    else:
        assert state["route"] == before["route"] == "openrouter", f"{fault} on {endpoint} flipped the route: {state['reason']}"
        assert check.returncode == 3, check.stdout + check.stderr
        assert spilled.route_env() == before_env, "route.env changed without a flip"

    if endpoint == "usage":
        oauth = status["sources"]["oauth"]
        five = next(b for b in status["buckets"] if b["bucket"] == "five_hour")
        if fault == "fraction":
            # 0.96 is a fraction of one: 96 %, never 0.96 % (which would flip back to the plan).
            assert oauth["error"] is None and five["percent"] == pytest.approx(96.0)
        elif fault == "null-buckets":
            # A bucket-less answer is no reading: the last good one stays, with its age.
            assert five["percent"] == pytest.approx(96.0)
            assert five["observed_at"] == before["buckets"]["five_hour"]["observed_at"]
        else:
            assert REASON[fault] in (oauth["error"] or ""), oauth
            assert five["percent"] == pytest.approx(96.0)
            if fault not in ("401", "403"):
                assert status["oauth_backoff_until"], "a failed poll must back off"
            if fault == "429-retry-after":
                assert status["oauth_backoff_until"] >= time.time() + 120
    elif endpoint == "key":
        assert KEY_REASON[fault] in (status["budget"]["error"] or ""), status["budget"]
        openrouter = next(t for t in status["targets"] if t["name"] == "openrouter")
        assert KEY_REASON[fault] in openrouter["reason"], openrouter
    elif endpoint == "credits":
        credits_error = state["budget"].get("credits_error") or ""
        if fault == "403":
            # A 403 on /credits means "not a management key": the balance is unknown, not an error.
            assert state["budget"]["credits"] is None and not credits_error
        else:
            assert credits_error, state["budget"]
            assert status["budget"]["credits_error"] == credits_error, "the /credits error is not shown by status --json"
        assert status["budget"]["key"]["limit_remaining"] == 24.5
    else:  # models: the catalog is not part of the tick; the route is untouched
        assert state["decided_at"] == before["decided_at"]

    log = spilled.state_dir / "tick.log"
    for name, proc in outputs:
        assert_no_secret(f"{name} stdout", proc.stdout)
        assert_no_secret(f"{name} stderr", proc.stderr)
    if log.exists():
        assert_no_secret("tick.log", log.read_text())
    assert_no_secret("state.json", (spilled.state_dir / "state.json").read_text())


def test_fault_cases_cover_every_endpoint_and_fault():
    seen = {(e, f) for e, f in (p.values for p in cases())}
    for endpoint in ENDPOINTS:
        assert {f for e, f in seen if e == endpoint} >= set(FAULTS) - {"fraction", "refused"}
    assert ("usage", "fraction") in seen and ("usage", "refused") in seen and ("key", "refused") in seen
