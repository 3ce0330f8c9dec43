"""A hostile second user on the same machine (issue 14): each attack runs for real, the victim's
shells, direnv and installs running as one unprivileged user and the attacker's files created as
another. As root (CI) the two users are created here if missing; without root and without those
users the suite is skipped, saying why.

Attacks and what must hold:
- a state dir the attacker owns (in a world-writable parent, like /tmp): hooks and direnv refuse,
  nothing is sourced, no payload runs, nothing is written into it;
- a symlink planted as the shell's stamp, pointing at a victim file: that file is untouched;
- a FIFO planted as the stamp: the shell does not hang, nothing is sourced;
- the route file swapped for a foreign-owned file, a symlink, a FIFO, or a file others can write:
  refused, with one line naming the path, its owner and mode, and the fix;
- installs under umask 000: nothing they create is group- or world-writable;
- the tick against a foreign-owned state dir: refused with the path, owner, mode and fix.
"""

import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from spillover import install, paths
from tests.conftest import readable_pythonpath

VICTIM, ATTACKER = "spillover-victim", "spillover-attacker"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SHELLS = ("bash", "zsh", "fish")
ROUTE_FILE = {"bash": "route.env", "zsh": "route.env", "fish": "route.fish"}
PROMPT = {"bash": "_spillover_hook", "zsh": "for f in $precmd_functions; do $f; done", "fish": "emit fish_prompt"}


