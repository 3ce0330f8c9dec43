"""`spillover install|uninstall schedule`: the scheduler that works here, chosen with fakes of
`systemctl`, `loginctl`, `launchctl` and `pgrep` (the cron daemon check) on PATH and the real
`crontab`; doctor checks the chosen one fires; the installed command line ticks from any directory."""

import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import sys
import time

import pytest

from spillover import install, schedule
from tests.test_cron import crontab_l, crontab_set, ours, real_crontab  # noqa: F401  (fixture)
from tests.test_doctor import lines_of

SPILLOVER = os.path.join(os.path.dirname(sys.executable), "spillover")


class FakeBin:
    """A bin dir of small shell scripts that record their arguments, one call a line."""

    def __init__(self, root, systemd=False, cron=False, linger="yes", launchctl=False):
        self.dir = root / "fakebin"
        self.dir.mkdir(exist_ok=True)
        self.calls_file = root / "fakebin.calls"
        bus = "exit 0" if systemd else 'echo "Failed to connect to bus: No medium found" >&2; exit 1'
        self.script("systemctl", f'if [ "$1 $2" = "--user show-environment" ]; then {bus}; fi\nexit 0')
        self.script("loginctl", f'echo "Linger={linger}"')
        self.script("pgrep", "exit 0" if cron else "exit 1")
        if launchctl:
            self.script("launchctl", "exit 0")

    def script(self, name, body):
        path = self.dir / name
        path.write_text(f'#!/bin/sh\necho "{name} $*" >> "{self.calls_file}"\n{body}\n')
        path.chmod(0o755)

    def calls(self):
        return self.calls_file.read_text().splitlines() if self.calls_file.exists() else []

    def env(self, sandbox):
        return {"PATH": f"{self.dir}:{sandbox.env['PATH']}"}


def units(sandbox):
    return sandbox.home / ".config/systemd/user"


def recorded(sandbox):
    path = sandbox.state_dir / "scheduler"
    return path.read_text().strip() if path.exists() else None


# --- the choice --------------------------------------------------------------------------------


def test_systemd_user_timer_where_systemctl_user_works(sandbox, real_crontab):
    fake = FakeBin(sandbox.root, systemd=True, cron=True, linger="no")
    proc = sandbox.run("install", "schedule", env=fake.env(sandbox))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("schedule: runs the tick every minute with a systemd user timer")
    assert "lingering is off" in proc.stdout and "`loginctl enable-linger " in proc.stdout
    assert fake.calls() == ["systemctl --user show-environment", "systemctl --user daemon-reload",
                            "systemctl --user enable --now spillover.timer", f"loginctl show-user {pwd.getpwuid(os.getuid()).pw_name} -p Linger"]
    service = (units(sandbox) / "spillover.service").read_text()
    assert f'ExecStart="{SPILLOVER}" tick\n' in service
    assert "-m spillover" not in service
    assert f"StandardOutput=append:{sandbox.state_dir}/tick.log" in service
    timer = (units(sandbox) / "spillover.timer").read_text()
    assert "OnCalendar=*-*-* *:*:00" in timer and "Persistent=true" in timer
    assert recorded(sandbox) == "systemd"
    assert crontab_l() is None  # cron is not used on top

    again = sandbox.run("install", "schedule", env=fake.env(sandbox))
    assert "unchanged" in again.stdout

    gone = sandbox.run("uninstall", "schedule", env=fake.env(sandbox))
    assert gone.returncode == 0, gone.stderr
    assert "systemctl --user disable --now spillover.timer" in fake.calls()
    assert not (units(sandbox) / "spillover.timer").exists() and not (units(sandbox) / "spillover.service").exists()
    assert recorded(sandbox) is None


def test_cron_only_when_a_cron_daemon_runs(sandbox, real_crontab):
    fake = FakeBin(sandbox.root, systemd=False, cron=True)
    proc = sandbox.run("install", "schedule", env=fake.env(sandbox))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("schedule: runs the tick every minute with a crontab line")
    (line,) = ours(crontab_l())
    assert f"'{SPILLOVER}' tick >>" in line and "-m spillover" not in line
    assert recorded(sandbox) == "cron"
    assert not units(sandbox).exists()
    assert "no cron daemon" not in proc.stdout


