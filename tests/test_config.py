"""Layered configuration: defaults < config file < environment, validated with one-line errors."""

import os

import pytest

from spillover import config
from spillover.errors import ConfigError
from tests.conftest import OR_KEY


def load(tmp_path, text="", **env):
    path = tmp_path / "config.env"
    path.write_text(text)
    path.chmod(0o600)
    return config.load(environ=env, path=str(path))


def test_defaults(tmp_path):
    cfg = load(tmp_path)
    assert cfg.threshold == 95 and cfg.resume == 50
    assert cfg.targets == ("openrouter",)
    assert cfg.weekly == "notify"
    assert cfg.usage_url == "https://api.anthropic.com/api/oauth/usage"
    assert cfg.openrouter_api_url == "https://openrouter.ai/api/v1"
    assert cfg.openrouter_base_url == "https://openrouter.ai/api"
    assert cfg.min_balance == 1.0
    assert cfg.sonnet_model == "" and cfg.fable_model == ""  # unset: the newest in OpenRouter's catalog
    assert all(origin == "default" for origin in cfg.origin.values())


def test_file_then_environment_wins(tmp_path):
    cfg = load(tmp_path, "SPILLOVER_THRESHOLD=90\nSPILLOVER_RESUME=40\n", SPILLOVER_THRESHOLD="80")
    assert cfg.threshold == 80 and cfg.origin["SPILLOVER_THRESHOLD"] == "env"
    assert cfg.resume == 40 and cfg.origin["SPILLOVER_RESUME"] == "file"


def test_missing_file_is_defaults(tmp_path):
    cfg = config.load(environ={}, path=str(tmp_path / "absent.env"))
    assert cfg.threshold == 95


@pytest.mark.parametrize("raw,expected", [("95", 95), ("0.95", 95), ("97.5", 97.5), ("90%", 90), (" 80 ", 80), ("1.0", 100)])
def test_percent_forms(tmp_path, raw, expected):
    assert load(tmp_path, SPILLOVER_THRESHOLD=raw, SPILLOVER_RESUME="0.5").threshold == pytest.approx(expected)


def test_dotenv_quoting_and_comments(tmp_path):
    cfg = load(tmp_path, f"# my config\nexport OPENROUTER_API_KEY='{OR_KEY}'  # inline\nSPILLOVER_TARGETS=\"openrouter, anthropic\"\n")
    assert cfg.openrouter_key == OR_KEY
    assert cfg.targets == ("openrouter", "anthropic")


@pytest.mark.parametrize(
    "key,value,fragment",
    [
        ("SPILLOVER_THRESHOLD", "high", "SPILLOVER_THRESHOLD='high': expected a percent"),
        ("SPILLOVER_THRESHOLD", "150", "between 0 and 100"),
        ("SPILLOVER_RESUME", "99", "SPILLOVER_RESUME=99: must be under SPILLOVER_THRESHOLD=95"),
        ("SPILLOVER_TARGETS", "openrouter,openrouterr", "'openrouterr' is not one of openrouter, anthropic, gateway (did you mean openrouter?)"),
        ("SPILLOVER_TARGETS", "", "name at least one"),
        ("SPILLOVER_TARGETS", "openrouter,openrouter", "only once"),
        ("SPILLOVER_WEEKLY", "sometimes", "expected one of notify, spill, ignore"),
        ("SPILLOVER_MIN_BALANCE", "-1", "0 or more"),
        ("SPILLOVER_MIN_BALANCE", "lots", "expected an amount in USD"),
        ("OPENROUTER_API_URL", "ftp://x", "expected an http(s) URL"),
        ("OPENROUTER_API_URL", "http://openrouter.ai/api/v1", "must be https (http only for loopback)"),
        ("SPILLOVER_OPENROUTER_BASE_URL", "https://x.test/api?k=1", "without query"),
        ("SPILLOVER_SONNET_MODEL", "anthropic/claude sonnet", "expected a model slug"),
        ("OPENROUTER_API_KEY", "sk-or-v1-abc\ndef123456", "control characters"),
        ("SPILLOVER_TIMEOUT", "0", "between 0.1 and 120"),
        ("SPILLOVER_SOURCES", "oauth,telepathy", "'telepathy' is not one of"),
        ("SPILLOVER_METER_FIVE_HOUR", "usage.[", "not a valid JMESPath"),
    ],
)
def test_bad_values_name_key_value_and_allowed(tmp_path, key, value, fragment):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, **{key: value})
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message
    assert key in message