def _user(name):
    """The passwd entry of `name`, created (no home, no login) when missing and we are root."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    if os.geteuid() != 0:
        return None
    subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", name], check=True, capture_output=True)
    return pwd.getpwnam(name)


@dataclass
class Machine:
    base: Path
    victim: pwd.struct_passwd
    attacker: pwd.struct_passwd
    shared: Path  # like /tmp: world-writable and sticky

    def run_as(self, user, argv, env=None, input=None, timeout=30):
        return subprocess.run(self.argv_as(user, argv), env=env or {"PATH": PATH}, input=input, capture_output=True,
                              text=True, timeout=timeout, cwd=self.base)

    @staticmethod
    def argv_as(user, argv):
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--clear-groups", "--"] + list(argv)

    def attack(self, script, input=None):
        """Run `script` (sh) as the attacker."""
        proc = self.run_as(self.attacker, ["sh", "-c", script], input=input)
        assert proc.returncode == 0, proc.stderr
        return proc


@pytest.fixture(scope="module")
def machine():
    if os.geteuid() != 0 and not all(_user(n) for n in (VICTIM, ATTACKER)):
        reason = f"needs root (to create the users {VICTIM} and {ATTACKER} and switch to them); running as uid {os.geteuid()}"
        print(f"test_hostile_local skipped: {reason}")
        pytest.skip(reason)
    if os.geteuid() != 0:
        reason = f"users {VICTIM}/{ATTACKER} exist, but switching to them needs root; running as uid {os.geteuid()}"
        print(f"test_hostile_local skipped: {reason}")
        pytest.skip(reason)
    victim, attacker = _user(VICTIM), _user(ATTACKER)
    base = Path(tempfile.mkdtemp(prefix="spillover-hostile-", dir="/tmp"))
    base.chmod(0o755)  # both users can reach their dirs under it
    shared = base / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    yield Machine(base, victim, attacker, shared)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def box(machine, tmp_path_factory):
    """A fresh victim HOME (0700, the victim's), a marker path a payload would create, and the env."""
    name = tempfile.mkdtemp(prefix="case-", dir=machine.base)
    case = Path(name)
    case.chmod(0o755)
    home = case / "home"
    home.mkdir(mode=0o700)
    os.chown(home, machine.victim.pw_uid, machine.victim.pw_gid)
    env = {
        "PATH": PATH, "HOME": str(home), "USER": VICTIM, "LOGNAME": VICTIM, "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": f"{home}/.config", "XDG_STATE_HOME": f"{home}/.local/state",
        "XDG_DATA_HOME": f"{home}/.local/share", "XDG_CACHE_HOME": f"{home}/.cache",
        "SPILLOVER_CONFIG": f"{home}/.config/spillover/config.env", "SPILLOVER_NOTIFY": "off", "NO_COLOR": "1",
    }
    marker = machine.shared / f"pwned-{case.name}"
    return Case(machine, case, home, env, marker)


@dataclass
class Case:
    machine: Machine
    root: Path
    home: Path
    env: dict
    marker: Path

    def victim_dir(self, path, mode):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        os.chown(path, self.machine.victim.pw_uid, self.machine.victim.pw_gid)
        return path

    def payload(self, shell):
        """A route file that would flip the route and run a command: it must never be sourced."""
        if shell == "fish":
            return f"set -gx SPILLOVER_ROUTE evil\ntouch '{self.marker}'\n"
        return f"export SPILLOVER_ROUTE='evil'\ntouch '{self.marker}'\n"

    def victim_file(self, path, text, mode=0o600):
        path.write_text(text)
        path.chmod(mode)
        os.chown(path, self.machine.victim.pw_uid, self.machine.victim.pw_gid)
        return path


def hook_argv(shell, state_dir, wait=False):
    """The victim's shell: the shipped hook, optionally a pause (its PID printed, then a line read
    from stdin) so the attacker can plant files under the shell's own stamp name, then one prompt."""
    with open(paths.shipped(f"hook.{shell}"), encoding="utf-8") as handle:
        code = handle.read()
    if shell == "fish":
        pause = "echo $fish_pid; read -l _go\n" if wait else ""
        body = f"{pause}{PROMPT[shell]}\necho \"route:$SPILLOVER_ROUTE\"\n"
        return ["fish", "--no-config", "-c", code + "\n" + body]
    pause = "echo $$; read -r _go\n" if wait else ""
    body = f"{pause}{PROMPT[shell]}\necho \"route:${{SPILLOVER_ROUTE-}}\"\n"
    return {"bash": ["bash", "--norc", "--noprofile", "-c"], "zsh": ["zsh", "-f", "-c"]}[shell] + [code + "\n" + body]


def run_hook(case, shell, state_dir, plant=None, timeout=15):
    """One victim shell with the hook; `plant(pid)` runs (as the attacker) while it waits. Fails
    if the shell does not finish within `timeout` seconds (a FIFO would hold it forever)."""
    env = dict(case.env, SPILLOVER_STATE_DIR=str(state_dir))
    argv = case.machine.argv_as(case.machine.victim, hook_argv(shell, state_dir, wait=plant is not None))
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=case.root)
    try:
        if plant is not None:
            pid = int(proc.stdout.readline())
            plant(pid)
        out, err = proc.communicate("go\n" if plant is not None else "", timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"{shell} hung for {timeout}s at a prompt")
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def assert_refused(case, proc, named):
    assert "route:evil" not in proc.stdout and "route:" in proc.stdout, (proc.stdout, proc.stderr)
    assert not case.marker.exists(), "the payload ran"
    lines = [line for line in proc.stderr.splitlines() if line.startswith("spillover: not sourcing")]
    assert len(lines) == 1, proc.stderr
    assert named in lines[0] and "fix:" in lines[0] and ("mode" in lines[0] or "missing" in lines[0]), lines[0]
    return lines[0]


# --- a state dir someone else owns --------------------------------------------------------------


def attacker_state_dir(case, shell, mode="0777"):
    """The attacker got there first: /tmp/…/spillover is theirs, with a route file that runs a payload."""
    state = case.root / "tmp" / "spillover"
    case.root.joinpath("tmp").mkdir(mode=0o1777)
    case.root.joinpath("tmp").chmod(0o1777)
    route = state / ROUTE_FILE[shell]
    case.machine.attack(f"mkdir -m {mode} '{state}' && cat > '{route}' && chmod 644 '{route}'", input=case.payload(shell))
    return state


@pytest.mark.parametrize("shell", SHELLS)
def test_hook_refuses_a_state_dir_the_attacker_owns(box, shell):
    state = attacker_state_dir(box, shell)
    proc = run_hook(box, shell, state)
    line = assert_refused(box, proc, str(state))
    assert f"owner {ATTACKER}" in line and "is not a directory of yours" in line
    assert sorted(os.listdir(state)) == [ROUTE_FILE[shell]]  # no stamp written into it