def test_no_scheduler_says_so_and_shows_the_alternatives(sandbox, real_crontab):
    fake = FakeBin(sandbox.root, systemd=False, cron=False)
    proc = sandbox.run("install", "schedule", env=fake.env(sandbox))
    assert proc.returncode == 1
    assert "no cron daemon is running" in proc.stderr
    assert "`sudo service cron start`" in proc.stderr and "`loginctl enable-linger $USER`" in proc.stderr
    assert crontab_l() is None and not units(sandbox).exists() and recorded(sandbox) is None


def test_install_cron_installs_without_a_daemon_and_warns(sandbox, real_crontab):
    fake = FakeBin(sandbox.root, systemd=True, cron=False)
    proc = sandbox.run("install", "cron", env=fake.env(sandbox))
    assert proc.returncode == 0, proc.stderr
    assert len(ours(crontab_l())) == 1
    assert "⚠ no cron daemon is running on this machine" in proc.stdout
    assert recorded(sandbox) == "cron"


def test_install_schedule_replaces_an_old_python_m_cron_line_with_the_timer(sandbox, real_crontab):
    old = "* * * * * '/old/checkout/.venv/bin/python' -m spillover tick >>'/old/tick.log' 2>&1 " + install.CRON_MARKER
    crontab_set("17 5 * * 1 /usr/bin/true # mine\n" + old + "\n")
    fake = FakeBin(sandbox.root, systemd=True)
    proc = sandbox.run("install", "schedule", env=fake.env(sandbox))
    assert proc.returncode == 0, proc.stderr
    assert "cron: removed the spillover line" in proc.stdout
    assert crontab_l() == "17 5 * * 1 /usr/bin/true # mine\n"
    assert recorded(sandbox) == "systemd"


def test_launchd_agent_on_macos(sandbox, monkeypatch):
    fake = FakeBin(sandbox.root, systemd=True, cron=True, launchctl=True)
    monkeypatch.setenv("PATH", fake.env(sandbox)["PATH"])
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(install, "console_script", lambda: "/Users/me/.local/bin/spillover")
    schedule.install_schedule(dry_run=False)
    import plistlib

    plist = sandbox.home / "Library/LaunchAgents/dev.spillover.tick.plist"
    data = plistlib.loads(plist.read_bytes())
    assert data["ProgramArguments"] == ["/Users/me/.local/bin/spillover", "tick"]
    assert data["StartInterval"] == 60 and data["Label"] == "dev.spillover.tick"
    assert data["StandardErrorPath"] == str(sandbox.state_dir / "tick.log")
    assert f"launchctl bootstrap gui/{os.getuid()} {plist}" in fake.calls()
    assert recorded(sandbox) == "launchd"
    schedule.uninstall_schedule(dry_run=False)
    assert not plist.exists() and f"launchctl bootout gui/{os.getuid()}/dev.spillover.tick" in fake.calls()


# --- the stable command ------------------------------------------------------------------------


def test_a_link_on_path_is_the_stable_command_and_replaces_a_checkout_venv_statusline(sandbox):
    bin_dir = sandbox.home / ".local/bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "spillover").symlink_to(SPILLOVER)
    sandbox.claude_dir.mkdir(parents=True)
    old = {"type": "command", "command": "/home/me/src/spillover/.venv/bin/spillover statusline"}
    (sandbox.claude_dir / "settings.json").write_text(json.dumps({"statusLine": old}))
    proc = sandbox.run("install", "statusline", check=True)
    got = json.loads((sandbox.claude_dir / "settings.json").read_text())
    assert got["statusLine"]["command"] == f"'{bin_dir}/spillover' statusline"
    assert not (sandbox.home / ".config/spillover/statusline-previous.json").exists()  # an old one of ours is not "yours"
    assert "saved" not in proc.stdout


# --- doctor ------------------------------------------------------------------------------------


def faketime_doctor(sandbox, offset, env):
    full = dict(sandbox.env, **env)
    proc = subprocess.run(["faketime", "-f", f"+{offset}s", sys.executable, "-m", "spillover", "doctor"], cwd=sandbox.root,
                          env=full, capture_output=True, text=True, timeout=60)
    return proc, lines_of(proc)


