"""The route spillover publishes is the route the real Claude Code client takes.

Every client run is `timeout 60 claude -p "say pong" --output-format json < /dev/null` in a clean
environment (`client_env`: what `env -i` leaves plus a sandboxed HOME). It reaches the
environment the way a user's does: through real `direnv exec` of a directory whose `.envrc` says
`use spillover`, or from a bash, zsh or fish session with spillover's prompt hook, while the
cron tick (run here by the test) flips the route underneath. The fake Anthropic server on
loopback logs what the client sends.

How the plan route is shown to reach the client clean: with no ANTHROPIC_* variable the client
uses the `/login` subscription, i.e. the OAuth credentials in the sandbox's `.credentials.json`
and Anthropic's own host. The run goes through `HTTPS_PROXY` pointed at the fake, so that attempt
shows up as a refused `CONNECT api.anthropic.com:443` instead of leaving the machine; and the
fake's Messages endpoint, which every spill route pointed at, gets nothing. The environment the
shell or direnv hands the client is also dumped right where the client starts.

The anthropic route unsets ANTHROPIC_BASE_URL on purpose (the client talks to api.anthropic.com);
to see its headers the test sets ANTHROPIC_BASE_URL itself, after direnv or the hook has applied
the route, for that one command. Only the host changes: the auth headers come from what the route
left, so a leftover ANTHROPIC_AUTH_TOKEN from the OpenRouter route would still show as a Bearer.
"""

import json
import os
import subprocess
import time

import pytest

from spillover import config as config_mod
from tests import fakes
from tests.conftest import ANT_KEY, OAUTH_TOKEN, OR_KEY