@pytest.mark.parametrize("url", ["https://me:hunter2secret@gw.example/api", "https://gw.example/api?key=hunter2secret"])
def test_url_errors_never_show_credentials(tmp_path, url):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, SPILLOVER_GATEWAY_BASE_URL=url)
    assert "hunter2secret" not in str(err.value) and "gw.example" in str(err.value)


def test_secret_value_is_masked_in_errors(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, OPENROUTER_API_KEY="sk-or-v1-secret\x01secretsecret890")
    assert "secretsecret" not in str(err.value)
    assert "sk-or-v1-…t890" in str(err.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/api", "http://localhost:9/x", "http://[::1]:9/api", "https://gw.example.com/"])
def test_loopback_http_and_https_allowed(tmp_path, url):
    assert load(tmp_path, SPILLOVER_OPENROUTER_BASE_URL=url).openrouter_base_url == url.rstrip("/")


def test_unknown_key_in_file_warns_with_suggestion(tmp_path):
    cfg = load(tmp_path, "SPILLOVER_TRESHOLD=90\n")
    assert any("unknown key SPILLOVER_TRESHOLD (did you mean SPILLOVER_THRESHOLD?)" in w for w in cfg.warnings)


def test_world_readable_file_with_keys_warns(tmp_path):
    path = tmp_path / "config.env"
    path.write_text(f"OPENROUTER_API_KEY={OR_KEY}\n")
    path.chmod(0o644)
    cfg = config.load(environ={}, path=str(path))
    assert any("readable by others" in w and "chmod 600" in w for w in cfg.warnings)
    path.chmod(0o600)
    assert not config.load(environ={}, path=str(path)).warnings


def test_set_value_roundtrips_and_is_private(tmp_path):
    path = tmp_path / "sub" / "config.env"
    config.set_value(str(path), "OPENROUTER_API_KEY", OR_KEY)
    config.set_value(str(path), "SPILLOVER_SONNET_MODEL", "it's/odd")
    config.set_value(str(path), "OPENROUTER_API_KEY", OR_KEY[:-3] + "999")
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    values = config.read_file(str(path))
    assert values == {"OPENROUTER_API_KEY": OR_KEY[:-3] + "999", "SPILLOVER_SONNET_MODEL": "it's/odd"}


def test_cli_reports_config_error_and_exits_1(sandbox):
    sandbox.write_config(SPILLOVER_THRESHOLD="lots")
    proc = sandbox.run("tick")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith("spillover: error: SPILLOVER_THRESHOLD='lots'")
    assert "Traceback" not in proc.stderr


def test_config_command_masks_secrets(sandbox):
    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY)
    proc = sandbox.run("config", check=True)
    assert OR_KEY not in proc.stdout
    assert "sk-or-v1-…c890" in proc.stdout


def _numeric_keys():
    from spillover import config

    numeric = {config._percent, config._money, config._optional_money, config._minutes, config._seconds}
    return [k.name for k in config.KEYS if k.parse in numeric]


@pytest.mark.parametrize("name", _numeric_keys())
@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "Infinity", "1e999", "-nan"])
def test_nan_and_inf_are_refused_for_every_numeric_key(name, value):
    from spillover import config

    with pytest.raises(ConfigError) as err:
        config.load(environ={name: value}, path="/nonexistent")
    assert name in str(err.value)


def test_every_numeric_parser_is_covered():
    """A new numeric parser must join the list above (and refuse nan/inf)."""
    from spillover import config

    parsers = {k.parse.__name__ for k in config.KEYS}
    assert not {p for p in parsers if any(w in p for w in ("float", "int", "number", "count", "hours"))}, parsers
    assert len(_numeric_keys()) >= 5
