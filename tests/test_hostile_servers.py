"""Servers and files that lie (issue: hostile servers): every read is bounded, hostile values are
data and never a crash, a credential never leaves the machine over a proxy, the route is kept.

Each tick runs as a real subprocess against loopback fakes; "bounded" means it ends within
3 × SPILLOVER_TIMEOUT + 5 s, whatever the server does.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from spillover import http, jsonsafe
from spillover.errors import SourceError
from tests import fakes
from tests.conftest import OAUTH_TOKEN, OR_KEY, wire

TIMEOUT = 2  # SPILLOVER_TIMEOUT in `wired`
BOUND = 3 * TIMEOUT + 5


def tick(box, *extra):
    started = time.monotonic()
    proc = box.run("tick", *extra, timeout=120)
    return proc, time.monotonic() - started


def spill(box):
    """Bring the sandbox to a known spilled route first, so 'the route is kept' means something."""
    box.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0))
    proc, _ = tick(box)
    assert proc.returncode == 0, proc.stderr
    assert box.state()["route"] == "openrouter"


def no_secret_anywhere(box, proc, secrets=(OAUTH_TOKEN, OR_KEY, "sk-ant-ort01-refresh-must-never-be-used")):
    texts = {"stdout": proc.stdout, "stderr": proc.stderr}
    for path in box.state_dir.iterdir():
        if path.is_file() and path.name not in ("route.env", "route.fish"):  # the route files carry the key by design
            texts[path.name] = path.read_text(errors="replace")
    for name, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret[:12]}… leaked into {name}"


# --- the HTTP helper itself ---------------------------------------------------------------------


def test_trickled_headers_end_at_the_deadline():
    server = fakes.FakeServer()
    try:
        server.set("/slow", fakes.Reply(json={"ok": True}, header_trickle=1.0))  # 30 s of headers, each line within the socket timeout
        started = time.monotonic()
        with pytest.raises(SourceError) as err:
            http.get_json(f"{server.url}/slow", headers={}, timeout=1.5, name="slow server")
        assert time.monotonic() - started < 1.5 + 5.0  # ends near the deadline, not after 30 s of headers
        assert "slow server" in str(err.value) and err.value.kind == "unavailable"
    finally:
        server.close()


def test_a_loopback_request_ignores_proxy_variables(monkeypatch):
    server, trap = fakes.FakeServer(), fakes.FakeServer()
    try:
        server.set("/api/v1/key", json=fakes.key_body())
        for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, trap.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        status, _, body = http.get_json(f"{server.url}/api/v1/key", headers={"Authorization": f"Bearer {OR_KEY}"},
                                        timeout=2, name="OpenRouter /key")
        assert status == 200 and body["data"]["limit"] == 50.0
        assert [r["path"] for r in server.requests] == ["/api/v1/key"]
        assert trap.requests == [], "the credential went through the proxy"
    finally:
        server.close()
        trap.close()


@pytest.mark.parametrize("value, expected", [
    ("inf", 7 * 86400), ("1e300", 7 * 86400), ("nan", None), ("-5", 0.0), ("120", 120.0), ("soon", None),
])
def test_retry_after_is_a_sane_number(value, expected):
    assert http._retry_after({"Retry-After": value}) == expected


@pytest.mark.parametrize("depth", [65, 10_000, 200_000])
def test_deeply_nested_json_is_refused_not_a_crash(depth):
    with pytest.raises(ValueError):
        jsonsafe.loads("[" * depth + "]" * depth)


def test_a_fifo_or_a_device_is_not_read(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(OSError):
        jsonsafe.read_file(fifo, 1024)  # would block forever with a plain open()
    with pytest.raises(OSError):
        jsonsafe.read_file("/dev/zero", 1024)
    big = tmp_path / "big"
    big.write_bytes(b" " * 2048)
    with pytest.raises(OSError):
        jsonsafe.read_file(big, 1024)


# --- whole ticks against lying servers --------------------------------------------------------------


@pytest.mark.parametrize("where", ["usage", "key"])
def test_headers_trickled_for_a_minute_keep_the_tick_bounded(wired, where):
    spill(wired)
    slow = fakes.Reply(json=fakes.usage_body(97.0) if where == "usage" else fakes.key_body(), header_trickle=1.0)
    if where == "usage":
        wired.usage.set("/api/oauth/usage", slow)
        proc, took = tick(wired, "--poll")
    else:
        wired.openrouter.set("/api/v1/key", slow)
        proc, took = tick(wired)
    assert proc.returncode == 0, proc.stderr
    assert took < BOUND, f"tick took {took:.1f} s"
    state = wired.state()
    assert state["route"] == "openrouter"
    if where == "usage":
        assert state["sources"]["oauth"]["backoff_until"] > time.time()
    no_secret_anywhere(wired, proc)


NESTED = "[" * 10_000 + "]" * 10_000


@pytest.mark.parametrize("status", [200, 429])
def test_nested_json_from_the_usage_endpoint(wired, status):
    spill(wired)
    wired.usage.set("/api/oauth/usage", fakes.Reply(status, body=NESTED.encode()))
    proc, took = tick(wired, "--poll")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and took < BOUND
    state = wired.state()
    assert state["route"] == "openrouter"
    oauth = state["sources"]["oauth"]
    assert oauth["ok"] is False and oauth["backoff_until"] > time.time(), oauth
    no_secret_anywhere(wired, proc)


@pytest.mark.parametrize("field, value", [
    ("resets_at", "0000-01-01T00:00:00+00:00"), ("resets_at", 1e300), ("resets_at", "inf"),
    ("resets_at", "0001-01-01T00:00:00+00:00"),
])
def test_absurd_reset_times_are_data(wired, field, value):
    body = fakes.usage_body(97.0)
    body["five_hour"][field] = value
    wired.usage.set("/api/oauth/usage", json=body)
    proc, _ = tick(wired, "--poll")
    assert proc.returncode == 0, proc.stderr
    for command in (("status",), ("status", "--json"), ("doctor",), ("budget",)):
        out = wired.run(*command)
        assert "Traceback" not in out.stderr, (command, out.stderr)
    reset = wired.state()["buckets"]["five_hour"]["resets_at"]
    assert reset is None or 946684800 <= reset <= 4102444800


@pytest.mark.parametrize("value", ["0000-01-01T00:00:00Z", "inf", 1e300, "9999-12-31T23:59:59Z"])
def test_absurd_key_expiry_is_data(wired, value):
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(expires_at=value))
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0))
    proc, _ = tick(wired)
    assert proc.returncode == 0, proc.stderr
    for command in (("status",), ("status", "--json"), ("doctor",), ("budget",), ("pin", "plan", "--for", "10m")):
        out = wired.run(*command)
        assert "Traceback" not in out.stderr, (command, out.stderr)


@pytest.mark.parametrize("value", ["inf", "1e300", "nan"])
def test_absurd_retry_after_still_records_a_backoff(wired, value):
    spill(wired)
    wired.usage.set("/api/oauth/usage", fakes.Reply(429, json={"error": {"type": "rate_limit_error"}}, headers={"Retry-After": value}))
    proc, _ = tick(wired, "--poll")
    assert proc.returncode == 0, proc.stderr
    oauth = wired.state()["sources"]["oauth"]
    assert time.time() < oauth["backoff_until"] < time.time() + 8 * 86400
    assert wired.run("status").returncode in (0, 3)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_credentials_that_are_not_a_regular_file(wired, kind):
    spill(wired)
    creds = wired.claude_dir / ".credentials.json"
    creds.unlink()
    if kind == "fifo":
        os.mkfifo(creds)
    else:
        creds.symlink_to("/dev/zero")
    for command in (("tick", "--poll"), ("doctor",), ("status",)):
        started = time.monotonic()
        try:
            proc = wired.run(*command, timeout=BOUND + 10)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{' '.join(command)} hung on a {kind} credentials file")
        assert time.monotonic() - started < BOUND
        assert "Traceback" not in proc.stderr, proc.stderr
    state = wired.state()
    assert state["route"] == "openrouter"
    assert "not a regular file" in (state["sources"]["oauth"]["error"] or "")


def test_a_localhost_subdomain_is_not_loopback(sandbox):
    sandbox.write_config(OPENROUTER_API_URL="http://evil.localhost:8080/api/v1", OPENROUTER_API_KEY=OR_KEY)
    proc = sandbox.run("tick")
    assert proc.returncode == 1
    assert "must be https" in proc.stderr and OR_KEY not in proc.stderr


def test_the_key_reaches_a_loopback_fake_without_the_proxy(wired):
    trap = fakes.FakeServer()
    try:
        wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0))
        proc = wired.run("tick", env={"HTTP_PROXY": trap.url, "http_proxy": trap.url, "HTTPS_PROXY": trap.url})
        assert proc.returncode == 0, proc.stderr
        assert trap.requests == []
        assert any(r["path"] == "/api/v1/key" for r in wired.openrouter.requests)
        assert wired.state()["route"] == "openrouter"
    finally:
        trap.close()


@pytest.mark.parametrize("key", ["sk-or-v1-abc\nSPILLOVER_METER_COMMAND=touch /tmp/pwned", "sk-or-v1-" + "a" * 10, "sk-or-v1-a'b" + "c" * 30])
def test_setup_key_refuses_a_malformed_key_from_the_server(wired, key):
    wired.write_config(
        OPENROUTER_API_URL=f"{wired.openrouter.url}/api/v1", OPENROUTER_MANAGEMENT_KEY="sk-or-v1-" + "m" * 64,
    )
    before = wired.config_file.read_text()
    wired.openrouter.set("/api/v1/keys", method="POST", json={"key": key, "data": {"name": "spillover", "limit": 20}})
    proc = wired.run("setup", "openrouter-key", "--limit", "20")
    assert proc.returncode != 0
    assert "malformed" in proc.stderr or "no key" in proc.stderr, proc.stderr
    assert wired.config_file.read_text() == before
    assert json.dumps(key)[1:-1] not in proc.stdout + proc.stderr


@pytest.mark.parametrize("env_value, stored", [("nan", 300), ("inf", 300), ("1e300", 300), (None, 1e300), (None, float("nan"))])
def test_a_month_old_decision_is_never_fresh(sandbox, env_value, stored):
    sandbox.state_dir.mkdir(parents=True)
    state = {"version": 1, "route": "openrouter", "status": "spilled", "decided_at": time.time() - 30 * 86400,
             "stale_after": stored}
    (sandbox.state_dir / "state.json").write_text(json.dumps(state).replace("NaN", "NaN"))
    proc = sandbox.run("check", env={"SPILLOVER_STALE_MINUTES": env_value} if env_value else None)
    assert proc.returncode == 5, proc.stdout + proc.stderr


# --- secrets echoed back: redacted by value before they are stored, logged, printed or notified ----

# Opaque values: nothing in them looks like a key, so only redaction by value can catch them.
OPAQUE = {
    "access": "opaqueAccessTok.0123456789ABCDEF",
    "refresh": "opaqueRefreshTok.FEDCBA9876543210",
    "openrouter": "orkeyOpaque_4b1d2c3e4f5a6b7c",
    "management": "mgmtOpaque_9a8b7c6d5e4f3a2b",
    "anthropic": "anthOpaque_1122334455667788",
    "gateway": "gwtokOpaque_aabbccddeeff0011",
}
ECHO = " ".join(OPAQUE.values()) + " \x1b]0;pwned\x07\x1b[31mred"


def opaque_box(sandbox, usage_server, openrouter_server, **extra):
    box = wire(sandbox, usage_server, openrouter_server, OPENROUTER_MANAGEMENT_KEY=OPAQUE["management"],
               SPILLOVER_ANTHROPIC_API_KEY=OPAQUE["anthropic"], SPILLOVER_GATEWAY_TOKEN=OPAQUE["gateway"], **extra)
    box.write_config(**{k: v for k, v in _config_values(box).items() if k != "OPENROUTER_API_KEY"},
                     OPENROUTER_API_KEY=OPAQUE["openrouter"])
    path = box.write_credentials(token=OPAQUE["access"])
    data = json.loads(path.read_text())
    data["claudeAiOauth"]["refreshToken"] = OPAQUE["refresh"]
    path.write_text(json.dumps(data))
    return box


def _config_values(box):
    from dotenv import dotenv_values

    return dict(dotenv_values(box.config_file))


def every_output(box, *procs):
    """stdout/stderr of the ticks given and of each read-only command, and every state file."""
    texts = {}
    for i, proc in enumerate(procs):
        texts[f"tick{i}.stdout"], texts[f"tick{i}.stderr"] = proc.stdout, proc.stderr
    for args in (("status",), ("status", "--json"), ("budget",), ("budget", "--json"), ("doctor",), ("history",)):
        proc = box.run(*args, timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        texts[" ".join(args)] = proc.stdout + proc.stderr
    for path in box.state_dir.iterdir():
        if path.is_file() and path.name not in ("route.env", "route.fish"):  # the route files carry the key by design
            texts[path.name] = path.read_text(errors="replace")
    return texts


def assert_no_opaque_secret(texts):
    for name, text in texts.items():
        for what, secret in OPAQUE.items():
            assert secret not in text, f"the {what} secret leaked into {name}"
        assert "\x1b" not in text, f"a terminal escape reached {name}"


def test_secrets_echoed_by_every_server_field_are_never_stored_or_shown(sandbox, usage_server, openrouter_server):
    box = opaque_box(sandbox, usage_server, openrouter_server)
    body = fakes.usage_body(97.0, limits=True)
    body["limits"][2]["scope"]["model"]["display_name"] = ECHO
    body["seven_day_opus"] = {"utilization": ECHO, "resets_at": ECHO}  # not a number: becomes an error string
    box.usage.set("/api/oauth/usage", json=body)
    box.openrouter.set("/api/v1/key", json=fakes.key_body(label=OPAQUE["openrouter"], name=ECHO))
    first, _ = tick(box, "--poll")
    assert first.returncode == 0, first.stderr
    # an error answer echoing them (a 429 and a 500 body), in the message the source keeps
    box.usage.set("/api/oauth/usage", fakes.Reply(500, json={"error": {"type": ECHO, "message": ECHO}}))
    second, _ = tick(box, "--poll")
    assert box.state()["sources"]["oauth"]["ok"] is False
    texts = every_output(box, first, second)
    assert_no_opaque_secret(texts)


def test_secrets_in_meter_output_and_stderr_are_never_stored_or_shown(sandbox, usage_server, openrouter_server, tmp_path):
    meter = tmp_path / "meter.sh"
    meter.write_text(f"#!/bin/sh\nprintf '%s\\n' '{ECHO}' >&2\nexit 3\n")
    meter.chmod(0o755)
    box = opaque_box(sandbox, usage_server, openrouter_server, SPILLOVER_METER_COMMAND=str(meter),
                     SPILLOVER_SOURCES="command,oauth")
    first, _ = tick(box, "--poll")
    assert (box.state()["sources"].get("command") or {}).get("ok") is False, box.state()["sources"]
    meter.write_text("#!/bin/sh\nprintf '%s' '{\"usage\": {\"five_hour\": {\"utilization\": \"" + OPAQUE["access"] + "\"}}}'\n")
    second, _ = tick(box, "--poll")
    assert_no_opaque_secret(every_output(box, first, second))


# --- the whole tick's hard deadline -----------------------------------------------------------------


def test_a_hung_stage_is_cut_off_at_the_hard_deadline_releasing_the_lock(wired):
    """Every read is bounded, so a stage that hangs is a bug of ours: the tick still ends at
    3 × SPILLOVER_TIMEOUT + 5 s, exits non-zero, releases the lock and says where it stopped."""
    spill(wired)
    hang = ("import time, sys\n"
            "from spillover.sources import statusline\n"
            "statusline.StatuslineSource.read = lambda self, ctx: time.sleep(3600)\n"
            "from spillover.cli import main\n"
            "sys.exit(main(['tick']))\n")
    env = dict(wired.env, SPILLOVER_TIMEOUT="0.5", SPILLOVER_SOURCES="statusline,oauth")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", hang], env=env, cwd=wired.root, capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert proc.returncode != 0 and took < 3 * 0.5 + 5 + 10, (proc.returncode, took, proc.stderr)
    assert "cut off at the hard deadline" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    state = wired.state()
    assert state["route"] == "openrouter" and "reading local sources (statusline" in state["cut_off"], state.get("cut_off")
    status = wired.run("status")
    assert "last tick was cut off at the hard deadline: reading local sources (statusline" in status.stdout, status.stdout
    # the lock was released: the next tick runs (and clears the mark)
    again, _ = tick(wired)
    assert again.returncode == 0 and "cut_off" not in wired.state(), again.stderr