MODELS = {
    "SPILLOVER_OPUS_MODEL": "anthropic/claude-opus-e2e-O",
    "SPILLOVER_SONNET_MODEL": "anthropic/claude-sonnet-e2e-S",
    "SPILLOVER_HAIKU_MODEL": "anthropic/claude-haiku-e2e-H",
    "SPILLOVER_SUBAGENT_MODEL": "anthropic/claude-sonnet-e2e-sub",
}
CLIENT_ARGS = ["timeout", "60", "claude", "-p", "say pong", "--output-format", "json"]
ROUTING = ("ANTHROPIC_BASE_URL", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")


@pytest.fixture
def e2e(wired, anthropic, client_env):
    """wired, with OpenRouter's inference base URL on the fake Anthropic server, distinctive model
    slugs, an Anthropic API key for the anthropic target, and the direnv library installed."""
    text = wired.config_file.read_text().replace(f"{wired.openrouter.url}/api'", f"{anthropic.url}/api'")
    assert f"SPILLOVER_OPENROUTER_BASE_URL='{anthropic.url}/api'" in text
    text += "".join(f"{k}='{v}'\n" for k, v in MODELS.items()) + f"SPILLOVER_ANTHROPIC_API_KEY='{ANT_KEY}'\n"
    wired.config_file.write_text(text)
    wired.run("install", "direnv", check=True)
    lib = wired.home / ".config/direnv/lib/spillover.sh"
    assert "use_spillover()" in lib.read_text()
    project = wired.root / "project"
    project.mkdir()
    (project / ".envrc").write_text("use spillover\n")
    subprocess.run(["direnv", "allow", str(project)], env=client_env, check=True, capture_output=True)
    wired.anthropic, wired.client_env, wired.project = anthropic, client_env, project
    return wired


def tick_to(box, percent, route, **env):
    # Utilization never falls within a window: a low reading after a high one is of the next window.
    box.usage.set("/api/oauth/usage", json=fakes.usage_body(percent, resets_in=3600 if percent >= 50 else 5 * 3600))
    box.run("tick", "--poll", env=env, check=True)
    assert box.state()["route"] == route, box.state()["reason"]


def result_of(stdout):
    try:
        return json.loads(stdout)
    except ValueError:
        raise AssertionError(f"the client printed no JSON result: {stdout!r}") from None


def assert_openrouter_request(fake, out, model=MODELS["SPILLOVER_OPUS_MODEL"]):
    result = result_of(out)
    assert result["is_error"] is False and result["result"] == "pong", result
    posts = fake.messages()
    assert len(posts) == 1, [(r["method"], r["path"]) for r in fake.requests]
    post = posts[0]
    assert post["path"] == "/api/v1/messages" and "beta=true" in post["query"]
    assert post["headers"].get("authorization") == f"Bearer {OR_KEY}"
    assert "x-api-key" not in post["headers"], "both auth headers sent: ANTHROPIC_API_KEY must be set and empty"
    assert post["body"]["model"] == model
    assert post["body"]["stream"] is True


def assert_anthropic_request(fake, out, prefix):
    result = result_of(out)
    assert result["is_error"] is False and result["result"] == "pong", result
    posts = fake.messages()
    assert len(posts) == 1, [(r["method"], r["path"]) for r in fake.requests]
    post = posts[0]
    assert post["path"] == f"{prefix}/v1/messages"
    assert post["headers"].get("x-api-key") == ANT_KEY
    assert "authorization" not in post["headers"], "an OpenRouter bearer token leaked into the anthropic route"
    # The OpenRouter slugs are gone too: the client asks for its own default model.
    assert "/" not in post["body"]["model"] and "e2e" not in post["body"]["model"], post["body"]["model"]


def assert_plan(fake, out, env_text):
    names = {line.split("=", 1)[0] for line in env_text.splitlines() if "=" in line}
    leaked = sorted(n for n in names if n.startswith("ANTHROPIC_") or n == "CLAUDE_CODE_SUBAGENT_MODEL")
    assert not leaked, f"on the plan route the client still gets {leaked}"
    assert "SPILLOVER_ROUTE=plan" in env_text.splitlines()
    assert fake.messages() == [], "on the plan route the client still talked to the spill target"
    connects = [r["path"] for r in fake.requests if r["method"] == "CONNECT"]
    assert connects and all(c == "api.anthropic.com:443" for c in connects), fake.requests
    result = result_of(out)
    assert result["is_error"] is True and result["result"] != "pong"


def trap(fake):
    """HTTPS_PROXY into the fake: an attempt to reach a real host is logged and refused."""
    return {"HTTPS_PROXY": fake.url, "HTTP_PROXY": fake.url, "NO_PROXY": ""}


# --- direnv ------------------------------------------------------------------------------------


def direnv_exec(box, *command, outer=None):
    env = dict(box.client_env, **(outer or {}))
    return subprocess.run(["direnv", "exec", str(box.project), *command], cwd=box.project, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def test_direnv_use_spillover_routes_the_real_client(e2e):
    fake = e2e.anthropic
    # The user's own shell may hold stale values from an earlier spill: the route must win.
    stale = {"ANTHROPIC_BASE_URL": "http://127.0.0.1:9/stale", "ANTHROPIC_AUTH_TOKEN": "stale-token",
             "ANTHROPIC_API_KEY": "stale-key", "ANTHROPIC_DEFAULT_OPUS_MODEL": "stale/opus"}

    tick_to(e2e, 96.0, "openrouter")
    proc = direnv_exec(e2e, *CLIENT_ARGS, outer=stale)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "spillover: route openrouter" in proc.stderr  # direnv's log line from use_spillover
    assert_openrouter_request(fake, proc.stdout)
    fake.clear()
    proc = direnv_exec(e2e, *CLIENT_ARGS, "--model", "sonnet", outer=stale)
    assert_openrouter_request(fake, proc.stdout, model=MODELS["SPILLOVER_SONNET_MODEL"])
    fake.clear()

    tick_to(e2e, 96.0, "anthropic", SPILLOVER_TARGETS="anthropic")
    proc = direnv_exec(e2e, "env", f"ANTHROPIC_BASE_URL={fake.url}/direct", *CLIENT_ARGS, outer=stale)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_anthropic_request(fake, proc.stdout, "/direct")
    fake.clear()

    tick_to(e2e, 10.0, "plan")
    env_dump = direnv_exec(e2e, "env", outer=dict(stale, **trap(fake))).stdout
    proc = direnv_exec(e2e, *CLIENT_ARGS, outer=dict(stale, **trap(fake)))
    assert_plan(fake, proc.stdout, env_dump)

    assert_no_secret_printed(proc)


def assert_no_secret_printed(proc):
    for secret in (OR_KEY, ANT_KEY, OAUTH_TOKEN):
        assert secret not in proc.stderr, "direnv's log shows a secret"


# --- the prompt hook ---------------------------------------------------------------------------

# Each script: install the hook as an rc file would, then for each step wait for the test's
# go-file (the test has run the tick), run what the shell runs before drawing a prompt, dump the
# environment and start the client as the user would at that prompt, and drop an ack-file.
# bash and zsh run their prompt hooks from PROMPT_COMMAND / precmd_functions; fish from the
# fish_prompt event.
HOOK_SCRIPTS = {
    "bash": r"""
eval "$(spillover hook bash)"
step() { while [[ ! -e $D/go.$1 ]]; do sleep 0.05; done; for _c in "${PROMPT_COMMAND[@]}"; do eval "$_c"; done; env >"$D/env.$1"; }
step 1; timeout 60 claude -p "say pong" --output-format json </dev/null >"$D/out.1"; : >"$D/ack.1"
step 2; env ANTHROPIC_BASE_URL="$FAKE/direct" timeout 60 claude -p "say pong" --output-format json </dev/null >"$D/out.2"; : >"$D/ack.2"
step 3; env HTTPS_PROXY="$FAKE" HTTP_PROXY="$FAKE" NO_PROXY= timeout 60 claude -p "say pong" --output-format json </dev/null >"$D/out.3"; : >"$D/ack.3"
""",
    "zsh": r"""
eval "$(spillover hook zsh)"
step() { while [[ ! -e $D/go.$1 ]]; do sleep 0.05; done; for _f in $precmd_functions; do $_f; done; env >"$D/env.$1"; }
step 1; timeout 60 claude -p "say pong" --output-format json </dev/null >"$D/out.1"; : >"$D/ack.1"
step 2; env ANTHROPIC_BASE_URL="$FAKE/direct" timeout 60 claude -p "say pong" --output-format json </dev/null >"$D/out.2"; : >"$D/ack.2"
step 3; env HTTPS_PROXY="$FAKE" HTTP_PROXY="$FAKE" NO_PROXY= timeout 60 claude -p "say pong" --output-format json </dev/null >"$D/out.3"; : >"$D/ack.3"
""",
    "fish": r"""
spillover hook fish | source
function step; while not test -e $D/go.$argv[1]; sleep 0.05; end; emit fish_prompt; env >$D/env.$argv[1]; end
step 1; timeout 60 claude -p "say pong" --output-format json </dev/null >$D/out.1; true >$D/ack.1
step 2; env ANTHROPIC_BASE_URL="$FAKE/direct" timeout 60 claude -p "say pong" --output-format json </dev/null >$D/out.2; true >$D/ack.2
step 3; env HTTPS_PROXY="$FAKE" HTTP_PROXY="$FAKE" NO_PROXY= timeout 60 claude -p "say pong" --output-format json </dev/null >$D/out.3; true >$D/ack.3
""",
}
SHELL_CMD = {"bash": ["bash", "--norc", "--noprofile", "-c"], "zsh": ["zsh", "-f", "-c"], "fish": ["fish", "--no-config", "-c"]}


class HookSession:
    """One long-lived shell with the hook, stepped by the test between ticks."""

    def __init__(self, box, shell):
        self.dir = box.root / f"hook-{shell}"
        self.dir.mkdir()
        env = dict(box.client_env, D=str(self.dir), FAKE=box.anthropic.url)
        self.proc = subprocess.Popen(SHELL_CMD[shell] + [HOOK_SCRIPTS[shell]], cwd=box.root, env=env,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def step(self, n, timeout=90):
        (self.dir / f"go.{n}").touch()
        deadline = time.monotonic() + timeout
        while not (self.dir / f"ack.{n}").exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.proc.kill()
                out, err = self.proc.communicate()
                raise AssertionError(f"the shell stopped before step {n} finished (exit {self.proc.returncode}):\n{out}\n{err}")
            time.sleep(0.05)
        return (self.dir / f"out.{n}").read_text(), (self.dir / f"env.{n}").read_text()

    def close(self):
        try:
            self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        return self.proc.communicate()


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_prompt_hook_routes_the_real_client(e2e, shell):
    fake = e2e.anthropic
    tick_to(e2e, 96.0, "openrouter")
    session = HookSession(e2e, shell)
    try:
        out, env_text = session.step(1)
        assert f"ANTHROPIC_BASE_URL={fake.url}/api" in env_text.splitlines()
        assert_openrouter_request(fake, out)
        fake.clear()

        # openrouter -> anthropic while the shell sits at its prompt: the bearer token must go.
        tick_to(e2e, 96.0, "anthropic", SPILLOVER_TARGETS="anthropic")
        out, env_text = session.step(2)
        assert "ANTHROPIC_AUTH_TOKEN" not in env_text and "ANTHROPIC_BASE_URL" not in env_text
        assert_anthropic_request(fake, out, "/direct")
        fake.clear()

        tick_to(e2e, 10.0, "plan")
        out, env_text = session.step(3)
        assert_plan(fake, out, env_text)
    finally:
        stdout, stderr = session.close()
    assert session.proc.returncode == 0, stderr
    for secret in (OR_KEY, ANT_KEY, OAUTH_TOKEN):
        assert secret not in stdout + stderr


# --- a 429 from the plan lands in the transcript, and spillover reads it -------------------------


# How each pinned client words the five-hour wall (tests/fixtures/transcripts/<version>/).
FIVE_HOUR_WALL = {"2.1.197": "You've hit your session limit · resets ", "2.1.332": "You've hit your 5-hour limit · resets "}


def test_a_plan_429_is_written_to_the_transcript_and_read_as_a_wall(e2e, tmp_path, claude_version):
    from spillover.state import spill_intervals
    from spillover.sources import transcripts

    fake = e2e.anthropic
    tick_to(e2e, 42.0, "plan")
    # The plan route, with the fake standing in for api.anthropic.com: the client signs in with
    # the subscription's OAuth token, as on the plan, and hits the five-hour wall.
    fake.mode = "429wall"
    proc = direnv_exec(e2e, "env", f"ANTHROPIC_BASE_URL={fake.url}", *CLIENT_ARGS)
    assert proc.returncode == 1
    result = result_of(proc.stdout)
    assert result["is_error"] is True and result["api_error_status"] == 429
    assert result["result"].startswith(FIVE_HOUR_WALL[claude_version]), result["result"]
    post = fake.messages()[0]
    assert post["headers"]["authorization"] == f"Bearer {OAUTH_TOKEN}"  # the plan's own credentials

    files = list((e2e.claude_dir / "projects").rglob("*.jsonl"))
    records = [json.loads(line) for f in files for line in f.read_text().splitlines() if line.strip()]
    errors = [r for r in records if r.get("isApiErrorMessage")]
    assert len(errors) == 1 and errors[0]["apiErrorStatus"] == 429 and errors[0]["error"] == "rate_limit"

    # The transcript signal recognises it (scanned with a scratch state dir, so the tick below
    # still reads it fresh) ...
    cfg = config_mod.load(environ=e2e.env)
    scratch = tmp_path / "scan-state"
    scratch.mkdir()
    found = transcripts.scan(cfg.claude_dirs, str(scratch), time.time(), spill_intervals(str(e2e.state_dir)))
    walls = [s for s in found.samples if s.wall]
    assert [s.bucket for s in walls] == ["five_hour"], f"the transcript signal missed the wall: {found}"
    # The client shows the reset to the minute, in local time; spillover reads it back.
    assert walls[0].resets_at == pytest.approx(time.time() + 3600, abs=120)

    # ... and the next tick spills on it, although the usage endpoint said 42 % a moment ago.
    e2e.run("tick", check=True)
    state = e2e.state()
    assert state["route"] == "openrouter", state["reason"]
    assert state["hot_bucket"] == "five_hour" and state["buckets"]["five_hour"]["source"] == "transcript"

    # A wall-worded 429 while spilled is the spill target's trouble: not read as a plan wall.
    fake.clear()
    fake.mode = "429usage"
    proc = direnv_exec(e2e, *CLIENT_ARGS)
    assert proc.returncode == 1 and fake.messages()[0]["path"] == "/api/v1/messages"
    assert "Claude AI usage limit reached|" in result_of(proc.stdout)["result"]
    later = transcripts.scan(cfg.claude_dirs, str(scratch), time.time(), spill_intervals(str(e2e.state_dir)))
    assert [s for s in later.samples if s.wall and s.bucket != "five_hour"] == [], later
    assert len([s for s in later.samples if s.wall]) == 1


def test_the_pinned_client_is_the_one_under_test(claude_client, claude_version, client_env):
    from tests.e2e.conftest import VERSIONS, installed_version, pinned_versions

    # Both ends of the supported range are pinned: the oldest supported and the newest tested.
    assert pinned_versions() == {"2.1.197": "claude-code-oldest", "2.1.332": "claude-code-newest"}
    assert VERSIONS == ["2.1.197", "2.1.332"] and claude_version in VERSIONS
    assert installed_version(claude_client) == claude_version
    assert os.access(claude_client, os.X_OK)
    # The `claude` the tests' PATH finds is the version under test, whatever else is installed.
    proc = subprocess.run(["claude", "--version"], env=client_env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split()[0] == claude_version, proc.stdout + proc.stderr
