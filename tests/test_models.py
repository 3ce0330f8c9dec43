"""`spillover models [--check] [--json]` and budget.check_models (issue 5)."""

import json

import pytest

from spillover import budget, config
from tests import fakes


def catalog(*extra):
    body = fakes.models_body()
    template = body["data"][0]
    for mid, prompt, completion in extra:
        body["data"].append(dict(template, id=mid, name=mid, pricing={"prompt": prompt, "completion": completion}))
    return body


def test_lists_anthropic_models_with_prices_per_million(wired):
    wired.openrouter.set("/api/v1/models", json=catalog(("~anthropic/claude-opus-latest", "0.000005", "0.000025"),
                                                        ("anthropic/claude-auto", "-1", "-1")))
    proc = wired.run("models", check=True)
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["model", "input", "$/M", "output", "$/M", "context", "configured", "as"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert rows["anthropic/claude-opus-4.8"] == ["5.00", "25.00", "1,000,000", "opus"]
    assert rows["anthropic/claude-sonnet-4.6"] == ["3.00", "15.00", "1,000,000", "sonnet,subagent"]
    assert rows["anthropic/claude-haiku-4.5"] == ["1.00", "5.00", "200,000", "haiku"]
    assert rows["~anthropic/claude-opus-latest"][:2] == ["5.00", "25.00"]
    assert rows["anthropic/claude-auto"][:2] == ["varies", "varies"]
    assert "openai/gpt-5" not in proc.stdout
    assert "Authorization" not in wired.openrouter.hits("/api/v1/models")[-1]["headers"]  # public: no key sent


def test_json(wired):
    data = json.loads(wired.run("models", "--json", check=True).stdout)
    by_id = {m["id"]: m for m in data["models"]}
    assert set(by_id) == {"anthropic/claude-opus-4.8", "anthropic/claude-sonnet-4.6", "anthropic/claude-haiku-4.5"}
    assert by_id["anthropic/claude-haiku-4.5"] == {
        "id": "anthropic/claude-haiku-4.5", "name": "Anthropic: Claude Haiku 4.5", "input_per_million": 1.0,
        "output_per_million": 5.0, "context_length": 200000, "configured_as": ["haiku"]}


def test_check_passes_with_the_default_slugs(wired):
    proc = wired.run("models", "--check")
    assert proc.returncode == 0, proc.stderr
    assert "✖" not in proc.stdout and proc.stderr == ""  # nothing configured: the route follows the catalog


def test_check_warns_with_the_closest_match(wired):
    env = {"SPILLOVER_SONNET_MODEL": "anthropic/claude-sonnet-4-6", "SPILLOVER_SUBAGENT_MODEL": "anthropic/claude-haiku-4.5"}
    proc = wired.run("models", "--check", env=env)
    assert proc.returncode == 1
    assert "warning: model anthropic/claude-sonnet-4-6 is not in OpenRouter's catalog (did you mean anthropic/claude-sonnet-4.6?)" in proc.stderr
    assert "✖ anthropic/claude-sonnet-4-6" in proc.stdout
    data = json.loads(wired.run("models", "--check", "--json", env=env).stdout)
    assert data["missing"] == 1
    missing = [c for c in data["checked"] if not c["ok"]]
    assert missing == [{"slug": "anthropic/claude-sonnet-4-6", "ok": False, "hint": "did you mean anthropic/claude-sonnet-4.6?",
                        "roles": ["sonnet"]}]


def test_check_ignores_gateway_slugs_and_accepts_variants(wired):
    env = {"SPILLOVER_GATEWAY_OPUS_MODEL": "corp-proxy-opus", "SPILLOVER_OPUS_MODEL": "anthropic/claude-opus-4.8:nitro"}
    proc = wired.run("models", "--check", env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "corp-proxy-opus" not in proc.stdout


def test_check_models_for_doctor(wired):
    cfg = config.load(dict(wired.env, SPILLOVER_HAIKU_MODEL="anthropic/claude-haikoo-4.5", SPILLOVER_OPUS_MODEL="nobody/nothing-at-all"))
    assert budget.check_models(cfg) == [
        ("nobody/nothing-at-all", False, "no similar model in OpenRouter's catalog"),
        ("anthropic/claude-haikoo-4.5", False, "did you mean anthropic/claude-haiku-4.5?"),
    ]


@pytest.mark.parametrize("reply, message", [
    (dict(status=500, json=fakes.error_body(500, "Internal Server Error")), "OpenRouter /models: HTTP 500"),
    (dict(json={"nothing": []}), "OpenRouter /models: answer has no data list"),
])
def test_catalog_unavailable(wired, reply, message):
    wired.openrouter.set("/api/v1/models", **reply)
    for args in (["models"], ["models", "--check"]):
        proc = wired.run(*args)
        assert proc.returncode == 1 and message in proc.stderr