def direnv_project(case, state):
    """The victim's project with `use spillover`, the lib installed and the .envrc allowed, as the victim."""
    lib = case.victim_dir(case.home / ".config" / "direnv" / "lib", 0o755)
    for parent in (case.home / ".config", case.home / ".config" / "direnv"):
        case.victim_dir(parent, 0o755)
    case.victim_file(lib / "spillover.sh", install.direnv_text(), 0o644)
    project = case.victim_dir(case.home / "project", 0o755)
    case.victim_file(project / ".envrc", "use spillover\n", 0o644)
    env = dict(case.env, SPILLOVER_STATE_DIR=str(state))
    allow = case.machine.run_as(case.machine.victim, ["direnv", "allow", str(project)], env=env)
    assert allow.returncode == 0, allow.stderr
    return project, env


@pytest.mark.skipif(shutil.which("direnv") is None, reason="direnv is not installed")
def test_direnv_refuses_a_state_dir_the_attacker_owns(box):
    state = attacker_state_dir(box, "bash")
    project, env = direnv_project(box, state)
    proc = box.machine.run_as(box.machine.victim, ["direnv", "exec", str(project), "sh", "-c", 'echo "route:${SPILLOVER_ROUTE-}"'],
                              env=env, timeout=30)
    assert proc.returncode == 0, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if "spillover: not sourcing" in x]
    assert len(lines) == 1 and str(state) in lines[0] and f"owner {ATTACKER}" in lines[0] and "fix:" in lines[0], proc.stderr
    assert proc.stdout.strip() == "route:" and not box.marker.exists()
    assert sorted(os.listdir(state)) == ["route.env"]  # .now-direnv was not written there


# --- planted stamps ------------------------------------------------------------------------------


def open_state_dir(case, shell):
    """The victim's own state dir in /tmp (SPILLOVER_STATE_DIR=/tmp/…), made under umask 000 so
    anyone can write it, with a route file of the victim's that carries a payload: no file in a
    dir others can write is trusted."""
    tmp = case.root / "tmp"
    tmp.mkdir()
    tmp.chmod(0o1777)
    state = case.victim_dir(tmp / "spillover", 0o777)
    case.victim_file(state / ROUTE_FILE[shell], case.payload(shell))
    return state


@pytest.mark.parametrize("shell", SHELLS)
def test_planted_symlink_stamp_leaves_the_victims_file_alone(box, shell):
    state = open_state_dir(box, shell)
    precious = box.victim_file(box.home / "precious", "keep me\n")
    before = os.stat(precious)

    def plant(pid):
        box.machine.attack(f"ln -s '{precious}' '{state}/hook.{pid}.stamp'")

    proc = run_hook(box, shell, state, plant)
    assert_refused(box, proc, str(state))
    assert precious.read_text() == "keep me\n"
    assert os.stat(precious).st_mtime_ns == before.st_mtime_ns


@pytest.mark.parametrize("shell", SHELLS)
def test_planted_fifo_stamp_does_not_hold_the_shell(box, shell):
    state = open_state_dir(box, shell)

    def plant(pid):
        box.machine.attack(f"mkfifo -m 666 '{state}/hook.{pid}.stamp'")

    proc = run_hook(box, shell, state, plant, timeout=10)
    assert_refused(box, proc, str(state))


def test_direnv_writes_no_stamp_into_a_dir_others_can_write(box):
    state = open_state_dir(box, "bash")
    box.machine.attack(f"mkfifo -m 666 '{state}/.now-direnv'")
    project, env = direnv_project(box, state)
    proc = box.machine.run_as(box.machine.victim, ["direnv", "exec", str(project), "sh", "-c", 'echo "route:${SPILLOVER_ROUTE-}"'],
                              env=env, timeout=15)
    assert proc.stdout.strip() == "route:" and not box.marker.exists(), proc.stderr
    assert "can be written by others" in proc.stderr and f"chmod 700 '{state}'" in proc.stderr


