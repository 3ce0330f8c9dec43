"""`spillover credential --target NAME`: the apiKeyHelper prints a target's key only on its route
and only to a session whose base URL is that target's, and reads it from the config file only."""

import json
import subprocess
import sys

import pytest

from spillover import credential
from tests.conftest import ANT_KEY, OR_KEY

OR_BASE = "http://127.0.0.1:9999/api"
DECOY = "sk-or-v1-decoy-in-the-environment-000000000000000000000000000000000000dec"


@pytest.fixture
def box(sandbox):
    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY, SPILLOVER_OPENROUTER_BASE_URL=OR_BASE, SPILLOVER_ANTHROPIC_API_KEY=ANT_KEY)
    sandbox.state_dir.mkdir(parents=True)
    sandbox.route = lambda route: (sandbox.state_dir / "state.json").write_text(json.dumps({"route": route}))
    sandbox.route("openrouter")
    return sandbox


def run(box, *args, **env):
    full = dict(box.env, OPENROUTER_API_KEY=DECOY, **env)
    return subprocess.run([sys.executable, "-m", "spillover", "credential", *args], env=full, cwd=box.root,
                          capture_output=True, text=True, timeout=30)


def test_prints_the_key_from_the_config_file_not_the_environment(box):
    proc = run(box, "--target", "openrouter", ANTHROPIC_BASE_URL=OR_BASE + "/")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == OR_KEY + "\n"
    assert DECOY not in proc.stdout


@pytest.mark.parametrize("env, route, why", [
    ({"ANTHROPIC_BASE_URL": OR_BASE}, "plan", "published route is plan"),
    ({"ANTHROPIC_BASE_URL": OR_BASE}, "anthropic", "published route is anthropic"),
    ({"ANTHROPIC_BASE_URL": "http://127.0.0.1:1/api"}, "openrouter", "base URL"),
    ({"ANTHROPIC_BASE_URL": ""}, "openrouter", "https://api.anthropic.com"),
    ({}, "openrouter", "https://api.anthropic.com"),
])
def test_fails_closed(box, env, route, why):
    box.route(route)
    proc = run(box, "--target", "openrouter", **env)
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert why in proc.stderr and OR_KEY not in proc.stderr


def test_an_env_only_secret_is_refused(box):
    box.write_config(SPILLOVER_OPENROUTER_BASE_URL=OR_BASE)  # the key lives only in the environment
    proc = run(box, "--target", "openrouter", ANTHROPIC_BASE_URL=OR_BASE)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "OPENROUTER_API_KEY is not in" in proc.stderr and DECOY not in proc.stderr


def test_no_decision_yet_is_refused(box):
    (box.state_dir / "state.json").unlink()
    proc = run(box, "--target", "openrouter", ANTHROPIC_BASE_URL=OR_BASE)
    assert proc.returncode == 1 and proc.stdout == ""


def test_anthropic_target_goes_to_anthropics_host_only(box):
    box.route("anthropic")
    assert run(box, "--target", "anthropic").stdout == ANT_KEY + "\n"
    assert run(box, "--target", "anthropic", ANTHROPIC_BASE_URL="https://api.anthropic.com/").stdout == ANT_KEY + "\n"
    proc = run(box, "--target", "anthropic", ANTHROPIC_BASE_URL=OR_BASE)
    assert proc.returncode == 1 and proc.stdout == ""


def test_explicit_paths_win_over_the_session_environment(box, tmp_path):
    other = tmp_path / "other.env"
    other.write_text("OPENROUTER_API_KEY='sk-or-v1-other-file-key-000000000000'\n")
    proc = run(box, "--target", "openrouter", "--config", str(box.config_file), "--state-dir", str(box.state_dir),
               ANTHROPIC_BASE_URL=OR_BASE, SPILLOVER_CONFIG=str(other))
    assert proc.stdout == OR_KEY + "\n"


def test_usage_errors(box):
    assert run(box).returncode == 2
    assert run(box, "--target").returncode == 2
    proc = run(box, "--target", "nope", ANTHROPIC_BASE_URL=OR_BASE)
    assert proc.returncode == 1 and proc.stdout == ""


def test_helper_target():
    assert credential.helper_target("/home/u/.local/bin/spillover credential --target openrouter") == "openrouter"
    assert credential.helper_target("'/a b/spillover' credential --target gateway --config /c --state-dir /s") == "gateway"
    assert credential.helper_target("/usr/bin/python3 -m spillover credential --target anthropic") == "anthropic"
    assert credential.helper_target("~/bin/get-key.sh") is None
    assert credential.helper_target("/x/spillover credential --target openrouter; cat ~/.ssh/id_rsa") is None
    assert credential.helper_target(None) is None


def test_imports_stay_light(box):
    code = "import sys; from spillover import cli; print(sorted(m for m in ('argparse','requests','dataclasses','logging','jmespath') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], env=box.env, capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip() == "[]", proc.stdout
    probe = ("import sys; from spillover import cli; sys.argv=['spillover','credential','--target','openrouter'];\n"
             "import io, contextlib\n"
             "with contextlib.redirect_stderr(io.StringIO()): cli.main(sys.argv[1:])\n"
             "print(sorted(m for m in ('argparse','requests','dataclasses','jmespath','spillover.config') if m in sys.modules))")
    # python-dotenv (which imports logging) parses the config file exactly as the tick does.
    proc = subprocess.run([sys.executable, "-c", probe], env=dict(box.env, ANTHROPIC_BASE_URL=OR_BASE), capture_output=True, text=True, timeout=30)
    assert proc.stdout.strip().splitlines()[-1] == "[]", proc.stdout + proc.stderr
