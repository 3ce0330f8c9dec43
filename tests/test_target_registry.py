"""A fourth spill target, added at test time through the registry alone (one module, one
`targets.register` call), shows up everywhere targets are listed: config validation, the tick's
chain, `pin`, `status` and `doctor`. The CLI runs in-process so the registration is seen."""

import dataclasses
import importlib.util
import json
import textwrap

import pytest

from spillover import cli, config, targets
from spillover.errors import ConfigError
from tests import fakes
from tests.conftest import wire

MODULE = '''
"""A company gateway with its own health endpoint (throwaway, written by a test)."""

from spillover import http
from spillover.errors import SourceError
from spillover.policy import TargetHealth
from spillover.targets.base import Target

URL = {url!r}
TOKEN = "acme-token-0123456789"


class Acme(Target):
    name = "acme"
    leaks_stored_api_key = True

    def configured(self, cfg):
        return True, ""

    def env(self, cfg):
        return {{"ANTHROPIC_BASE_URL": URL, "ANTHROPIC_AUTH_TOKEN": TOKEN, "ANTHROPIC_API_KEY": ""}}

    def secrets(self, cfg):
        return (TOKEN,)

    def health(self, cfg, ctx):
        try:
            http.get(URL + "/health", headers={{}}, timeout=cfg.timeout, name="acme health")
        except SourceError as exc:
            return TargetHealth(self.name, False, f"acme health: {{exc}}")
        return TargetHealth(self.name, True, "acme health check passed")


TARGET = Acme()
'''


@pytest.fixture
def acme(tmp_path):
    server = fakes.FakeServer()
    server.set("/health", json={"ok": True})
    path = tmp_path / "acme_target.py"
    path.write_text(textwrap.dedent(MODULE.format(url=server.url)))
    spec = importlib.util.spec_from_file_location("acme_target", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    targets.register(module.TARGET)
    yield server
    targets.unregister("acme")
    server.close()


@pytest.fixture
def acme_first(sandbox, usage_server, openrouter_server, acme):
    box = wire(sandbox, usage_server, openrouter_server, SPILLOVER_TARGETS="acme,openrouter", SPILLOVER_SOURCES="oauth")
    box.acme = acme
    return box


def test_config_accepts_a_registered_target_and_only_then(sandbox, acme):
    cfg = config.load(environ={"SPILLOVER_TARGETS": "acme,openrouter"}, path="/nonexistent")
    assert cfg.targets == ("acme", "openrouter")
    targets.unregister("acme")
    with pytest.raises(ConfigError, match="'acme' is not one of"):
        config.load(environ={"SPILLOVER_TARGETS": "acme"}, path="/nonexistent")


def test_the_tick_spills_to_the_first_healthy_target(acme_first):
    acme_first.usage.set("/api/oauth/usage", json=fakes.usage_body(99.0))
    assert cli.main(["tick"]) == 0
    state = acme_first.state()
    assert state["route"] == "acme" and state["status"] == "spilled"
    assert acme_first.acme.hits("/health")
    route = acme_first.route_env()
    assert f"export ANTHROPIC_BASE_URL='{acme_first.acme.url}'" in route
    assert "export SPILLOVER_ROUTE='acme'" in route


def test_an_unhealthy_first_target_is_skipped(acme_first):
    acme_first.acme.set("/health", status=503, json={"error": "down"})
    acme_first.usage.set("/api/oauth/usage", json=fakes.usage_body(99.0))
    assert cli.main(["tick"]) == 0
    state = acme_first.state()
    assert state["route"] == "openrouter"
    acme = next(t for t in state["details"]["targets"] if t["name"] == "acme")
    assert not acme["healthy"] and "HTTP 503" in acme["reason"]


def test_pin_status_and_doctor_list_it(acme_first, capsys):
    assert cli.main(["pin", "acme", "--for", "30m"]) == 0
    assert acme_first.state()["route"] == "acme"
    capsys.readouterr()
    assert cli.main(["status", "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert [t["name"] for t in status["targets"]] == ["acme", "openrouter"]
    assert status["pin"]["route"] == "acme"
    cli.main(["doctor"])
    assert any(line.startswith("✔ acme ") for line in capsys.readouterr().out.splitlines())


def test_pin_refuses_an_unregistered_target(acme_first, capsys):
    targets.unregister("acme")
    with pytest.raises(SystemExit):
        cli.main(["pin", "acme"])
    assert "invalid choice: 'acme'" in capsys.readouterr().err


def test_every_setting_is_an_explicit_config_attribute():
    fields = {f.name for f in dataclasses.fields(config.Config)} - {"path", "origin", "warnings"}
    assert fields == {key.attr for key in config.KEYS}
