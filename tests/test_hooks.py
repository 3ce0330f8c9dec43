"""Prompt hooks (`spillover hook bash|zsh|fish`) in real shells: installed by `spillover install
shell` into the sandbox rc file, run at real prompts (bash -i, zsh -i; fish gets `emit fish_prompt`,
since fish fires it only on a terminal), across route changes made by real ticks."""

import json
import os
import re
import subprocess
import sys
import time

import pytest

from spillover import config, fsutil, paths, shellhooks, targets
from spillover.publishers import env_files as publish
from tests.conftest import OR_KEY

MANAGED = targets.MANAGED
# Every character class the quoting must carry through a key: quote, $(), backtick, backslash, percent.
WEIRD_KEY = "sk-or-v1-it's-$(echo${IFS}pwned)-`id`-\"q\"-\\n-%s-" + "x" * 20


def sample_line(percent, t=None):
    """A statusline reading. Within one window utilization never falls, so a low reading is of a
    later window (after the reset) than a high one."""
    t = time.time() if t is None else t
    resets_at = t + (3600 if percent >= 50 else 5 * 3600)
    return json.dumps({"t": t, "source": "statusline", "five_hour": {"percent": percent, "resets_at": resets_at}})


def statusline_sandbox(wired, key=OR_KEY):
    """A wired sandbox whose only quota signal is samples.jsonl, so a shell can move the route by
    appending a sample and running a tick. Returns the env for the shells."""
    wired.write_config(
        OPENROUTER_API_URL=f"{wired.openrouter.url}/api/v1",
        SPILLOVER_OPENROUTER_BASE_URL=f"{wired.openrouter.url}/api",
        SPILLOVER_TIMEOUT="2",
        SPILLOVER_SOURCES="statusline",
    )
    env = dict(wired.env, OPENROUTER_API_KEY=key, SPILLOVER_SOURCES="statusline")
    os.environ["OPENROUTER_API_KEY"] = key  # the in-process config that computes expectations
    os.environ["SPILLOVER_SOURCES"] = "statusline"
    wired.state_dir.mkdir(parents=True, exist_ok=True)
    with open(wired.state_dir / "samples.jsonl", "a") as handle:
        handle.write(sample_line(42.0) + "\n")
    proc = wired.run("tick", env=env)
    assert proc.returncode == 0, proc.stderr
    assert wired.state()["route"] == "plan"
    return env


def expected_env(route, reason, pin=""):
    """What the shell must hold for `route`: name -> value, None for unset."""
    cfg = config.load()
    return dict(targets.route_env(route, cfg, reason=reason, pin=pin))


def flips(sandbox):
    return fsutil.read_jsonl(str(sandbox.state_dir / "history.jsonl"))


def parse_dumps(stdout):
    """Blocks written as `@@NAME\\n` + `env -0` output: {NAME: {var: value}}."""
    dumps = {}
    for block in stdout.split("@@")[1:]:
        name, _, rest = block.partition("\n")
        env = {}
        for item in rest.split("\0"):
            key, sep, value = item.partition("=")
            if sep and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                env[key] = value
        dumps[name.strip()] = env
    return dumps


def managed_of(env):
    return {name: env.get(name) for name in MANAGED}


POSIX_SESSION = """\
echo @@A; env -0
printf '%s\\n' '{high}' >> "$SPILLOVER_STATE_DIR/samples.jsonl"; '{py}' -m spillover tick
echo @@B; env -0
printf '%s\\n' '{low}' >> "$SPILLOVER_STATE_DIR/samples.jsonl"; '{py}' -m spillover tick
echo @@C; env -0
"""

FISH_SESSION = """\
emit fish_prompt
echo @@A; env -0
printf '%s\\n' '{high}' >> "$SPILLOVER_STATE_DIR/samples.jsonl"; '{py}' -m spillover tick
emit fish_prompt
echo @@B; env -0
printf '%s\\n' '{low}' >> "$SPILLOVER_STATE_DIR/samples.jsonl"; '{py}' -m spillover tick
emit fish_prompt
echo @@C; env -0
"""


def shell_command(shell):
    if shell == "bash":
        return ["bash", "-i"]  # reads the sandbox ~/.bashrc; PROMPT_COMMAND runs before each line
    if shell == "zsh":
        return ["zsh", "-i"]  # reads the sandbox ~/.zshrc; precmd runs before each line
    return ["fish", "--no-config", "-C", "source $XDG_CONFIG_HOME/fish/config.fish"]