def test_doctor_systemd_firing_then_not_firing_after_two_periods(wired):
    fake = FakeBin(wired.root, systemd=True, linger="yes")
    env = fake.env(wired)
    assert wired.run("install", "schedule", env=env).returncode == 0
    proc, got = faketime_doctor(wired, 0, env)
    mark, text = got["schedule"][0]
    assert mark == "⚠" and re.fullmatch(r"systemd user timer spillover.timer installed \d+s ago, waiting for its first tick", text), text
    assert wired.run("tick", env=env).returncode == 0
    proc, got = faketime_doctor(wired, 0, env)
    assert got["schedule"][0][0] == "✔" and "installed and firing, last tick" in got["schedule"][0][1]

    proc, got = faketime_doctor(wired, 3 * 60, env)
    mark, text = got["schedule"][0]
    assert mark == "✖" and proc.returncode == 1
    assert text.startswith("systemd user timer spillover.timer installed but not firing: last tick 3m ago, the period is 60s")
    assert text.endswith("fix: `systemctl --user status spillover.timer` and `journalctl --user -u spillover.service`")
    assert "cron" not in proc.stdout.lower()


def test_doctor_cron_without_a_daemon_says_start_it_or_use_the_timer(wired, real_crontab):
    fake = FakeBin(wired.root, systemd=False, cron=False)
    env = fake.env(wired)
    assert wired.run("install", "cron", env=env).returncode == 0
    assert wired.run("tick", env=env).returncode == 0
    proc, got = faketime_doctor(wired, 150, env)
    mark, text = got["schedule"][0]
    assert mark == "✖" and "crontab line installed but not firing: last tick 2m ago" in text
    assert "fix: no cron daemon is running: start it (`sudo service cron start`)" in text


def test_doctor_launchd_fix_names_launchctl_print(wired):
    fake = FakeBin(wired.root)
    plist = wired.home / "Library/LaunchAgents/dev.spillover.tick.plist"
    plist.parent.mkdir(parents=True)
    plist.write_text("<plist><dict><key>Label</key><string>dev.spillover.tick</string></dict></plist>")
    wired.state_dir.mkdir(parents=True, exist_ok=True)
    (wired.state_dir / "scheduler").write_text("launchd\n")
    old = time.time() - 600
    os.utime(wired.state_dir / "scheduler", (old, old))
    proc, got = faketime_doctor(wired, 0, fake.env(wired))
    mark, text = got["schedule"][0]
    assert mark == "✖" and text.startswith("launchd agent dev.spillover.tick installed but not firing: no tick has run yet")
    assert text.endswith(f"fix: `launchctl print gui/{os.getuid()}/dev.spillover.tick`; reload it with `spillover install schedule`")


def test_doctor_with_nothing_installed(sandbox):
    proc, got = faketime_doctor(sandbox, 0, FakeBin(sandbox.root).env(sandbox))
    assert got["schedule"][0] == ("✖", "nothing runs the tick every minute; no tick has run yet; fix: spillover install schedule")


# --- the installed command line, from $HOME with a folder named spillover -------------------------


def unit_command(service_text):
    """The Environment= assignments and the ExecStart argv of a unit, as systemd reads them."""
    env, argv = {}, None
    for line in service_text.splitlines():
        key, _, value = line.partition("=")
        if key == "Environment":
            name, _, val = shlex.split(value.replace("%%", "%"))[0].partition("=")
            env[name] = val
        elif key == "ExecStart":
            argv = shlex.split(value.replace("%%", "%"))
    return env, argv


def shadowing_home(sandbox, kind):
    """$HOME with a folder named spillover: a checkout (no __init__) or a package of its own."""
    folder = sandbox.home / "spillover"
    (folder / "spillover").mkdir(parents=True)
    (folder / "README.md").write_text("# a checkout\n")
    if kind == "package":
        (folder / "__init__.py").write_text("raise ImportError('the wrong spillover')\n")


def user_env(sandbox):
    """What a real user has: none of the sandbox's path overrides, only HOME (and PATH)."""
    env = dict(sandbox.env)
    for name in list(env):
        if name.startswith(("XDG_", "SPILLOVER_", "CLAUDE_")) or name == "PYTHONPATH":
            env.pop(name)
    return env


