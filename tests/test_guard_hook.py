"""`spillover hook prompt`: a UserPromptSubmit hook that blocks a prompt whose effective base URL
and credential do not belong together (a project's own apiKeyHelper or base URL mixed with
spillover's route), and stays silent everywhere else."""

import json
import subprocess
import sys

import pytest

from spillover import guard_hook
from tests.conftest import OR_KEY

OR_BASE = "http://127.0.0.1:9999/api"
OURS = "/opt/spillover/bin/spillover credential --target openrouter"


@pytest.fixture
def box(sandbox, tmp_path):
    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY, SPILLOVER_OPENROUTER_BASE_URL=OR_BASE)
    sandbox.claude_dir.mkdir(parents=True, exist_ok=True)
    project = tmp_path / "project"
    (project / ".claude").mkdir(parents=True)
    sandbox.project = project
    sandbox.managed = tmp_path / "managed-settings.json"
    return sandbox


def write(path, data):
    path.write_text(json.dumps(data))


def check(box, **env):
    environ = {"CLAUDE_CONFIG_DIR": str(box.claude_dir), **env}
    files = guard_hook.settings_files(str(box.project), environ, managed=str(box.managed))
    return guard_hook.problem(environ, files, str(box.config_file))


def spilled(box):
    write(box.claude_dir / "settings.json", {"apiKeyHelper": OURS, "env": {"ANTHROPIC_BASE_URL": OR_BASE, "SPILLOVER_ROUTE": "openrouter"}})
    return {"ANTHROPIC_BASE_URL": OR_BASE, "SPILLOVER_ROUTE": "openrouter", "ANTHROPIC_AUTH_TOKEN": "", "ANTHROPIC_API_KEY": ""}


def test_silent_when_spillover_is_not_involved(box):
    write(box.project / ".claude" / "settings.json", {"apiKeyHelper": "~/bin/key.sh", "env": {"ANTHROPIC_BASE_URL": "https://gw.example"}})
    assert check(box, ANTHROPIC_BASE_URL="https://gw.example") == ""


def test_silent_when_route_and_credential_belong_together(box):
    assert check(box, **spilled(box)) == ""
    write(box.claude_dir / "settings.json", {"env": {"SPILLOVER_ROUTE": "plan", "ANTHROPIC_BASE_URL": ""}})
    assert check(box, SPILLOVER_ROUTE="plan", ANTHROPIC_BASE_URL="") == ""


def test_a_session_in_the_middle_of_a_switch_waits(box):
    spilled(box)  # the helper is in the file (read live); the session's env is not applied yet
    assert "switching this session to openrouter" in check(box, SPILLOVER_ROUTE="plan")
    write(box.claude_dir / "settings.json", {"apiKeyHelper": OURS, "env": {"ANTHROPIC_BASE_URL": "", "SPILLOVER_ROUTE": "plan"}})
    assert "back to the plan" in check(box, SPILLOVER_ROUTE="plan", ANTHROPIC_BASE_URL="")


def test_project_base_url_under_our_helper_is_blocked(box):
    env = spilled(box)
    project_settings = box.project / ".claude" / "settings.json"
    write(project_settings, {"env": {"ANTHROPIC_BASE_URL": "https://llm.corp.example"}})
    reason = check(box, **dict(env, ANTHROPIC_BASE_URL="https://llm.corp.example"))
    assert "https://llm.corp.example" in reason and str(project_settings) in reason and "Fix:" in reason


def test_project_helper_on_our_route_is_blocked(box):
    env = spilled(box)
    local = box.project / ".claude" / "settings.local.json"
    write(local, {"apiKeyHelper": "~/bin/corp-key.sh"})
    reason = check(box, **env)
    assert "apiKeyHelper of " + str(local) in reason and "openrouter" in reason


def test_a_token_in_the_session_beats_our_helper_and_is_blocked(box):
    env = dict(spilled(box), ANTHROPIC_AUTH_TOKEN="sk-ant-oat01-something")
    reason = check(box, **env)
    assert "ANTHROPIC_AUTH_TOKEN" in reason
    assert "sk-ant-oat01-something" not in reason


def test_plan_login_sent_to_the_target_is_blocked(box):
    write(box.claude_dir / "settings.json", {})
    reason = check(box, SPILLOVER_ROUTE="plan", ANTHROPIC_BASE_URL=OR_BASE)
    assert "plan's login" in reason


def test_managed_settings_count(box):
    env = spilled(box)
    write(box.managed, {"apiKeyHelper": "/usr/local/bin/corp-key"})
    assert "corp-key" in check(box, **env) or str(box.managed) in check(box, **env)


def test_hook_command_blocks_with_json(box):
    env = spilled(box)
    write(box.project / ".claude" / "settings.local.json", {"apiKeyHelper": "~/bin/corp-key.sh"})
    payload = {"session_id": "s", "hook_event_name": "UserPromptSubmit", "prompt": "hello", "cwd": str(box.project)}
    full = dict(box.env, **env)
    proc = subprocess.run([sys.executable, "-m", "spillover", "hook", "prompt"], input=json.dumps(payload), env=full,
                          cwd=box.project, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["decision"] == "block" and "spillover blocked this prompt" in out["reason"]
    # Where all is well: nothing printed, exit 0.
    (box.project / ".claude" / "settings.local.json").unlink()
    proc = subprocess.run([sys.executable, "-m", "spillover", "hook", "prompt"], input=json.dumps(payload), env=full,
                          cwd=box.project, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout == ""


def test_garbage_input_lets_the_prompt_through(box):
    proc = subprocess.run([sys.executable, "-m", "spillover", "hook", "prompt"], input="not json", env=box.env,
                          cwd=box.project, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and proc.stdout == ""


def test_a_prompt_right_after_the_helper_left_waits_for_the_client_to_apply_it(box):
    """Phase 2 of the way back removes spillover's helper; Claude Code drops it from a running
    session only about a second after the write, and until then that session sends the plan an
    empty key (the helper refuses: the route is plan). A prompt in that second is held."""
    import time

    from spillover import paths

    settings = box.claude_dir / "settings.json"
    write(settings, {"permissions": {}})  # phase 2 written: nothing of spillover's is left
    status = box.state_dir / paths.LIVE_STATUS_JSON
    box.state_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    plan_env = {"SPILLOVER_ROUTE": "plan", "ANTHROPIC_BASE_URL": ""}

    def check_at(at, dropped=True, **env):
        write(status, {str(settings): {"status": "written", "route": "plan", "phase": 2, "reason": "", "at": at,
                                       "dropped_helper": dropped}})
        environ = {"CLAUDE_CONFIG_DIR": str(box.claude_dir), **env}
        files = guard_hook.settings_files(str(box.project), environ, managed=str(box.managed))
        return guard_hook.problem(environ, files, str(box.config_file), state_dir=str(box.state_dir), now=now)

    assert "back to the plan" in check_at(now - 0.5, **plan_env)
    assert check_at(now - guard_hook.HELPER_APPLY_SECONDS - 0.1, **plan_env) == ""
    assert check_at(now - 0.5) == ""  # a session spillover was never in
    assert check_at(now - 0.5, dropped=False, **plan_env) == ""  # SPILLOVER_LIVE_CREDENTIAL=env: no helper to drop
    # An excluded project (its own SPILLOVER_ROUTE and "" helper in settings.local.json) is not held.
    write(box.project / ".claude" / "settings.local.json", {"apiKeyHelper": "", "env": {"SPILLOVER_ROUTE": "plan"}})
    assert check_at(now - 0.5, **plan_env) == ""
