"""A running interactive `claude` session follows the route spillover publishes into its settings.json.

The real client (both pinned versions) runs interactively in a private tmux server, in a sandboxed
HOME and CLAUDE_CONFIG_DIR (OAuth plan credentials in `.credentials.json`, onboarding done and the
workspace trusted in `.claude.json`), with telemetry, auto-update and retries off. spillover is
wired as a user would: `spillover install statusline` and `spillover install live` (the settings
publisher, the StopFailure hook, the prompt guard), and the REAL `spillover tick` decides against
the fake OAuth usage endpoint and the fake OpenRouter REST API. Loopback fakes: a fake OpenRouter
Messages endpoint under `/api`, a trap proxy (HTTPS_PROXY) where an attempt to reach
api.anthropic.com — the plan — shows up as a refused CONNECT, and, where a test needs the plan to
answer (a wall), a fake plan host given to the session as its shell's ANTHROPIC_BASE_URL.

Where a test must see what the plan receives, not infer it, `intercept_plan` turns the trap into a
TLS-terminating one: it answers `CONNECT api.anthropic.com:443`, speaks TLS with a leaf signed by
a throwaway CA (made with `openssl` in the test's tmp dir) that the sessions trust through
NODE_EXTRA_CA_CERTS (both pinned clients honour it, and SSL_CERT_FILE too; without either they
refuse the leaf), and serves the fake Messages API inside, recording each request with
`host: "api.anthropic.com"`. Seen that way: after a spill ends (phase 2 applied), and in an
excluded project while the user settings say spilled, the plan gets `authorization: Bearer
<OAuth token>` and no `x-api-key`; between a session applying phase 1 and applying phase 2 it
gets an empty key (`authorization: Bearer`, `x-api-key: ""`).

Everything is judged from the fakes' request logs, not the screen. The statusline chains the
test's own logging statusLine, which records the route the session's live environment has.
"""

import json
import os
import time

import pytest

from spillover import guard_hook, policy
from spillover.publishers import claude_settings as cs
from tests import fakes
from tests.conftest import OAUTH_TOKEN, OR_KEY
from tests.e2e.conftest import QUIET_CLIENT, VERSIONS, claude_for
from tests.e2e.fake_anthropic import PLAN_HOST, FakeAnthropic
from tests.e2e.test_claude_code import MODELS
from tests.e2e.tmux import Pane, wait_for

DECOY_KEY = "sk-or-v1-decoy-from-the-session-environment-0000000000000000000000000dec"
TURN_TIMEOUT = 30
APPLY_TIMEOUT = 8.0
OPUS = MODELS["SPILLOVER_OPUS_MODEL"]
REACTION_OUT = "BENCH_REACTION_OUT"  # bench/run.py reads the measured reactions from this file (not SPILLOVER_*: the sandbox drops those)


def record_reaction(box, name, seconds, **parts):
    """Keep a measured reaction (seconds) for `make bench`, when it asked for them."""
    out = os.environ.get(REACTION_OUT)
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"name": name, "version": box.version, "seconds": seconds, **parts}) + "\n")


