"""A running interactive `claude` session follows the route spillover writes into its settings.json.

The real client runs interactively in a private tmux server, in a sandboxed HOME and
CLAUDE_CONFIG_DIR (OAuth plan credentials in `.credentials.json`, onboarding done and the
workspace trusted in `.claude.json`), with telemetry, auto-update and retries off. Three loopback
fakes: the OAuth usage endpoint and OpenRouter's REST API (for the real `spillover tick`), a fake
OpenRouter Messages endpoint under `/api`, and a trap proxy (HTTPS_PROXY) where an attempt to reach
api.anthropic.com — the plan — shows up as a refused CONNECT.

One session, three prompts: prompt 1 goes to the plan; a tick flips to openrouter and spillover's
settings publisher writes the spill block (apiKeyHelper = `spillover credential --target
openrouter`); prompt 2 in the same session reaches the OpenRouter fake with the key from the config
file (never the decoy key in the session's environment) and the configured slug; a tick flips back,
the plan block (phase 1, `""` values) is written, and prompt 3 goes to the plan again; phase 2 then
removes every spillover key. Everything is judged from the fakes' request logs, not the screen.
"""

import json
import os
import time

import pytest

from spillover import config as config_mod
from spillover import targets
from spillover.publishers import claude_settings as cs
from tests.conftest import OAUTH_TOKEN, OR_KEY
from tests.e2e.conftest import E2E, QUIET_CLIENT
from tests.e2e.fake_anthropic import FakeAnthropic
from tests.e2e.test_claude_code import MODELS, tick_to
from tests.e2e.tmux import Pane, wait_for

CLIENTS = {
    "2.1.197": E2E / "node_modules" / "@anthropic-ai" / "claude-code" / "bin" / "claude.exe",
    # Not pinned here: `npm install --no-save claude-code-newest@npm:@anthropic-ai/claude-code@2.1.332`.
    "2.1.332": E2E / "node_modules" / "claude-code-newest" / "bin" / "claude.exe",
}
DECOY_KEY = "sk-or-v1-decoy-from-the-session-environment-0000000000000000000000000dec"
RELOAD_WAIT = 3.0  # the client applies a settings change ~1 s after it (research/claude_code_live.md)
TURN_TIMEOUT = 30


@pytest.fixture(params=sorted(CLIENTS))
def live_client(request):
    """(version, path) of an interactive client; the pinned one is installed by `claude_client`."""
    version = request.param
    if version == "2.1.197":
        request.getfixturevalue("claude_client")
    path = CLIENTS[version]
    if not path.exists():
        pytest.skip(f"Claude Code {version} is not installed in tests/e2e/node_modules")
    return version, path


@pytest.fixture
def or_messages():
    """The fake OpenRouter Messages endpoint (`<url>/api/v1/messages`)."""
    fake = FakeAnthropic()
    yield fake
    fake.close()