def run_session(sandbox, shell, script, env):
    proc = subprocess.run(shell_command(shell), input=script, env=env, cwd=sandbox.root,
                          capture_output=True, text=True, timeout=120)
    return proc


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
@pytest.mark.parametrize("key", [OR_KEY, WEIRD_KEY], ids=["plain-key", "weird-key"])
def test_installed_hook_follows_route_changes(wired, shell, key):
    env = statusline_sandbox(wired, key)
    install = wired.run("install", "shell", "--shell", shell, env=env)
    assert install.returncode == 0, install.stderr
    # The user's own values, which the plan route must remove and which no route may leave behind.
    env.update(ANTHROPIC_API_KEY="user-own-key", ANTHROPIC_BASE_URL="https://user.example", KEEP_ME="kept")
    plan_reason = wired.state()["route_reason"]
    script = (FISH_SESSION if shell == "fish" else POSIX_SESSION).format(
        high=sample_line(97.0), low=sample_line(10.0, time.time() + 1), py=sys.executable)
    proc = run_session(wired, shell, script, env)
    dumps = parse_dumps(proc.stdout)
    assert set(dumps) == {"A", "B", "C"}, (proc.stdout, proc.stderr)

    history = flips(wired)
    assert [(h["from"], h["route"]) for h in history] == [("plan", "openrouter"), ("openrouter", "plan")], proc.stderr
    assert managed_of(dumps["A"]) == expected_env("plan", plan_reason)
    assert managed_of(dumps["B"]) == expected_env("openrouter", history[0]["reason"])
    assert dumps["B"]["ANTHROPIC_AUTH_TOKEN"] == key  # byte for byte through the quoting
    assert dumps["B"]["ANTHROPIC_API_KEY"] == ""  # set and empty, not unset
    assert managed_of(dumps["C"]) == expected_env("plan", history[1]["reason"])
    for dump in dumps.values():
        assert dump["KEEP_ME"] == "kept"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_hook_installs_itself_once_when_evaluated_twice(sandbox, shell):
    code = shellhooks.snippet(shell)
    if shell == "bash":
        script = f"{code}\n{code}\nPROMPT_COMMAND=\"$PROMPT_COMMAND\"\n{code}\nprintf '%s\\n' \"${{PROMPT_COMMAND[@]}}\""
        out = subprocess.run(["bash", "--norc", "-c", script], env=sandbox.env, capture_output=True, text=True, check=True).stdout
        assert out.count("_spillover_hook") == 1, out
        # An array PROMPT_COMMAND (bash 5.1+) keeps its other entries and gains the hook once.
        script = f"PROMPT_COMMAND=(mine1 mine2)\n{code}\n{code}\nprintf '%s\\n' \"${{PROMPT_COMMAND[@]}}\""
        out = subprocess.run(["bash", "--norc", "-c", script], env=sandbox.env, capture_output=True, text=True, check=True).stdout
        assert out.split() == ["_spillover_hook", "mine1", "mine2"]
    elif shell == "zsh":
        script = f"precmd_functions=(mine)\n{code}\n{code}\nprint -l $precmd_functions"
        out = subprocess.run(["zsh", "-f", "-c", script], env=sandbox.env, capture_output=True, text=True, check=True).stdout
        assert out.split() == ["_spillover_hook", "mine"]
    else:
        script = f"{code}\n{code}\nfunctions --handlers-type generic"
        out = subprocess.run(["fish", "--no-config", "-c", script], env=sandbox.env, capture_output=True, text=True, check=True).stdout
        assert out.count("_spillover_hook") == 1, out


def write_route(sandbox, route, reason, fish=False):
    """Publish a route file the way the tick does (same renderer, same write)."""
    cfg = config.load()
    pairs = targets.route_env(route, cfg, reason=reason)
    sandbox.state_dir.mkdir(parents=True, exist_ok=True)
    publish.publish_route(str(sandbox.state_dir), route, pairs, reason)


def hook_script(shell, body):
    """The snippet, then `body` with PROMPT standing for one prompt (the hook as the shell runs it)."""
    code = shellhooks.snippet(shell)
    prompt = {"bash": "_spillover_hook", "zsh": "for f in $precmd_functions; do $f; done", "fish": "emit fish_prompt"}[shell]
    return code + "\n" + body.replace("PROMPT", prompt)