# --- the route file swapped ---------------------------------------------------------------------


def private_state_dir(case):
    state = case.victim_dir(case.home / "state", 0o700)
    return state


@pytest.mark.parametrize("shell", SHELLS)
@pytest.mark.parametrize("kind", ["foreign-owner", "symlink", "fifo", "writable-by-others"])
def test_untrusted_route_file_is_refused(box, shell, kind):
    state = private_state_dir(box)
    route = state / ROUTE_FILE[shell]
    if kind == "foreign-owner":
        route.write_text(box.payload(shell))
        route.chmod(0o644)
        os.chown(route, box.machine.attacker.pw_uid, box.machine.attacker.pw_gid)
        want = "is not yours"
    elif kind == "symlink":
        # Even to a file of the victim's: a link can be re-pointed between the check and the read.
        target = box.victim_file(box.home / "elsewhere.env", box.payload(shell))
        route.symlink_to(target)
        os.lchown(route, box.machine.victim.pw_uid, box.machine.victim.pw_gid)
        want = "is not a regular file"
    elif kind == "fifo":
        os.mkfifo(route, 0o600)
        os.chown(route, box.machine.victim.pw_uid, box.machine.victim.pw_gid)
        want = "is not a regular file"
    else:
        box.victim_file(route, box.payload(shell), 0o666)
        want = "can be written by others"
    proc = run_hook(box, shell, state, timeout=10)
    line = assert_refused(box, proc, str(route))
    assert want in line


@pytest.mark.parametrize("shell", SHELLS)
def test_a_trusted_route_file_is_still_applied_as_the_victim(box, shell):
    """The guard of the tests above: the same run with a clean private state dir applies the route."""
    state = private_state_dir(box)
    text = "set -gx SPILLOVER_ROUTE openrouter\n" if shell == "fish" else "export SPILLOVER_ROUTE='openrouter'\n"
    box.victim_file(state / ROUTE_FILE[shell], text)
    proc = run_hook(box, shell, state)
    assert proc.stdout.split() == ["route:openrouter"] and proc.stderr == "", proc.stderr
    assert any(name.startswith("hook.") for name in os.listdir(state))  # its stamp, in the private dir


# --- Python as the victim: installs under umask 000, the tick ------------------------------------


def victim_python(machine):
    """A Python >= 3.11 the victim can run (the test's own may live under /root), with this
    checkout's package and its dependencies on PYTHONPATH (conftest.readable_pythonpath)."""
    pythonpath = readable_pythonpath()
    for exe in (sys.executable, "/usr/bin/python3", shutil.which("python3") or ""):
        if not exe:
            continue
        probe = machine.run_as(machine.victim, ["sh", "-c", f"'{exe}' -c 'import sys, requests, jmespath, dotenv; assert sys.version_info >= (3, 11)'"],
                               env={"PATH": PATH, "PYTHONPATH": pythonpath})
        if probe.returncode == 0:
            return exe, pythonpath
    pytest.fail("no Python >= 3.11 that the victim user can run with spillover's dependencies (conftest.readable_pythonpath)")


def loose_paths(top, skip=()):
    """Everything under `top` that group or others can write."""
    found = []
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(root, name)
            mode = os.lstat(path).st_mode
            if not stat.S_ISLNK(mode) and mode & 0o022 and path not in skip:
                found.append(f"{path} {stat.filemode(mode)}")
    return found


