"""`spillover setup openrouter-key --limit USD [--reset W] [--name N] [--replace]` (issue 5): create a
capped inference key with the management key, store it 0600, show it once and never again."""

import json
import stat

import pytest

from spillover import config
from tests import fakes
from tests.conftest import MGMT_KEY, OR_KEY

NEW_KEY = "sk-or-v1-feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedf00d"


def created_body(name="spillover", limit=20.0, reset="monthly"):
    return {"data": {"hash": "f01d4b1e", "name": name, "label": "sk-or-v1-fee...00d", "disabled": False, "limit": limit,
                     "limit_remaining": limit, "limit_reset": reset, "usage": 0, "created_at": "2026-02-21T10:00:00Z"},
            "key": NEW_KEY}


@pytest.fixture
def managed(sandbox, openrouter_server):
    """A config with only the management key (and the fake's URL), and a /keys endpoint that creates."""
    sandbox.write_config(OPENROUTER_API_URL=f"{openrouter_server.url}/api/v1", OPENROUTER_MANAGEMENT_KEY=MGMT_KEY,
                         SPILLOVER_TIMEOUT="2")
    openrouter_server.set("/api/v1/keys", method="POST", json=created_body())
    sandbox.openrouter = openrouter_server
    return sandbox


def test_creates_stores_and_shows_the_key_once(managed):
    proc = managed.run("setup", "openrouter-key", "--limit", "20", "--reset", "monthly", check=True)
    assert proc.stdout.count(NEW_KEY) == 1
    assert "capped server-side at $20.00 per month" in proc.stdout
    assert "This is the only time the key is shown; from now on spillover shows it as sk-or-v1-…f00d." in proc.stdout
    assert MGMT_KEY not in proc.stdout + proc.stderr

    [request] = managed.openrouter.hits("/api/v1/keys", method="POST")
    assert json.loads(request["body"]) == {"name": "spillover", "limit": 20.0, "limit_reset": "monthly"}
    assert request["headers"]["Authorization"] == f"Bearer {MGMT_KEY}"

    path = managed.config_file
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert config.read_file(str(path))["OPENROUTER_API_KEY"] == NEW_KEY
    assert config.read_file(str(path))["OPENROUTER_MANAGEMENT_KEY"] == MGMT_KEY  # the rest of the file is kept

    # Never again in clear: config, budget and a tick all use or show it masked.
    for args in (["config"], ["budget"], ["tick"], ["status"]):
        out = managed.run(*args)
        assert out.returncode == 0, out.stderr
        assert NEW_KEY not in out.stdout + out.stderr
    assert "sk-or-v1-…f00d" in managed.run("config").stdout
    assert managed.openrouter.hits("/api/v1/key")[-1]["headers"]["Authorization"] == f"Bearer {NEW_KEY}"


def test_without_reset_or_config_file(sandbox, openrouter_server):
    """The management key may come from the environment; the config file is created (0600, dir 0700)."""
    openrouter_server.set("/api/v1/keys", method="POST", json=created_body(name="ci", reset=None))
    env = {"OPENROUTER_MANAGEMENT_KEY": MGMT_KEY, "OPENROUTER_API_URL": f"{openrouter_server.url}/api/v1"}
    proc = sandbox.run("setup", "openrouter-key", "--limit", "5", "--name", "ci", env=env, check=True)
    assert "'ci', capped server-side at $5.00 in total" in proc.stdout
    [request] = openrouter_server.hits("/api/v1/keys", method="POST")
    assert json.loads(request["body"]) == {"name": "ci", "limit": 5.0}
    assert sandbox.config_file.read_text() == f"OPENROUTER_API_KEY='{NEW_KEY}'\n"
    assert stat.S_IMODE(sandbox.config_file.stat().st_mode) == 0o600


def test_needs_the_management_key(sandbox, openrouter_server):
    sandbox.write_config(OPENROUTER_API_URL=f"{openrouter_server.url}/api/v1")
    proc = sandbox.run("setup", "openrouter-key", "--limit", "20")
    assert proc.returncode == 1
    assert "needs OPENROUTER_MANAGEMENT_KEY" in proc.stderr
    assert openrouter_server.hits("/api/v1/keys", method="POST") == []


def test_refuses_to_overwrite_a_stored_key_unless_replace(managed):
    config.set_value(str(managed.config_file), "OPENROUTER_API_KEY", OR_KEY)
    proc = managed.run("setup", "openrouter-key", "--limit", "20")
    assert proc.returncode == 1
    assert "already holds OPENROUTER_API_KEY=sk-or-v1-…c890" in proc.stderr and "--replace" in proc.stderr
    assert OR_KEY not in proc.stdout + proc.stderr
    assert managed.openrouter.hits("/api/v1/keys", method="POST") == []  # no orphan key created

    proc = managed.run("setup", "openrouter-key", "--limit", "20", "--replace", check=True)
    assert "replaced sk-or-v1-…c890" in proc.stdout and OR_KEY not in proc.stdout
    assert config.read_file(str(managed.config_file))["OPENROUTER_API_KEY"] == NEW_KEY
    assert managed.config_file.read_text().count("OPENROUTER_API_KEY=") == 1


@pytest.mark.parametrize("reply, message", [
    (dict(status=401, json=fakes.error_body(401, "Missing Authentication header")), "OpenRouter /keys: HTTP 401: Missing Authentication header"),
    (dict(status=403, json=fakes.error_body(403, f"Only management keys can perform this operation ({MGMT_KEY})")), "HTTP 403: Only management keys"),
    (dict(json={"data": {}}), "OpenRouter /keys: answer has no key"),
])
def test_server_refusal_changes_nothing(managed, reply, message):
    before = managed.config_file.read_text()
    managed.openrouter.set("/api/v1/keys", method="POST", **reply)
    proc = managed.run("setup", "openrouter-key", "--limit", "20")
    assert proc.returncode == 1
    assert message in proc.stderr
    assert MGMT_KEY not in proc.stdout + proc.stderr and NEW_KEY not in proc.stdout
    assert managed.config_file.read_text() == before


@pytest.mark.parametrize("args, code", [(["--limit", "0"], 1), (["--limit", "-3"], 1), (["--reset", "yearly", "--limit", "5"], 2), ([], 2)])
def test_bad_arguments(managed, args, code):
    proc = managed.run("setup", "openrouter-key", *args)
    assert proc.returncode == code
    assert managed.openrouter.hits("/api/v1/keys", method="POST") == []
