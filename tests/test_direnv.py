"""`use spillover` with the real direnv, in a sandboxed HOME with strict_env on: the lib is
installed by `spillover install direnv`, routes are changed by real ticks."""

import os
import re
import subprocess
import sys
import time

import pytest

from tests.test_hooks import (expected_env, flips, managed_of, parse_dumps, sample_line,
                              statusline_sandbox)

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def enable_strict_env(sandbox):
    conf = sandbox.home / ".config" / "direnv"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "direnv.toml").write_text("[global]\nstrict_env = true\n")


def make_project(sandbox, env, envrc="use spillover\n", name="project"):
    project = sandbox.root / name
    project.mkdir(exist_ok=True)
    (project / ".envrc").write_text(envrc)
    subprocess.run(["direnv", "allow", str(project)], env=env, check=True, capture_output=True)
    return project


@pytest.fixture
def project(wired):
    env = statusline_sandbox(wired)
    enable_strict_env(wired)
    proc = wired.run("install", "direnv", env=env)
    assert proc.returncode == 0, proc.stderr
    wired.direnv_env = env
    wired.project = make_project(wired, env)
    return wired


def direnv_exec(sandbox, project, env, *command):
    return subprocess.run(["direnv", "exec", str(project), *command], env=env, cwd=sandbox.root,
                          capture_output=True, text=True, timeout=60)


# direnv's watch list records mtimes in whole seconds: a route file rewritten within the second
# of the last load is not seen. Real ticks are a minute apart; `sleep 1` stands for that here.
SESSION = """\
set -e
cd project; eval "$(direnv export bash)"; echo @@IN1; env -0
sleep 1; printf '%s\\n' '{high}' >> "$SPILLOVER_STATE_DIR/samples.jsonl"; '{py}' -m spillover tick
eval "$(direnv export bash)"; echo @@IN2; env -0
sleep 1; printf '%s\\n' '{low}' >> "$SPILLOVER_STATE_DIR/samples.jsonl"; '{py}' -m spillover tick
eval "$(direnv export bash)"; echo @@IN3; env -0
cd ..; eval "$(direnv export bash)"; echo @@OUT; env -0
"""