@pytest.mark.parametrize("kind", ["checkout", "package"])
def test_the_installed_systemd_command_ticks_from_home_with_a_spillover_folder(wired, kind):
    fake = FakeBin(wired.root, systemd=True)
    shadowing_home(wired, kind)
    env = dict(user_env(wired), PATH=fake.env(wired)["PATH"])
    proc = subprocess.run([SPILLOVER, "install", "schedule"], env=env, cwd=wired.home, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    unit_env, argv = unit_command((units(wired) / "spillover.service").read_text())
    assert unit_env == {"HOME": str(wired.home)} and argv == [SPILLOVER, "tick"]
    run = subprocess.run(["env", "-i", *(f"{k}={v}" for k, v in unit_env.items()), *argv], cwd=wired.home,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert wired.state()["route"] == "plan" and wired.usage.hits("/api/oauth/usage")

    # The command earlier versions installed fails in the same place: the setup reproduces the bug.
    old = subprocess.run(["env", "-i", f"HOME={wired.home}", sys.executable, "-m", "spillover", "tick"], cwd=wired.home,
                         capture_output=True, text=True, timeout=60)
    assert old.returncode != 0


def test_the_installed_cron_line_ticks_from_home_with_a_spillover_folder(wired, real_crontab):
    fake = FakeBin(wired.root, cron=True)
    shadowing_home(wired, "package")
    env = dict(user_env(wired), PATH=fake.env(wired)["PATH"])
    proc = subprocess.run([SPILLOVER, "install", "schedule"], env=env, cwd=wired.home, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    (line,) = ours(crontab_l())
    command = line.split(None, 5)[5].replace("\\%", "%")
    run = subprocess.run(["env", "-i", f"HOME={wired.home}", "/bin/sh", "-c", command], cwd=wired.home,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert wired.state()["route"] == "plan"


def test_a_hand_made_unit_from_an_older_readme_is_replaced_and_said(sandbox):
    fake = FakeBin(sandbox.root, systemd=True)
    units(sandbox).mkdir(parents=True)
    (units(sandbox) / "spillover.service").write_text("[Service]\nType=oneshot\nExecStart=/home/me/src/spillover/.venv/bin/python -m spillover tick\n")
    proc = sandbox.run("install", "schedule", env=fake.env(sandbox))
    assert proc.returncode == 0, proc.stderr
    assert "replaced your ~/.config/systemd/user/spillover.service (it ran: /home/me/src/spillover/.venv/bin/python -m spillover tick)" in proc.stdout
    assert f'ExecStart="{SPILLOVER}" tick' in (units(sandbox) / "spillover.service").read_text()


def test_quickstart_without_pipx_or_uv_links_the_venv_into_local_bin(wired, tmp_path_factory):
    """tools/quickstart.sh (what `make quickstart` runs) with neither pipx nor uv on PATH."""
    from tests.conftest import REPO

    fake = FakeBin(tmp_path_factory.mktemp("bin"), systemd=True)
    tools = tmp_path_factory.mktemp("tools")  # the few commands it needs, and no pipx or uv
    for name in ("bash", "sh", "env", "make", "mkdir", "ln", "cat", "dirname"):
        (tools / name).symlink_to(shutil.which(name))
    venv = os.path.dirname(os.path.dirname(SPILLOVER))
    local_bin = wired.home / ".local/bin"
    env = dict(user_env(wired), SHELL="/bin/bash", VENV=venv, PATH=f"{local_bin}:{fake.dir}:{tools}")
    proc = subprocess.run([str(REPO / "tools/quickstart.sh")], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    exe = local_bin / "spillover"
    assert exe.is_symlink() and os.readlink(exe) == SPILLOVER
    assert f"quickstart: no pipx or uv: linked {exe} to {venv}/bin/spillover" in proc.stdout
    assert f"quickstart: spillover is on your PATH: {exe}" in proc.stdout
    unit_env, argv = unit_command((units(wired) / "spillover.service").read_text())
    assert argv == [str(exe), "tick"]  # the stable link, not the venv's own path
    settings = json.loads((wired.claude_dir / "settings.json").read_text())
    assert settings["statusLine"]["command"] == f"'{exe}' statusline"
    assert wired.state()["route"] == "plan"