def run_script(sandbox, shell, script, env=None, strace=None):
    argv = {"bash": ["bash", "--norc", "-c", script], "zsh": ["zsh", "-f", "-c", script],
            "fish": ["fish", "--no-config", "-c", script]}[shell]
    if strace:
        argv = ["strace", "-f", "-qq", "-e", "trace=clone,clone3,fork,vfork,execve", "-o", str(strace)] + argv
    return subprocess.run(argv, env=dict(sandbox.env, **(env or {})), capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_change_within_the_same_second_is_seen(sandbox, monkeypatch, shell):
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    write_route(sandbox, "openrouter", "first")
    # The second write lands right after the first prompt applied the first one: same second,
    # often the same millisecond. The next prompt must still see it.
    rewrite = f"{sys.executable} -c 'from tests.test_hooks import _rewrite_plan; _rewrite_plan()'"
    body = f"PROMPT\necho 1:$SPILLOVER_ROUTE\n{rewrite}\nPROMPT\necho 2:$SPILLOVER_ROUTE\n"
    proc = run_script(sandbox, shell, hook_script(shell, body), env={"OPENROUTER_API_KEY": OR_KEY})
    assert proc.stdout.split() == ["1:openrouter", "2:plan"], proc.stderr


def _rewrite_plan():
    pairs = targets.route_env("plan", config.load(), reason="second")
    publish.publish_route(os.environ["SPILLOVER_STATE_DIR"], "plan", pairs, "second")


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_first_prompt_applies_even_with_a_leftover_stamp(sandbox, monkeypatch, shell):
    """A stamp left by a dead shell with a recycled PID, newer than route.env, must not hide the route."""
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    write_route(sandbox, "openrouter", "r")
    pid_var = "$fish_pid" if shell == "fish" else "$$"
    body = f"touch \"$SPILLOVER_STATE_DIR/hook.{pid_var}.stamp\"\nPROMPT\necho route:$SPILLOVER_ROUTE\n"
    proc = run_script(sandbox, shell, hook_script(shell, body))
    assert proc.stdout.split() == ["route:openrouter"], proc.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_reapplies_when_something_else_changed_the_route_variable(sandbox, monkeypatch, shell):
    """direnv reverting its diff on leaving a directory can restore an older route's variables."""
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    write_route(sandbox, "openrouter", "r")
    assign = "set -gx SPILLOVER_ROUTE plan; set -e ANTHROPIC_BASE_URL" if shell == "fish" else "export SPILLOVER_ROUTE=plan; unset ANTHROPIC_BASE_URL"
    body = f"PROMPT\n{assign}\nPROMPT\necho $SPILLOVER_ROUTE $ANTHROPIC_BASE_URL\n"
    proc = run_script(sandbox, shell, hook_script(shell, body))
    assert proc.stdout.split() == ["openrouter", "https://openrouter.ai/api"], proc.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_no_route_file_yet_is_quiet_and_harmless(sandbox, shell):
    body = "PROMPT\nPROMPT\necho ok\n"
    proc = run_script(sandbox, shell, hook_script(shell, body))
    assert proc.stdout.split() == ["ok"] and proc.stderr == "", proc.stderr


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_no_fork_at_a_prompt_when_nothing_changed(sandbox, monkeypatch, tmp_path, shell):
    """strace counts process creations: 50 prompts with no change add none over 1 prompt."""
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    write_route(sandbox, "openrouter", "r")
    counts = {}
    for n in (1, 51):
        trace = tmp_path / f"{shell}-{n}.trace"
        body = "\n".join(["PROMPT"] * n) + "\necho route:$SPILLOVER_ROUTE\n"
        proc = run_script(sandbox, shell, hook_script(shell, body), strace=trace)
        assert proc.stdout.split() == ["route:openrouter"], proc.stderr
        text = trace.read_text()
        counts[n] = sum(1 for line in text.splitlines()
                        if re.search(r"\b(fork|vfork|clone3?)\(", line) and "CLONE_THREAD" not in line)
    assert counts[51] == counts[1], counts


def test_bash_hook_keeps_the_exit_status_for_the_prompt(sandbox, monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    write_route(sandbox, "openrouter", "r")
    proc = run_script(sandbox, "bash", hook_script("bash", "(exit 7); _spillover_hook; echo status:$?"))
    assert proc.stdout.split() == ["status:7"]


def test_hook_refuses_a_route_file_it_does_not_own(sandbox, monkeypatch):
    if os.geteuid() != 0:
        pytest.skip("needs root to chown the route file to another user")
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    write_route(sandbox, "openrouter", "r")
    os.chown(sandbox.state_dir / "route.env", 65534, 65534)
    proc = run_script(sandbox, "bash", hook_script("bash", "PROMPT\necho route:${SPILLOVER_ROUTE-none}"))
    assert proc.stdout.split() == ["route:none"]


def test_state_dir_resolution_matches_paths(sandbox, tmp_path):
    """SPILLOVER_STATE_DIR wins; else an absolute XDG_STATE_HOME; else ~/.local/state."""
    cases = [
        ({"SPILLOVER_STATE_DIR": "/x/state"}, "/x/state"),
        ({"SPILLOVER_STATE_DIR": "", "XDG_STATE_HOME": "/xdg"}, "/xdg/spillover"),
        ({"SPILLOVER_STATE_DIR": "", "XDG_STATE_HOME": "relative/ignored"}, f"{sandbox.home}/.local/state/spillover"),
    ]
    for env, want in cases:
        python = subprocess.run([sys.executable, "-c", "from spillover import paths; print(paths.state_dir())"],
                                env=dict(sandbox.env, **env), capture_output=True, text=True, check=True).stdout.strip()
        assert python == want
        for shell in ("bash", "zsh", "fish"):
            proc = run_script(sandbox, shell, shellhooks.snippet(shell) + "\necho $_spillover_dir", env=env)
            assert proc.stdout.strip() == want, (shell, env, proc.stderr)


def test_cli_hook_prints_the_shipped_snippet_and_prunes_dead_stamps(sandbox):
    sandbox.state_dir.mkdir(parents=True)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (sandbox.state_dir / f"hook.{dead.pid}.stamp").touch()
    (sandbox.state_dir / f"hook.{os.getpid()}.stamp").touch()
    for shell in ("bash", "zsh", "fish"):
        proc = sandbox.run("hook", shell, check=True)
        with open(os.path.join(os.path.dirname(shellhooks.__file__), "shell", f"hook.{shell}"), encoding="utf-8") as handle:
            assert proc.stdout == handle.read()
    assert not (sandbox.state_dir / f"hook.{dead.pid}.stamp").exists()
    assert (sandbox.state_dir / f"hook.{os.getpid()}.stamp").exists()
    assert sandbox.run("hook", "tcsh").returncode == 2


@pytest.mark.parametrize("name,checker", [
    ("hook.bash", ["shellcheck", "-s", "bash"]),
    ("direnvrc", ["shellcheck", "-s", "bash"]),
    ("hook.zsh", ["zsh", "-n"]),
    ("hook.fish", ["fish", "--no-execute"]),
])
def test_shipped_shell_files_lint_clean(name, checker):
    path = os.path.join(os.path.dirname(shellhooks.__file__), "shell", name)
    proc = subprocess.run(checker + [path], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_fish_plan_route_keeps_the_users_universal_variables(sandbox):
    """`set -e` without a scope would erase a universal variable from every fish session, for good."""
    from spillover import targets
    from spillover.publishers import env_files as publish
    from spillover.config import load

    sandbox.state_dir.mkdir(parents=True, exist_ok=True)
    route = sandbox.state_dir / "route.fish"
    route.write_text(publish.render_fish(targets.route_env("plan", load()), "plan"))
    env = dict(sandbox.env, XDG_CONFIG_HOME=str(sandbox.home / ".config"))
    subprocess.run(["fish", "-c", "set -Ux ANTHROPIC_BASE_URL https://mine.example"], env=env, check=True)
    assert subprocess.run(["fish", "-c", f"source '{route}'"], env=env).returncode == 0
    out = subprocess.run(["fish", "-c", "set -qU ANTHROPIC_BASE_URL; and echo $ANTHROPIC_BASE_URL"], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "https://mine.example"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_a_refused_route_file_is_said_once_and_costs_no_fork_per_prompt(sandbox, monkeypatch, tmp_path, shell):
    """A route file others can write is refused with one line; later prompts neither repeat it nor
    fork for the mode check again (retried after 30 s in bash and zsh, 100 prompts in fish)."""
    monkeypatch.setenv("OPENROUTER_API_KEY", OR_KEY)
    write_route(sandbox, "openrouter", "r")
    for name in ("route.env", "route.fish"):
        os.chmod(sandbox.state_dir / name, 0o666)
    counts = {}
    for n in (1, 51):
        trace = tmp_path / f"{shell}-{n}.trace"
        body = "\n".join(["PROMPT"] * n) + "\necho \"route:$SPILLOVER_ROUTE\"\n"
        proc = run_script(sandbox, shell, hook_script(shell, body), strace=trace)
        assert proc.stdout.split() == ["route:"], proc.stderr
        assert proc.stderr.count("spillover: not sourcing") == 1 and "can be written by others" in proc.stderr, proc.stderr
        counts[n] = sum(1 for line in trace.read_text().splitlines()
                        if re.search(r"\b(fork|vfork|clone3?)\(", line) and "CLONE_THREAD" not in line)
    assert counts[51] == counts[1], counts


def test_bash_check_is_the_same_in_the_hook_and_the_direnv_library():
    """hook.bash and direnvrc carry one copy each of _spillover_check/_spillover_refusal: keep them equal."""
    def functions(name):
        with open(paths.shipped(name), encoding="utf-8") as handle:
            text = handle.read()
        start = text.index("# Trust before use")
        return text[start:text.index("\n}\n", text.index("_spillover_refusal() {")) + 3]
    assert functions("hook.bash") == functions("direnvrc")