@pytest.fixture(params=VERSIONS, ids=VERSIONS)
def live_client(request):
    """(version, path) of a pinned interactive client."""
    return request.param, claude_for(request.param)


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
    # A short staleness so that the watchdog case runs in seconds; no desktop notifications.
    wired.config_file.write_text(text + "".join(f"{k}='{v}'\n" for k, v in MODELS.items())
                                 + "SPILLOVER_STALE_MINUTES='0.25'\nSPILLOVER_NOTIFY='off'\n")
    project = wired.root / "project"
    other = wired.root / "other"
    project.mkdir()
    other.mkdir()
    claude_dir = wired.claude_dir
    claude_dir.mkdir(parents=True, exist_ok=True)
    trusted = {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True, "allowedTools": []}
    (claude_dir / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "lastOnboardingVersion": version, "theme": "dark", "numStartups": 3,
        "projects": {str(project): trusted, str(other): trusted},
    }))
    settings = claude_dir / "settings.json"
    # The user's own statusline: spillover's chains it; it logs the route the session's live env has.
    status_log = tmp_path / "statusline.log"
    status_cmd = tmp_path / "statusline.sh"
    status_cmd.write_text(f'#!/bin/sh\ncat >/dev/null\necho "$(date +%s.%N) ${{SPILLOVER_ROUTE:-unset}} ${{ANTHROPIC_BASE_URL:-unset}} $PWD fable=${{ANTHROPIC_DEFAULT_FABLE_MODEL-unset}}" >> {status_log}\necho ok\n')
    status_cmd.chmod(0o755)
    user_settings = {"permissions": {"allow": ["Read", "Bash"]}, "theme": "dark", "statusLine": {"type": "command", "command": str(status_cmd)}}
    settings.write_text(json.dumps(user_settings, indent=2) + "\n")
    settings.chmod(0o644)
    wired.run("install", "statusline", check=True)
    out = wired.run("install", "live", check=True).stdout
    assert "hooks" in out, out
    env = {
        "PATH": os.pathsep.join([str(tools), "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(wired.home), "LANG": "C.UTF-8", **QUIET_CLIENT, "TERM": "xterm-256color", "TZ": "UTC",
        "CLAUDE_CONFIG_DIR": str(claude_dir),
        "XDG_CONFIG_HOME": wired.env["XDG_CONFIG_HOME"], "XDG_STATE_HOME": wired.env["XDG_STATE_HOME"],
        "XDG_CACHE_HOME": wired.env["XDG_CACHE_HOME"], "XDG_DATA_HOME": wired.env["XDG_DATA_HOME"],
        # The helper must read the key from the config file, never from the session's environment.
        "OPENROUTER_API_KEY": DECOY_KEY,
        # Only https goes to the trap: the loopback fakes are plain http and reached directly.
        "HTTPS_PROXY": anthropic.url, "NO_PROXY": "127.0.0.1,localhost",
    }
    wired.panes = []
    wired.trap, wired.or_messages, wired.project, wired.other = anthropic, or_messages, project, other
    wired.settings, wired.user_settings, wired.status_log = settings, user_settings, status_log
    wired.private = cs.private_state_path(str(wired.state_dir), str(settings))
    wired.client, wired.client_env, wired.version, wired.tmp = client, env, version, tmp_path
    yield wired
    for pane in wired.panes:
        pane.kill()
    wired.run("uninstall", "live")


def start(box, cwd=None, args=(), **extra_env):
    pane = Pane(box.tmp / f"tmux{len(box.panes)}.sock", name=f"s{len(box.panes)}")
    box.panes.append(pane)
    pane.start([str(box.client), *args], env=dict(box.client_env, **extra_env), cwd=cwd or box.project)
    pane.wait_screen(ready, timeout=60)
    return pane


def ready(screen):
    """The prompt box is drawn: `❯` between two rules (2.1.197 adds "? for shortcuts", 2.1.332 a mode line)."""
    lines = screen.splitlines()
    return any(line.startswith("❯") and i and lines[i - 1].startswith("──") for i, line in enumerate(lines))


def tick(box, percent, route, resets_in=None):
    """The real tick against the fake usage endpoint (what cron runs). A pushed tick may hold the
    lock for a moment: then the state is waited for."""
    resets_in = resets_in if resets_in is not None else (3600 if percent >= 50 else 5 * 3600)
    box.usage.set("/api/oauth/usage", json=fakes.usage_body(percent, resets_in=resets_in))
    box.run("tick", "--poll", check=True)
    wait_for(lambda: box.state()["route"] == route, 10, what=f"the route {route}")
    return time.time()


def status_lines(box, cwd=None):
    lines = box.status_log.read_text().splitlines() if box.status_log.exists() else []
    out = []
    for line in lines:
        at, route, base, pwd = (line.split() + ["", "", "", ""])[:4]
        if cwd is None or pwd == str(cwd):
            out.append((float(at), route, base))
    return out


def applied(box, since, route, cwd=None, timeout=APPLY_TIMEOUT):
    """Seconds from `since` until a statusline render of the session showed `route` (None: no
    render within the timeout; the client re-renders on its own events, not on a timer)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen = [at for at, r, _ in status_lines(box, cwd) if r == route and at >= since]
        if seen:
            return seen[0] - since
        time.sleep(0.05)
    return None


def settings_route(box):
    env = json.loads(box.settings.read_text()).get("env") or {}
    return env.get("SPILLOVER_ROUTE")


def plan_connects(box):
    return [r for r in box.trap.requests if r["method"] == "CONNECT" and r["path"] == f"{PLAN_HOST}:443"]


def intercept_plan(box):
    """The trap terminates the CONNECT to api.anthropic.com (a throwaway CA the sessions started
    from now on trust), so the plan's requests, credentials included, are seen, not inferred."""
    box.client_env["NODE_EXTRA_CA_CERTS"] = box.trap.intercept_plan(box.tmp / "plan-ca")


def plan_requests(box):
    """What reached the plan: the Messages requests through the intercepted tunnel; without
    intercept_plan, the refused CONNECTs (one per attempt)."""
    return box.trap.messages(PLAN_HOST) if box.trap.tls else plan_connects(box)


HELD = "switching this session"  # the prompt guard holds the prompt (e.g. in the second after phase 2)


def prompt_to_plan(box, pane, text):
    """Type `text`; return the plan requests it caused (with intercept_plan: its Messages POSTs).
    When the prompt guard held it (typed in the second after phase 2 removed spillover's helper),
    type it again, as its message says."""
    before = len(plan_requests(box))
    sent = len(box.or_messages.messages())
    pane.type(text)
    resent = False

    def reached():
        nonlocal resent
        if not resent and HELD in pane.screen():
            resent = True
            pane.keys("Escape")
            time.sleep(guard_hook.HELPER_APPLY_SECONDS)
            pane.type(text)
        return len(plan_requests(box)) > before

    wait_for(reached, TURN_TIMEOUT, what=f"{text!r} to reach api.anthropic.com", screen=pane.screen)
    time.sleep(1.0)  # whatever else the turn would send
    assert len(box.or_messages.messages()) == sent, "a plan prompt reached the OpenRouter fake"
    return plan_requests(box)[before:]


def settled_on_plan(box, pane, timeout=16):
    """Wait until phase 2 is in settings.json and the session had time to apply it (the client
    applies a change about a second after it is written; its env cannot show it: a removed key
    keeps its "" in a running process). Until then a session that applied phase 1 sends the plan
    an empty key (`authorization: Bearer`, `x-api-key: ""`: spillover's helper refuses on the plan
    route), as claude_settings.managed_block says."""
    wait_for(lambda: "apiKeyHelper" not in json.loads(box.settings.read_text()), timeout, what="phase 2", screen=pane.screen)
    time.sleep(max(0.0, os.stat(box.settings).st_mtime + 2.5 - time.time()))


def follows_a_tool_call(body):
    """The request carries a tool's result after the last answer (2.1.332 may add a system message after it)."""
    messages = body.get("messages") or []
    last = max((i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"), default=-1)
    return "tool_result" in json.dumps(messages[last + 1:])


def assert_plan_login(requests):
    """Requests at api.anthropic.com carry the plan's OAuth login, and nothing else."""
    assert requests
    for request in requests:
        assert request["host"] == PLAN_HOST, request
        assert request["headers"].get("authorization") == f"Bearer {OAUTH_TOKEN}", request["headers"]
        assert "x-api-key" not in request["headers"], request["headers"]


def prompt_to_target(box, pane, text, model=OPUS, resend=False):
    """Type `text`; return when it reached the OpenRouter fake. resend: when the prompt guard
    blocked it because the session was still switching, type it again (as its message says)."""
    before = len(box.or_messages.messages())
    pane.type(text)
    deadline = time.time() + TURN_TIMEOUT
    while time.time() < deadline:
        if [p for p in box.or_messages.messages()[before:] if p["body"]["model"] == model]:
            return time.time()
        if resend and "switching this session" in pane.screen():
            pane.keys("Escape")
            pane.type(text)
            resend = False
        time.sleep(0.05)
    raise AssertionError(f"{text!r} did not reach the OpenRouter fake:\n{pane.screen()}")


def all_headers(fake):
    return [f"{k}: {v}" for r in fake.requests for k, v in r["headers"].items()]


def assert_target_requests(box):
    for post in box.or_messages.messages():  # the turns and the client's background requests alike
        assert post["path"] == "/api/v1/messages", post["path"]
        auth, key = post["headers"].get("authorization"), post["headers"].get("x-api-key")
        assert auth == f"Bearer {OR_KEY}" or key == OR_KEY, post["headers"]
        assert {auth, key} <= {f"Bearer {OR_KEY}", OR_KEY, None}, post["headers"]
        assert post["body"]["model"] in MODELS.values(), post["body"]["model"]


def assert_no_crossed_credentials(box, *plan_fakes):
    assert not [h for h in all_headers(box.or_messages) if "sk-ant-" in h or DECOY_KEY in h]
    for fake in (box.trap,) + plan_fakes:  # the trap's records include what came through its tunnels
        assert not [h for h in all_headers(fake) if "sk-or-" in h]
    for request in [r for r in box.trap.requests if r["host"] == PLAN_HOST]:  # all of them, not only the turns
        # The OAuth login, or (a session between phase 1 and phase 2 of a flip back) an empty key.
        headers = request["headers"]
        assert headers.get("authorization") in (f"Bearer {OAUTH_TOKEN}", "Bearer"), headers
        assert headers.get("x-api-key") in (None, ""), headers
        assert (headers.get("x-api-key") is None) == (headers.get("authorization") != "Bearer"), headers


def assert_no_key_outside_state_dir(box):
    """The full key is in no file spillover writes outside its 0700 state dir (its config file aside)."""
    for root, _, files in os.walk(box.root):
        for name in files:
            path = os.path.join(root, name)
            if path.startswith(str(box.state_dir)) or path == str(box.config_file) or "node_modules" in path:
                continue
            try:
                with open(path, "rb") as handle:
                    assert OR_KEY.encode() not in handle.read(), path
            except OSError:
                pass


def test_running_session_follows_the_tick(live):
    """Scenarios 1-4, 7 and 9 in one session: plan → (tick 96%) target → a tool call running when
    the reset lands → plan → (scheduler dead, reset passed) the statusline itself brings it back."""
    box = live
    intercept_plan(box)
    pane = start(box)

    # 1. The plan: the session goes to api.anthropic.com (through the trap's tunnel) with its login.
    tick(box, 40.0, "plan")
    assert_plan_login(prompt_to_plan(box, pane, "say pong one"))

    # 2. The real tick sees 96% and flips; prompt 2 in the same session reaches the target.
    flipped = tick(box, 96.0, "openrouter")
    assert settings_route(box) == "openrouter"
    text = box.settings.read_text()
    assert "sk-or-" not in text and DECOY_KEY not in text
    data = json.loads(text)
    assert data["permissions"] == box.user_settings["permissions"] and "spillover" in data["statusLine"]["command"]
    assert cs.helper_target(data["apiKeyHelper"]) == "openrouter"
    assert box.settings.stat().st_mode & 0o777 == 0o644
    seen = applied(box, flipped, "openrouter")
    reached = prompt_to_target(box, pane, "say pong two") - flipped
    assert_target_requests(box)
    print(f"\n[{box.version}] flip: statusline saw it {seen and f'{seen:.2f}s'}; prompt 2 at the target {reached:.1f}s after the tick")

    # 3+4. A tool call is running when the window resets: the follow-up request of that turn
    # goes to the plan; phase 2 follows the statusline's report (or the settle timer).
    go = box.root / "tool-may-end"
    box.or_messages.bash_command = f"while [ ! -e {go} ]; do sleep 0.1; done"  # runs until the flip back is done
    prompt_to_target(box, pane, "run the wait")
    before = len(plan_requests(box))
    back = tick(box, 10.0, "plan")
    assert settings_route(box) == "plan"
    assert cs.helper_target(json.loads(box.settings.read_text()).get("apiKeyHelper")) == "openrouter"  # phase 1 keeps it
    wait_for(lambda: "apiKeyHelper" not in json.loads(box.settings.read_text()), 12, what="phase 2")
    phase2 = time.time() - back
    assert json.loads(box.settings.read_text()) == dict(box.user_settings, statusLine=data["statusLine"], hooks=data["hooks"])
    assert len(plan_requests(box)) == before, "the turn went on before its tool call ended"
    # The tool ends once the session has dropped the helper too (the guard's HELPER_APPLY_SECONDS
    # after phase 2's write, plus a second): a request in between still gets the refusing helper's
    # empty key (see the README's troubleshooting), which the prompt guard can hold but a running
    # turn's follow-up cannot wait for.
    time.sleep(max(0.0, box.settings.stat().st_mtime + guard_hook.HELPER_APPLY_SECONDS + 1.0 - time.time()))
    go.touch()
    wait_for(lambda: len(plan_requests(box)) > before, TURN_TIMEOUT, what="the follow-up request at api.anthropic.com", screen=pane.screen)
    time.sleep(1.0)
    results = [p for p in box.or_messages.messages() if follows_a_tool_call(p["body"])]
    assert results == [], "the follow-up request of the turn went to the OpenRouter fake"
    follow_up = plan_requests(box)[before:]
    assert follows_a_tool_call(follow_up[0]["body"]), follow_up[0]["body"]
    # The spill is over in the session, credential included: the plan sees the OAuth login, not the key.
    assert_plan_login(follow_up)
    print(f"[{box.version}] reset: phase 2 {phase2:.1f}s after the tick; the running turn's follow-up went to the plan "
          f"with authorization {follow_up[0]['headers']['authorization'][:20]}…")
    box.or_messages.bash_command = None
    sent = len(box.or_messages.messages())
    assert_plan_login(prompt_to_plan(box, pane, "say pong three"))
    assert len(box.or_messages.messages()) == sent

    # 9. Spilled again, with a reset in a few seconds; then the scheduler stops. Once the decision
    # is stale and the reset passed, the next statusline render brings the session back.
    tick(box, 97.0, "openrouter", resets_in=12)  # passed by the time the decision is stale
    applied(box, time.time() - 1, "openrouter")
    stale_at = box.state()["decided_at"] + box.state()["stale_after"]
    time.sleep(max(0.0, stale_at - time.time()) + 0.5)
    pane.type("x", enter=False)  # any render will do: a keystroke redraws the prompt box
    pane.keys("BSpace")
    wait_for(lambda: settings_route(box) in ("plan", None), 16, what="the statusline's watchdog to publish the plan", screen=pane.screen)
    assert box.state()["route"] == "openrouter"  # no tick ran: the statusline did it
    assert "SPILLOVER_ROUTE=plan" in box.route_env() or "# route: plan" in box.route_env()
    watched = time.time()
    assert applied(box, watched - 1, "plan", timeout=12) is not None, "the session did not apply the plan"
    settled_on_plan(box, pane)
    assert box.state()["route"] == "openrouter"  # still no tick: the statusline wrote phase 2 as well
    assert_plan_login(prompt_to_plan(box, pane, "say pong four"))

    # 7. Across all of it: no Anthropic credential at the target, no OpenRouter key on the plan path.
    assert_no_crossed_credentials(box)
    assert [r["method"] for r in box.trap.requests if r["method"] != "CONNECT" and r["host"] is None] == [], "the trap proxy was used as a server"
    assert box.trap.tls_errors == []
    assert_no_key_outside_state_dir(box)
    assert pane.alive(), pane.screen()


def test_a_wall_flips_running_sessions_through_the_stopfailure_hook(live):
    """Scenarios 5, 6 and 8: the plan (a fake plan host here, so that it can answer a wall) answers
    a five-hour wall and no tick is scheduled: the StopFailure hook records it and starts a tick,
    which flips; the next prompt of that session goes to the target. An excluded project's session
    sends nothing to the target meanwhile. A session started while spilled returns to the plan."""
    box = live
    plan_host = FakeAnthropic()
    try:
        box.run("exclude", str(box.other), check=True)
        assert (box.other / ".claude" / "settings.local.json").exists()
        tick(box, 40.0, "plan")
        intercept_plan(box)
        pane = start(box, ANTHROPIC_BASE_URL=plan_host.url)
        excluded = start(box, cwd=box.other)

        plan_host.mode = "429wall"
        plan_host.reset_in = 3600
        pane.type("say pong wall")
        wait_for(lambda: plan_host.messages(), TURN_TIMEOUT, what="the prompt at the plan host", screen=pane.screen)
        wall = time.time()
        wait_for(lambda: box.state()["route"] == "openrouter", 10, what="the pushed tick to flip", screen=pane.screen)
        flipped = time.time() - wall
        walls = (box.state_dir / "walls.jsonl").read_text().splitlines()
        assert json.loads(walls[-1])["bucket"] == "five_hour", walls
        assert plan_host.requests[-1]["headers"].get("authorization") == f"Bearer {OAUTH_TOKEN}"
        if "Esc to cancel" in pane.screen():
            pane.keys("Escape")  # 2.1.332 waits for the reset to continue by itself
        wait_for(lambda: settings_route(box) == "openrouter", 5, what="the flip in settings.json")
        time.sleep(1.0)  # the client applies a change about a second after it is written
        reached = prompt_to_target(box, pane, "say pong after the wall", resend=True) - wall
        seen = applied(box, wall, "openrouter", cwd=box.project, timeout=1)
        record_reaction(box, "wall_to_target", reached, flipped=flipped)
        print(f"\n[{box.version}] wall: pushed tick flipped {flipped:.1f}s after it; statusline saw it "
              f"{seen and f'{seen:.2f}s'}; the next prompt reached the target {reached:.1f}s after the wall")
        assert flipped < 15, f"the StopFailure tick took {flipped:.1f}s"  # the aim, < 5 s, is make bench's row
        assert_target_requests(box)

        # 8. The excluded project's session, started before the spill, stays on the plan, on its
        # OAuth login: the local file's `"apiKeyHelper": ""` cancels spillover's helper.
        sent = len(box.or_messages.messages())
        assert settings_route(box) == "openrouter"
        assert cs.helper_target(json.loads(box.settings.read_text())["apiKeyHelper"]) == "openrouter"
        at_plan = prompt_to_plan(box, excluded, "say pong excluded")
        leaked = [p for p in box.or_messages.messages()[sent:] if "say pong excluded" in json.dumps(p["body"])]
        assert leaked == [], "an excluded project's prompt reached the target"
        assert_plan_login(at_plan)
        print(f"[{box.version}] excluded: {len(at_plan)} plan request(s), authorization "
              f"{at_plan[0]['headers']['authorization'][:20]}…, no x-api-key, while settings.json says spilled")

        # 6. A session started while spilled goes to the target, and back to the plan after the reset.
        late = start(box)
        prompt_to_target(box, late, "say pong late")
        (box.state_dir / "walls.jsonl").unlink()  # the wall's reset passed (the fake's 1 h, shortened)
        tick(box, 10.0, "plan")
        wait_for(lambda: "apiKeyHelper" not in json.loads(box.settings.read_text()), 12, what="phase 2")
        # Typed at once: until the client drops the removed helper (about a second) the session would
        # send the plan an empty key, so the prompt guard holds the prompt; typed again, it carries
        # the OAuth login. (The client's own background requests in that second are not prompts.)
        held = time.time()
        sent_plan = prompt_to_plan(box, late, "say pong late plan")
        turns = [r for r in sent_plan if "say pong late plan" in json.dumps(r["body"])]
        assert_plan_login(turns)
        print(f"[{box.version}] back on the plan: the prompt typed right after phase 2 reached it with the OAuth login "
              f"{turns[0]['at'] - held:.1f}s later")
        assert_no_crossed_credentials(box, plan_host)
        assert box.trap.tls_errors == []
    finally:
        plan_host.close()


def test_a_project_with_its_own_helper_is_blocked_not_sent(live):
    """A project's `.claude/settings.json` with its own apiKeyHelper beats spillover's: spilled, its
    prompts would carry the project's credential to OpenRouter. The prompt guard blocks them."""
    box = live
    project_helper = box.project / "key.sh"
    project_helper.write_text("#!/bin/sh\necho project-secret-key-0000\n")
    project_helper.chmod(0o755)
    (box.project / ".claude").mkdir()
    (box.project / ".claude" / "settings.json").write_text(json.dumps({"apiKeyHelper": str(project_helper)}))
    pane = start(box)
    flipped = tick(box, 96.0, "openrouter")
    applied(box, flipped, "openrouter")
    pane.type("say pong blocked")
    pane.wait_screen(lambda s: "spillover blocked this prompt" in s, timeout=TURN_TIMEOUT)
    time.sleep(1.5)
    assert box.or_messages.messages() == [], "a blocked prompt reached the OpenRouter fake"
    assert not [h for h in all_headers(box.or_messages) if "project-secret" in h]
    doctor = box.run("doctor").stdout
    assert str(box.project / ".claude" / "settings.json") in doctor and "apiKeyHelper" in doctor, doctor


def test_env_credential_mode_reaches_a_bearer_only_target(live):
    """SPILLOVER_LIVE_CREDENTIAL=env: the key goes into a private settings.json as
    ANTHROPIC_AUTH_TOKEN (Bearer only), so a target that rejects `x-api-key` still answers; with a
    group-readable or symlinked settings.json that mode is refused with the reason."""
    box = live
    with box.config_file.open("a") as handle:
        handle.write("SPILLOVER_LIVE_CREDENTIAL='env'\n")
    box.or_messages.reject_x_api_key = True
    box.settings.chmod(0o644)
    tick(box, 96.0, "openrouter")
    assert settings_route(box) is None
    status = json.loads((box.state_dir / "live-status.json").read_text())
    assert "readable by others" in status[str(box.settings)]["reason"], status
    tick(box, 10.0, "plan")

    box.settings.chmod(0o600)
    pane = start(box)
    flipped = tick(box, 96.0, "openrouter")
    assert "apiKeyHelper" not in json.loads(box.settings.read_text())
    assert applied(box, flipped, "openrouter", timeout=25) is not None, "the session did not apply the flip"
    prompt_to_target(box, pane, "say pong env")
    pane.wait_screen(lambda s: "pong" in s.split("say pong env", 1)[-1], timeout=TURN_TIMEOUT)
    for post in box.or_messages.messages():
        assert post["headers"].get("authorization") == f"Bearer {OR_KEY}", post["headers"]
        assert "x-api-key" not in post["headers"], post["headers"]
    tick(box, 10.0, "plan")
    wait_for(lambda: "ANTHROPIC_AUTH_TOKEN" not in box.settings.read_text(), 12, what="phase 2")
    prompt_to_plan(box, pane, "say pong plan again")
    assert not [h for h in all_headers(box.or_messages) if "sk-ant-" in h]


def test_the_echo_of_the_clients_own_write_is_healed_by_the_statusline(live):
    """2.1.1xx drops a change within 5 s of its own write to settings.json. A flip written 2-4 s
    after the client's own write still reaches the session: its statusline sees the session's
    route differ from the published one and rewrites the file."""
    box = live
    pane = start(box)
    tick(box, 40.0, "plan")
    pane.type("/model sonnet")  # the client writes settings.json itself
    wait_for(lambda: "sonnet" in json.loads(box.settings.read_text()).get("model", ""), 10, what="the client's own write", screen=pane.screen)
    own = os.stat(box.settings).st_mtime
    time.sleep(max(0.0, own + 2.0 - time.time()))  # the flip must land 2-5 s after the client's own write
    flipped = tick(box, 96.0, "openrouter")
    written = os.stat(box.settings).st_mtime
    assert 2.0 <= written - own <= 5.0, f"the flip was written {written - own:.1f}s after the client's own write"
    seen = applied(box, flipped, "openrouter", timeout=25)
    assert seen is not None, "the session never applied the flip"
    healed = (box.state_dir / "heal.stamp").exists()
    reached = prompt_to_target(box, pane, "say pong echo", model=MODELS["SPILLOVER_SONNET_MODEL"], resend=True) - flipped
    print(f"\n[{box.version}] echo case: the flip written {written - own:.1f}s after the client's write; session applied it "
          f"{seen:.1f}s after the tick ({'healed by the statusline' if healed else 'no heal needed'}); prompt at the target {reached:.1f}s after it")
    assert_target_requests(box)


FABLE_ALIAS = "ANTHROPIC_DEFAULT_FABLE_MODEL"


def turn(fake, text):
    """The first POST that carries the prompt `text`: its turn (None: not there yet). The later
    turns carry it too, in their history; 2.1.332 sends a system-reminder message after it."""
    found = [m for m in fake.messages() if text in json.dumps(m["body"].get("messages") or [])]
    return found[0] if found else None


def prompt_to_plan_host(box, pane, plan_host, text):
    """Type `text`; return the POST of its turn at the plan host."""
    pane.type(text)
    return wait_for(lambda: turn(plan_host, text), TURN_TIMEOUT, what=f"{text!r} at the plan host", screen=pane.screen)


def settings_env(box):
    return json.loads(box.settings.read_text()).get("env") or {}


def session_alias(box, pane, value, since, timeout=15):
    """Until a statusline render of the running session, after `since`, shows the fable alias as
    `value` ("" for set-but-empty): the client applied the write. A keystroke redraws the prompt box."""
    def rendered():
        pane.type("x", enter=False)
        pane.keys("BSpace")
        time.sleep(0.3)
        for line in (box.status_log.read_text().splitlines() if box.status_log.exists() else []):
            words = line.split()
            if float(words[0]) >= since and words[-1] == f"fable={value}":
                return True
        return False

    wait_for(rendered, timeout, what=f"the session to apply {FABLE_ALIAS}={value!r}", screen=pane.screen)


def test_a_fable_wall_downshifts_the_running_session_on_the_plan(live):
    """Scenario (e) live: a session on the plan (a fake plan host as its shell's base URL) runs on
    the `fable` alias. The real tick reads the Fable weekly cap at its wall (limits[] only) with the
    five-hour window at 40%: the route stays the plan, and settings.json gets the fable alias on
    the plan's Opus id alone, so the next prompt of that session asks the plan for Opus. At the
    Fable reset the alias is "" first (the client's default again), then removed."""
    box = live
    opus = policy.DEFAULT_PLAN_MODELS["opus"]  # the fixture's config sets no SPILLOVER_PLAN_OPUS_MODEL
    plan_host = FakeAnthropic()
    try:
        tick(box, 40.0, "plan")
        pane = start(box, args=("--model", "fable"), ANTHROPIC_BASE_URL=plan_host.url)
        fable = prompt_to_plan_host(box, pane, plan_host, "say pong fable")["body"]["model"]
        assert fable.startswith("claude-fable-"), fable  # the client's own default for the alias

        # The real tick: the Fable weekly cap at its wall, everything else with headroom.
        box.usage.set("/api/oauth/usage", json=fakes.usage_body(40.0, resets_in=3 * 3600, limits=True, fable=100.0))
        box.run("tick", "--poll", check=True)
        wait_for(lambda: settings_env(box).get(FABLE_ALIAS), 10, what="the downshift in settings.json")
        written = box.settings.stat().st_mtime
        state = box.state()
        assert state["route"] == "plan", state["reason"]
        assert [(s["from"], s["model"]) for s in state["details"]["downshift"]] == [("fable", opus)], state["details"]
        env = settings_env(box)
        assert env == {FABLE_ALIAS: opus, "SPILLOVER_ROUTE": "plan"}, env  # no ANTHROPIC_BASE_URL: still the plan host
        session_alias(box, pane, opus, written)
        shifted = prompt_to_plan_host(box, pane, plan_host, "say pong downshifted")
        down = shifted["at"] - written
        assert shifted["body"]["model"] == opus, f"the running session kept {shifted['body']['model']}"

        # The Fable cap resets (a reading of its next window): the alias is "" first...
        box.usage.set("/api/oauth/usage", json=fakes.usage_body(40.0, resets_in=3 * 3600, limits=True, fable=2.0,
                                                                fable_resets_in=7 * 86400))
        box.run("tick", "--poll", check=True)
        wait_for(lambda: settings_env(box).get(FABLE_ALIAS) == "", 10, what='the fable alias "" in settings.json')
        written = box.settings.stat().st_mtime
        state = box.state()
        assert state["route"] == "plan" and not state["details"].get("downshift"), state
        # Phase 1 (phase 2 comes SETTLE_SECONDS after the write), and "" for the alias alone:
        # a "" base URL would stay in the session after phase 2 and send it to api.anthropic.com.
        assert settings_env(box) == {FABLE_ALIAS: "", "SPILLOVER_ROUTE": "plan"}, settings_env(box)
        session_alias(box, pane, "", written)
        back = prompt_to_plan_host(box, pane, plan_host, "say pong fable again")
        up = back["at"] - written
        assert back["body"]["model"] == fable, f"with the alias \"\" the session asked for {back['body']['model']}"

        # ...then removed (phase 2), and the removed key left no Opus behind in the running session.
        wait_for(lambda: FABLE_ALIAS not in settings_env(box), 12, what="phase 2")
        phase2 = time.time() - written
        assert phase2 >= cs.SETTLE_SECONDS, f"the alias was removed {phase2:.1f}s after its \"\""
        data = json.loads(box.settings.read_text())
        assert data == dict(box.user_settings, statusLine=data["statusLine"], hooks=data["hooks"]), data
        after = prompt_to_plan_host(box, pane, plan_host, "say pong fable after")
        assert after["body"]["model"] == fable, f"after phase 2 the session asked for {after['body']['model']}"

        print(f"\n[{box.version}] downshift: fable={fable}; prompt on {opus} {down:.1f}s after the write; "
              f"back on {fable} {up:.1f}s after the \"\" write; phase 2 {phase2:.1f}s after it")
        assert box.or_messages.messages() == [], "a plan prompt reached the OpenRouter fake"
        for post in plan_host.messages():
            assert post["headers"].get("authorization") == f"Bearer {OAUTH_TOKEN}", post["headers"]
        assert_no_crossed_credentials(box, plan_host)
        assert pane.alive(), pane.screen()
    finally:
        plan_host.close()