def test_route_changes_reach_the_next_export_and_leaving_restores_the_parent(project):
    env = dict(project.direnv_env, ANTHROPIC_API_KEY="user-own-key", ANTHROPIC_BASE_URL="https://user.example",
               ANTHROPIC_DEFAULT_OPUS_MODEL="my-opus")
    parent = managed_of(env)
    plan_reason = project.state()["route_reason"]
    script = SESSION.format(high=sample_line(97.0), low=sample_line(10.0, time.time() + 1), py=sys.executable)
    proc = subprocess.run(["bash", "--norc", "-c", script], env=env, cwd=project.root, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    dumps = parse_dumps(proc.stdout)
    history = flips(project)
    assert [(h["from"], h["route"]) for h in history] == [("plan", "openrouter"), ("openrouter", "plan")]

    assert managed_of(dumps["IN1"]) == expected_env("plan", plan_reason)  # the user's own keys are removed
    assert managed_of(dumps["IN2"]) == expected_env("openrouter", history[0]["reason"])
    assert managed_of(dumps["IN3"]) == expected_env("plan", history[1]["reason"])  # unset again on the plan route
    assert managed_of(dumps["OUT"]) == parent  # leaving restores what the parent shell had
    log = ANSI.sub("", proc.stderr)
    assert "direnv: spillover: route openrouter (five_hour 97% ≥ 95%)" in log
    assert "direnv: spillover: route plan (five_hour back to 10% < 50%)" in log


def test_direnv_exec_sees_the_route(project):
    with open(project.state_dir / "samples.jsonl", "a") as handle:
        handle.write(sample_line(97.0) + "\n")
    assert project.run("tick", env=project.direnv_env).returncode == 0
    proc = direnv_exec(project, project.project, project.direnv_env, "env", "-0")
    assert proc.returncode == 0, proc.stderr
    got = parse_dumps("@@X\n" + proc.stdout)["X"]
    assert managed_of(got) == expected_env("openrouter", project.state()["route_reason"])


def test_first_tick_triggers_a_reload_when_route_env_did_not_exist(wired):
    env = dict(wired.env, SPILLOVER_SOURCES="statusline")
    enable_strict_env(wired)
    assert wired.run("install", "direnv", env=env).returncode == 0
    make_project(wired, env)
    script = f"""\
set -e
cd project; eval "$(direnv export bash)"; echo @@BEFORE; env -0
printf '%s\\n' '{sample_line(40.0)}' >> "$SPILLOVER_STATE_DIR/samples.jsonl"; '{sys.executable}' -m spillover tick
eval "$(direnv export bash)"; echo @@AFTER; env -0
"""
    wired.state_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["bash", "--norc", "-c", script], env=env, cwd=wired.root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    dumps = parse_dumps(proc.stdout)
    assert "SPILLOVER_ROUTE" not in dumps["BEFORE"]
    assert dumps["AFTER"]["SPILLOVER_ROUTE"] == "plan"
    assert "spillover: no route yet" in proc.stderr


def test_stale_state_keeps_the_last_route_and_warns(project):
    with open(project.state_dir / "samples.jsonl", "a") as handle:
        handle.write(sample_line(97.0) + "\n")
    assert project.run("tick", env=project.direnv_env).returncode == 0
    until = project.state_dir / "fresh-until"
    fresh_until = until.stat().st_mtime
    assert 4 * 60 < fresh_until - time.time() <= 5 * 60  # the tick's SPILLOVER_STALE_MINUTES (default 5)
    old = time.time() - 6 * 60
    os.utime(until, (old, old))
    proc = direnv_exec(project, project.project, project.direnv_env, "printenv", "SPILLOVER_ROUTE")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "openrouter"
    assert "the cron tick seems not to run (keeping route openrouter" in proc.stderr
    # A fresh state is quiet.
    os.utime(until, (fresh_until, fresh_until))
    proc = direnv_exec(project, project.project, project.direnv_env, "true")
    assert "seems not to run" not in proc.stderr
    # SPILLOVER_STALE_MINUTES (read by the tick) moves the threshold.
    assert project.run("tick", env=dict(project.direnv_env, SPILLOVER_STALE_MINUTES="0")).returncode == 0
    time.sleep(0.05)
    proc = direnv_exec(project, project.project, project.direnv_env, "true")
    assert "no tick for longer than SPILLOVER_STALE_MINUTES" in proc.stderr


def test_spillover_version(project):
    env = project.direnv_env
    ok = make_project(project, env, "spillover_version 0.1.0\nspillover_version 0.0.9\nuse spillover\n", "ok")
    proc = direnv_exec(project, ok, env, "printenv", "SPILLOVER_ROUTE")
    assert proc.returncode == 0 and proc.stdout.strip() == "plan", proc.stderr
    newer = make_project(project, env, "spillover_version 0.10.0\nuse spillover\n", "newer")
    proc = direnv_exec(project, newer, env, "printenv", "SPILLOVER_ROUTE")
    assert proc.returncode != 0
    assert "needs spillover 0.10.0 or newer, but the installed direnv library is 0.1.0" in proc.stderr


def test_strict_env_is_really_on(project):
    """Guards the other tests: an .envrc reading an unset variable fails in this sandbox."""
    bad = make_project(project, project.direnv_env, "use spillover\necho \"$SURELY_UNSET_VARIABLE\"\n", "bad")
    proc = direnv_exec(project, bad, project.direnv_env, "true")
    assert proc.returncode != 0
    assert "SURELY_UNSET_VARIABLE: unbound variable" in proc.stderr


def test_reload_runs_no_python(project, tmp_path):
    """The reload path is shell only: strace sees direnv and bash, and `stat` (the owner/mode check
    before sourcing: bash cannot read mode bits itself), no other program, never python."""
    trace = tmp_path / "direnv.trace"
    proc = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-o", str(trace), "direnv", "exec", str(project.project), "true"],
                          env=project.direnv_env, cwd=project.root, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    programs = {os.path.basename(m) for m in re.findall(r'execve\("([^"]+)"', trace.read_text())}
    assert "bash" in programs
    assert programs <= {"bash", "direnv", "true", "stat"}, programs  # `true` is the command direnv exec runs


def test_installed_lib_is_the_shipped_file_with_a_header(project):
    from spillover import install, paths

    lib = project.home / ".config" / "direnv" / "lib" / "spillover.sh"
    text = lib.read_text()
    assert text.startswith("# spillover 0.1.0 direnv library, installed by `spillover install direnv`.")
    with open(paths.shipped("direnvrc"), encoding="utf-8") as handle:
        assert text == install.DIRENV_HEADER + handle.read()
    assert "_SPILLOVER_DIRENVRC_VERSION=0.1.0" in text