def test_installs_under_umask_000_create_nothing_others_can_write(box):
    exe, pythonpath = victim_python(box.machine)
    env = dict(box.env, PYTHONPATH=pythonpath, SHELL="/bin/bash")
    script = (f"umask 000 && cd '{box.home}' && "
              + " && ".join(f"'{exe}' -m spillover install {what}" for what in
                            ("direnv", "shell --shell bash", "shell --shell zsh", "shell --shell fish")))
    proc = box.machine.run_as(box.machine.victim, ["sh", "-c", script], env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lib = box.home / ".config" / "direnv" / "lib" / "spillover.sh"
    assert lib.is_file() and (box.home / ".bashrc").is_file() and (box.home / ".config" / "fish" / "config.fish").is_file()
    assert loose_paths(box.home) == []
    assert stat.S_IMODE(os.stat(lib).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(lib.parent).st_mode) == 0o755


def test_install_direnv_tightens_a_lib_dir_others_can_write(box):
    """A lib dir left 0777 by an older install under umask 000: direnv would source anyone's file."""
    exe, pythonpath = victim_python(box.machine)
    for parent in (box.home / ".config", box.home / ".config" / "direnv"):
        box.victim_dir(parent, 0o755)
    lib = box.victim_dir(box.home / ".config" / "direnv" / "lib", 0o777)
    box.victim_file(lib / "spillover.sh", install.direnv_text(), 0o644)  # up to date: still tightened
    proc = box.machine.run_as(box.machine.victim, ["sh", "-c", f"'{exe}' -m spillover install direnv"],
                              env=dict(box.env, PYTHONPATH=pythonpath), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(os.stat(lib).st_mode) == 0o755
    assert "others could write it (mode 777)" in proc.stdout


def test_tick_with_a_state_dir_the_attacker_owns(box):
    """The tick must not write into (or follow links in) a state dir someone else owns."""
    exe, pythonpath = victim_python(box.machine)
    state = attacker_state_dir(box, "bash")
    box.machine.attack(f"ln -s '{box.home}/.bashrc' '{state}/state.json'")
    env = dict(box.env, PYTHONPATH=pythonpath, SPILLOVER_STATE_DIR=str(state))
    proc = box.machine.run_as(box.machine.victim, ["sh", "-c", f"'{exe}' -m spillover tick"], env=env, timeout=60)
    assert proc.returncode != 0
    assert sorted(os.listdir(state)) == ["route.env", "state.json"]  # nothing written there
    assert not (box.home / ".bashrc").exists()
    assert not box.marker.exists()
    assert str(state) in proc.stderr and f"owner {ATTACKER}" in proc.stderr, proc.stderr


@pytest.mark.parametrize("shell", SHELLS)
def test_a_stamp_that_is_not_a_regular_file_is_never_written(box, shell):
    """Even in a private state dir (a stamp link left by a restore or a sync tool): no write through it."""
    state = private_state_dir(box)
    text = "set -gx SPILLOVER_ROUTE openrouter\n" if shell == "fish" else "export SPILLOVER_ROUTE='openrouter'\n"
    box.victim_file(state / ROUTE_FILE[shell], text)
    precious = box.victim_file(box.home / "precious", "keep me\n")

    def plant(pid):
        stamp = state / f"hook.{pid}.stamp"
        stamp.symlink_to(precious)
        os.lchown(stamp, box.machine.victim.pw_uid, box.machine.victim.pw_gid)

    proc = run_hook(box, shell, state, plant)
    assert "route:openrouter" not in proc.stdout and "is not a regular file of yours" in proc.stderr, proc.stderr
    assert precious.read_text() == "keep me\n"


# --- a config someone else can write: never read, its meter command never runs --------------------


def victim_spillover(case, *args, env=None, input=None):
    exe, pythonpath = victim_python(case.machine)
    full = dict(case.env, PYTHONPATH=pythonpath, SPILLOVER_SOURCES="command", SPILLOVER_TARGETS="openrouter")
    full.update(env or {})
    quoted = " ".join(f"'{a}'" for a in args)
    return case.machine.run_as(case.machine.victim, ["sh", "-c", f"'{exe}' -m spillover {quoted}"], env=full,
                               input=input, timeout=120)


@pytest.mark.parametrize("how", ["attacker-owned file", "file in a dir others can write", "file others can write"])
def test_a_config_others_can_write_is_refused_and_its_meter_never_runs(box, how):
    cfg_dir = box.victim_dir(box.home / ".config" / "spillover", 0o700)
    box.victim_dir(box.home / ".config", 0o755)
    state = box.victim_dir(box.home / ".local" / "state" / "spillover", 0o700)
    box.victim_dir(box.home / ".local" / "state", 0o700)
    box.victim_dir(box.home / ".local", 0o700)
    config = cfg_dir / "config.env"
    payload = f"SPILLOVER_METER_COMMAND='touch {box.marker}'\nSPILLOVER_SOURCES=command\n"
    if how == "attacker-owned file":
        config.write_text(payload)
        config.chmod(0o644)
        os.chown(config, box.machine.attacker.pw_uid, box.machine.attacker.pw_gid)
        want = [f"owner {ATTACKER}", "mode 644"]
    elif how == "file in a dir others can write":
        cfg_dir.chmod(0o777)
        box.victim_file(config, payload)
        want = [f"owner {VICTIM}", "mode 777", f"{cfg_dir} is not yours alone"]
    else:
        box.victim_file(config, payload, 0o666)
        want = [f"owner {VICTIM}", "mode 666"]
    box.victim_file(state / "route.env", "# spillover route: openrouter — earlier\nexport SPILLOVER_ROUTE='openrouter'\n")
    proc = victim_spillover(box, "tick")
    assert proc.returncode != 0
    line = [ln for ln in proc.stderr.splitlines() if "not yours alone" in ln]
    assert len(line) == 1 and str(config) in line[0], proc.stderr
    assert all(w in line[0] for w in want) and "fix:" in line[0], line
    assert not box.marker.exists(), "the meter command of a foreign config ran"
    recorded = json.loads((state / "state.json").read_text())
    assert "not yours alone" in recorded["config_error"]
    assert "SPILLOVER_ROUTE='openrouter'" in (state / "route.env").read_text()  # the last route is kept
    doctor = victim_spillover(box, "doctor")
    assert doctor.returncode == 1
    owned = [ln for ln in doctor.stdout.splitlines() if ln.startswith("✖ ownership")]
    assert owned and all(w in owned[0] for w in want) and "fix:" in owned[0], doctor.stdout
    status = victim_spillover(box, "status")
    assert "not yours alone" in status.stdout and not box.marker.exists()


def test_the_statusline_records_nothing_into_a_state_dir_the_attacker_owns(box):
    state = attacker_state_dir(box, "bash")
    before = sorted(os.listdir(state))
    payload = json.dumps({"rate_limits": {"five_hour": {"used_percentage": 50, "resets_at": 4102444000}}})
    proc = victim_spillover(box, "statusline", env={"SPILLOVER_STATE_DIR": str(state)}, input=payload)
    assert proc.returncode == 0 and proc.stdout.startswith("spillover") and "5h 50%" in proc.stdout, proc.stdout + proc.stderr
    assert sorted(os.listdir(state)) == before


# --- planted links at every predictable name: no write goes through them ---------------------------

PREDICTABLE = ("tick.lock", "fresh-until", "samples.jsonl", "history.jsonl", "pin.json", "state.json",
               "transcripts.json", "route.env", "route.fish", "scheduler")


@pytest.mark.parametrize("name", PREDICTABLE)
def test_a_link_planted_at_a_predictable_name_is_never_written_through(box, name):
    """Links left by an attacker in a dir they could write before it was made private (or by a sync
    tool): the victim's tick, statusline, pin and unpin must not write (or chmod, or touch) through them."""
    state = box.victim_dir(box.home / "state", 0o700)
    precious = box.victim_file(box.home / "precious", "keep me\n", 0o600)
    before = os.stat(precious)
    absent = box.home / "created-through-a-link"
    (state / name).symlink_to(precious)
    (state / (name + ".other")).symlink_to(absent)  # and a link to a file that does not exist yet
    env = {"SPILLOVER_STATE_DIR": str(state), "SPILLOVER_SOURCES": "statusline,transcripts"}
    payload = json.dumps({"rate_limits": {"five_hour": {"used_percentage": 50, "resets_at": 4102444000}}})
    for _ in range(2):
        victim_spillover(box, "tick", env=env)
        victim_spillover(box, "statusline", env=env, input=payload)
    victim_spillover(box, "pin", "plan", "--for", "1h", env=env)
    victim_spillover(box, "unpin", env=env)
    after = os.stat(precious)
    assert precious.read_text() == "keep me\n" and stat.S_IMODE(after.st_mode) == 0o600
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert not absent.exists()