@pytest.fixture
def live(wired, anthropic, or_messages, tools, live_client, tmp_path):
    version, client = live_client
    text = wired.config_file.read_text().replace(f"{wired.openrouter.url}/api'", f"{or_messages.url}/api'")
    assert f"SPILLOVER_OPENROUTER_BASE_URL='{or_messages.url}/api'" in text
    wired.config_file.write_text(text + "".join(f"{k}='{v}'\n" for k, v in MODELS.items()))
    project = wired.root / "project"
    project.mkdir()
    claude_dir = wired.claude_dir
    (claude_dir / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "lastOnboardingVersion": version, "theme": "dark", "numStartups": 3,
        "projects": {str(project): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True, "allowedTools": []}},
    }))
    settings = claude_dir / "settings.json"
    # The statusline runs with the session's live environment: it shows when a change was applied.
    status_log = tmp_path / "statusline.log"
    status_cmd = tmp_path / "statusline.sh"
    status_cmd.write_text(f'#!/bin/sh\ncat >/dev/null\necho "$(date +%s.%N) ${{SPILLOVER_ROUTE:-unset}} ${{ANTHROPIC_BASE_URL:-unset}}" >> {status_log}\necho ok\n')
    status_cmd.chmod(0o755)
    user_settings = {"permissions": {"allow": ["Read"]}, "theme": "dark", "statusLine": {"type": "command", "command": str(status_cmd)}}
    settings.write_text(json.dumps(user_settings, indent=2) + "\n")
    settings.chmod(0o644)
    # The helper, named `spillover` as installed, logs when it runs and the base URL it sees.
    helper_dir = tmp_path / "helper"
    helper_dir.mkdir()
    helper_log = tmp_path / "helper.log"
    wrapper = helper_dir / "spillover"
    wrapper.write_text(f'#!/bin/sh\necho "$(date +%s.%N) ${{ANTHROPIC_BASE_URL:-unset}} ${{SPILLOVER_ROUTE:-unset}}" >> {helper_log}\n'
                       f'exec {tools / "spillover"} "$@"\n')
    wrapper.chmod(0o755)
    env = {
        "PATH": os.pathsep.join([str(tools), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(wired.home), "LANG": "C.UTF-8", **QUIET_CLIENT, "TERM": "xterm-256color",
        "CLAUDE_CONFIG_DIR": str(claude_dir),
        "XDG_CONFIG_HOME": wired.env["XDG_CONFIG_HOME"], "XDG_STATE_HOME": wired.env["XDG_STATE_HOME"],
        "XDG_CACHE_HOME": wired.env["XDG_CACHE_HOME"], "XDG_DATA_HOME": wired.env["XDG_DATA_HOME"],
        # The helper must read the key from the config file, never from the session's environment.
        "OPENROUTER_API_KEY": DECOY_KEY,
        # Only https goes to the trap: the loopback fakes are plain http and reached directly.
        "HTTPS_PROXY": anthropic.url, "NO_PROXY": "127.0.0.1,localhost",
    }
    pane = Pane(tmp_path / "tmux.sock")
    wired.pane, wired.trap, wired.or_messages, wired.project = pane, anthropic, or_messages, project
    wired.settings, wired.helper, wired.helper_log = settings, f"{wrapper} credential --target openrouter", helper_log
    wired.private = cs.private_state_path(str(wired.state_dir), str(settings))
    wired.client, wired.client_env, wired.version = client, env, version
    wired.user_settings, wired.status_log = user_settings, status_log
    yield wired
    pane.kill()


def publish(box, route, phase=1, credential="helper"):
    cfg = config_mod.load(environ=box.env)
    block = cs.managed_block(route, targets.route_env(route, cfg), box.helper, phase=phase, credential=credential)
    result = cs.apply(str(box.settings), block, now=time.time(), state=box.private)
    assert result.status == "written", result
    return time.monotonic()


def ready(screen):
    """The prompt box is drawn: `❯` between two rules (2.1.197 adds "? for shortcuts", 2.1.332 a mode line)."""
    lines = screen.splitlines()
    return any(line.startswith("❯") and i and lines[i - 1].startswith("──") for i, line in enumerate(lines))


def applied_at(box, since, route):
    """Seconds from the write until the session's statusline showed `route` ("not seen" when the
    client did not re-render within RELOAD_WAIT; then the wait itself is the margin)."""
    deadline = time.time() + RELOAD_WAIT
    while time.time() < deadline:
        lines = box.status_log.read_text().splitlines() if box.status_log.exists() else []
        seen = [float(line.split()[0]) for line in lines if line.split()[1] == route and float(line.split()[0]) >= since]
        if seen:
            time.sleep(0.5)
            return f"{seen[0] - since:.2f}s after the write"
        time.sleep(0.05)
    return "not seen"


def plan_connects(box):
    return [r for r in box.trap.requests if r["method"] == "CONNECT" and r["path"] == "api.anthropic.com:443"]


def prompt_to_plan(box, text):
    before = len(plan_connects(box))
    sent = len(box.or_messages.messages())
    box.pane.type(text)
    wait_for(lambda: len(plan_connects(box)) > before, TURN_TIMEOUT, what=f"{text!r} to reach api.anthropic.com", screen=box.pane.screen)
    time.sleep(1.0)  # whatever else the turn would send
    assert len(box.or_messages.messages()) == sent, "a plan prompt reached the OpenRouter fake"


def all_headers(fake):
    return [f"{k}: {v}" for r in fake.requests for k, v in r["headers"].items()]


def test_running_session_follows_settings(live):
    box, pane = live, live.pane
    pane.start([str(box.client)], env=box.client_env, cwd=box.project)
    pane.wait_screen(ready, timeout=60)

    # 1. The plan: the session goes to api.anthropic.com (refused at the trap).
    tick_to(box, 40.0, "plan")
    prompt_to_plan(box, "say pong one")

    # 2. A tick flips; the publisher writes the spill block; the same session follows.
    tick_to(box, 96.0, "openrouter")
    written, written_wall = publish(box, "openrouter"), time.time()
    text = box.settings.read_text()
    assert OR_KEY not in text and DECOY_KEY not in text and "sk-or-" not in text
    assert json.loads(text)["permissions"] == {"allow": ["Read"]} and json.loads(text)["statusLine"] == box.user_settings["statusLine"]
    assert box.settings.stat().st_mode & 0o777 == 0o644
    applied = applied_at(box, written_wall, "openrouter")
    pane.type("say pong two")
    opus = MODELS["SPILLOVER_OPUS_MODEL"]
    wait_for(lambda: [p for p in box.or_messages.messages() if p["body"]["model"] == opus], TURN_TIMEOUT,
             what="prompt 2 at the OpenRouter fake", screen=pane.screen)
    reached = time.monotonic() - written
    posts = box.or_messages.messages()
    for post in posts:  # the turn, and the client's background requests (haiku) alike
        assert post["path"] == "/api/v1/messages", post["path"]
        auth = post["headers"].get("authorization")
        key = post["headers"].get("x-api-key")
        assert auth == f"Bearer {OR_KEY}" or key == OR_KEY, post["headers"]
        assert {auth, key} <= {f"Bearer {OR_KEY}", OR_KEY, None}, post["headers"]
        assert post["body"]["model"] in MODELS.values(), post["body"]["model"]
    assert not [h for h in all_headers(box.or_messages) if "sk-ant-" in h or DECOY_KEY in h]
    runs = box.helper_log.read_text().splitlines() if box.helper_log.exists() else []
    assert runs, "the apiKeyHelper never ran"
    first = float(runs[0].split()[0]) - written_wall
    print(f"\n[{box.version}] statusline saw the route {applied}; helper first ran {first:.2f}s after the write; prompt 2 at the target {reached:.1f}s after it; helper runs: {runs}")

    # 3. Back to the plan. Phase 1: "" values, spillover's helper kept (it refuses now: were it
    # removed before the session applied the "" base URL, the OAuth token would go to the target).
    tick_to(box, 10.0, "plan")
    publish(box, "plan", phase=1)
    phase1_wall = time.time()
    data = json.loads(box.settings.read_text())
    assert data["apiKeyHelper"] == box.helper and data["env"]["ANTHROPIC_BASE_URL"] == "" and data["env"]["SPILLOVER_ROUTE"] == "plan"
    print(f"[{box.version}] statusline saw phase 1 (plan) {applied_at(box, phase1_wall, 'plan')}")
    # Phase 2, once sessions had time to apply phase 1: nothing of spillover's is left.
    assert cs.plan_phase(box.private, time.time()) == 1
    assert cs.plan_phase(box.private, time.time() + cs.SETTLE_SECONDS) == 2
    publish(box, "plan", phase=2)
    data = json.loads(box.settings.read_text())
    assert data == box.user_settings, data
    time.sleep(RELOAD_WAIT)
    prompt_to_plan(box, "say pong three")

    # Across all of it: no Anthropic credential at the target, no OpenRouter key on the plan path.
    assert not [h for h in all_headers(box.or_messages) if "sk-ant-" in h]
    assert not [h for h in all_headers(box.trap) if "sk-or-" in h]
    assert [r["method"] for r in box.trap.requests if r["method"] != "CONNECT"] == [], "the trap proxy was used as a server"
    assert pane.alive(), pane.screen()


def test_a_project_with_its_own_helper_is_blocked_not_sent(live):
    """A project's `.claude/settings.json` with its own apiKeyHelper beats spillover's: spilled, its
    prompts would carry the project's credential to OpenRouter. The prompt guard blocks them."""
    box, pane = live, live.pane
    project_helper = box.project / "key.sh"
    project_helper.write_text("#!/bin/sh\necho project-secret-key-0000\n")
    project_helper.chmod(0o755)
    (box.project / ".claude").mkdir()
    (box.project / ".claude" / "settings.json").write_text(json.dumps({"apiKeyHelper": str(project_helper)}))
    hook = {"type": "command", "command": f"{box.client_env['PATH'].split(os.pathsep)[0]}/spillover hook prompt"}
    user = json.loads(box.settings.read_text())
    user["hooks"] = {"UserPromptSubmit": [{"hooks": [hook]}]}
    box.settings.write_text(json.dumps(user, indent=2))
    pane.start([str(box.client)], env=box.client_env, cwd=box.project)
    pane.wait_screen(ready, timeout=60)

    tick_to(box, 96.0, "openrouter")
    publish(box, "openrouter")
    time.sleep(RELOAD_WAIT)
    pane.type("say pong blocked")
    pane.wait_screen(lambda s: "spillover blocked this prompt" in s, timeout=TURN_TIMEOUT)
    time.sleep(1.5)
    assert box.or_messages.messages() == [], "a blocked prompt reached the OpenRouter fake"
    assert not [h for h in all_headers(box.or_messages) if "project-secret" in h]


def test_env_credential_mode_reaches_a_bearer_only_target(live):
    """SPILLOVER_LIVE_CREDENTIAL=env: the key goes into a private settings.json as
    ANTHROPIC_AUTH_TOKEN (Bearer only), so a target that rejects `x-api-key` still answers."""
    box, pane = live, live.pane
    box.or_messages.reject_x_api_key = True
    box.settings.chmod(0o600)
    pane.start([str(box.client)], env=box.client_env, cwd=box.project)
    pane.wait_screen(ready, timeout=60)

    tick_to(box, 96.0, "openrouter")
    written_wall = time.time()
    publish(box, "openrouter", credential="env")
    assert "apiKeyHelper" not in json.loads(box.settings.read_text())
    print(f"\n[{box.version}] env mode: statusline saw the route {applied_at(box, written_wall, 'openrouter')}")
    pane.type("say pong env")
    opus = MODELS["SPILLOVER_OPUS_MODEL"]
    wait_for(lambda: [p for p in box.or_messages.messages() if p["body"]["model"] == opus], TURN_TIMEOUT,
             what="the prompt at the OpenRouter fake", screen=pane.screen)
    pane.wait_screen(lambda s: "pong" in s.split("say pong env", 1)[-1], timeout=TURN_TIMEOUT)
    for post in box.or_messages.messages():
        assert post["headers"].get("authorization") == f"Bearer {OR_KEY}", post["headers"]
        assert "x-api-key" not in post["headers"], post["headers"]

    tick_to(box, 10.0, "plan")
    phase1_wall = time.time()
    publish(box, "plan", phase=1, credential="env")
    applied_at(box, phase1_wall, "plan")
    prompt_to_plan(box, "say pong plan again")
    assert not [h for h in all_headers(box.or_messages) if "sk-ant-" in h]


def test_a_running_tool_call_follows_the_flip_back(live):
    """A session started while spilled; a tool call is running when the route returns to the plan:
    the follow-up request of that same turn (it carries the tool's result) goes to the plan."""
    box, pane = live, live.pane
    user = dict(box.user_settings, permissions={"allow": ["Read", "Bash"]})
    box.settings.write_text(json.dumps(user, indent=2) + "\n")
    box.user_settings = user
    tick_to(box, 96.0, "openrouter")
    publish(box, "openrouter")
    pane.start([str(box.client)], env=box.client_env, cwd=box.project)
    pane.wait_screen(ready, timeout=60)

    box.or_messages.bash_command = "sleep 12"
    pane.type("run the wait")
    turn = wait_for(lambda: [p for p in box.or_messages.messages() if "Bash" in {t.get("name") for t in p["body"].get("tools") or []}],
                    TURN_TIMEOUT, what="the turn at the OpenRouter fake", screen=pane.screen)
    started = time.time()
    assert turn[0]["headers"].get("authorization") == f"Bearer {OR_KEY}" or turn[0]["headers"].get("x-api-key") == OR_KEY
    before = len(plan_connects(box))

    tick_to(box, 10.0, "plan")
    phase1_wall = time.time()
    publish(box, "plan", phase=1)
    seen = applied_at(box, phase1_wall, "plan")
    publish(box, "plan", phase=2)
    flipped = time.time() - started
    assert flipped < 10, f"the flip took {flipped:.1f}s, longer than the tool call"
    wait_for(lambda: len(plan_connects(box)) > before, TURN_TIMEOUT, what="the follow-up request at api.anthropic.com", screen=pane.screen)
    print(f"\n[{box.version}] tool call running; statusline saw phase 1 {seen}; plan written {flipped:.1f}s into the tool call; follow-up went to the plan")
    time.sleep(1.0)
    results = [p for p in box.or_messages.messages() if p["body"]["messages"] and "tool_result" in json.dumps(p["body"]["messages"][-1])]
    assert results == [], "the follow-up request of the turn went to the OpenRouter fake"
    assert not [h for h in all_headers(box.or_messages) if "sk-ant-" in h]


def test_the_plan_phases_never_mix_credentials(live):
    """The two plan phases at a plan host made observable (a third fake as the base URL phase 1
    writes). Removing spillover's helper in phase 1 would be unsafe: with no helper the client
    sends the OAuth login to whatever base URL the session still has (observed: removing only the
    helper sent the OAuth token to the spill target). So in phase 1 the helper stays and refuses:
    the plan host gets an empty key, never the OpenRouter one; after phase 2, the OAuth login."""
    box, pane = live, live.pane
    plan_host = FakeAnthropic()
    try:
        tick_to(box, 96.0, "openrouter")
        publish(box, "openrouter")
        pane.start([str(box.client)], env=box.client_env, cwd=box.project)
        pane.wait_screen(ready, timeout=60)

        tick_to(box, 10.0, "plan")
        cfg = config_mod.load(environ=box.env)
        block = cs.managed_block("plan", targets.route_env("plan", cfg), box.helper, phase=1)
        block["env"]["ANTHROPIC_BASE_URL"] = plan_host.url
        assert cs.apply(str(box.settings), block, now=time.time(), state=box.private).status == "written"
        wall = time.time()
        print(f"\n[{box.version}] statusline saw phase 1 {applied_at(box, wall, 'plan')}")
        pane.type("say pong a")
        wait_for(lambda: plan_host.messages(), TURN_TIMEOUT, what="prompt a at the plan host", screen=pane.screen)
        time.sleep(1.0)
        for post in plan_host.messages():
            assert post["headers"].get("authorization", "Bearer").strip() == "Bearer", post["headers"]
            assert post["headers"].get("x-api-key", "") == "", post["headers"]
        assert box.or_messages.messages() == []

        plan_host.clear()
        publish(box, "plan", phase=2)
        data = json.loads(box.settings.read_text())
        data.setdefault("env", {})["ANTHROPIC_BASE_URL"] = plan_host.url  # still observable
        box.settings.write_text(json.dumps(data, indent=2) + "\n")
        time.sleep(RELOAD_WAIT)
        pane.type("say pong b")
        wait_for(lambda: plan_host.messages(), TURN_TIMEOUT, what="prompt b at the plan host", screen=pane.screen)
        time.sleep(1.0)
        for post in plan_host.messages():
            assert post["headers"].get("authorization") == f"Bearer {OAUTH_TOKEN}", post["headers"]
            assert "x-api-key" not in post["headers"], post["headers"]
        assert box.or_messages.messages() == []
        assert not [h for h in all_headers(box.or_messages) if "sk-ant-" in h]
    finally:
        plan_host.close()
