"""`spillover install|uninstall schedule`: run `spillover tick` every minute with what works here.

The choice, in order: a launchd agent on macOS; a systemd user timer where `systemctl --user`
answers; cron where a cron daemon runs. With none of them, say so and show the alternatives.
The choice is recorded (`scheduler` in the state dir) so that `doctor` checks that one only.
Every entry runs the installed console script by its absolute path (install.spillover_command),
with the paths of the installing shell passed through (install.tick_environment).
"""

import os
import plistlib
import shutil
import subprocess
import sys

from spillover import paths
from spillover.errors import SpilloverError
from spillover.install import (CRON_MARKER, _makedirs, _read, _say, _tilde, install_cron, read_crontab, spillover_command,
                               tick_environment, uninstall_cron)
from spillover.fsutil import atomic_write, ensure_state_dir

PERIOD = 60  # seconds between ticks, whatever the scheduler
CHOSEN = "scheduler"  # in the state dir: the scheduler `install` set up, for `doctor`
NAMES = ("systemd", "launchd", "cron")

UNIT_MARKER = "# managed by spillover install schedule; `spillover uninstall schedule` removes it"
SERVICE, TIMER = "spillover.service", "spillover.timer"
LABEL = "dev.spillover.tick"

NONE_FOUND = (
    "no scheduler that runs here: `systemctl --user` does not answer (no systemd user session), this is "
    "not macOS, and no cron daemon is running. Either start a cron daemon (`sudo service cron start`, "
    "or `sudo systemctl enable --now cron`) and run `spillover install schedule` again, or log in "
    "with a systemd user session (`loginctl enable-linger $USER` keeps it without a login) and run it "
    "again. `spillover install cron` installs the cron line anyway; until something runs it, run "
    "`spillover tick` yourself (`while sleep 60; do spillover tick; done` in a tmux window)")


# --- the record ------------------------------------------------------------------------------


def chosen():
    """The scheduler `install` recorded, or None."""
    text = (_read(paths.state_path(CHOSEN)) or "").strip()
    return text if text in NAMES else None


def record(name):
    ensure_state_dir()
    atomic_write(paths.state_path(CHOSEN), name + "\n", mode=0o600)


def forget(name=None):
    if name is None or chosen() == name:
        try:
            os.unlink(paths.state_path(CHOSEN))
        except FileNotFoundError:
            pass


# --- what works here -------------------------------------------------------------------------


def _run(*argv, timeout=30):
    """(exit status, stdout + stderr) of a command; 127 when it is not there."""
    exe = shutil.which(argv[0])
    if not exe:
        return 127, f"`{argv[0]}` is not on PATH"
    try:
        proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, str(exc)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def systemd_works():
    return _run("systemctl", "--user", "show-environment")[0] == 0


def launchd_works():
    return sys.platform == "darwin" and shutil.which("launchctl") is not None


def detect():
    """(name, why) of the scheduler to use here; SpilloverError when nothing would run the tick."""
    from spillover.install import cron_daemon_running

    if launchd_works():
        return "launchd", "a launchd agent (macOS)"
    if systemd_works():
        return "systemd", "a systemd user timer (`systemctl --user` works here)"
    if cron_daemon_running():
        if shutil.which("crontab") is None:
            raise SpilloverError("a cron daemon runs but there is no `crontab` command: install the cron package (`apt install cron`)")
        return "cron", "a crontab line (a cron daemon runs here; no systemd user session)"
    raise SpilloverError(NONE_FOUND)


# --- install schedule --------------------------------------------------------------------------


def install_schedule(dry_run, shell=None):
    name, why = detect()
    if dry_run:
        _say("schedule", f"would run the tick every minute with {why}")
        INSTALL[name](dry_run, shell)
        return
    _say("schedule", f"runs the tick every minute with {why}")
    INSTALL[name](dry_run, shell)
    record(name)
    for other in NAMES:  # an earlier install may have used another one: one scheduler only
        if other != name and INSTALLED[other]():
            UNINSTALL[other](dry_run, shell)


def uninstall_schedule(dry_run, shell=None):
    found = False
    for name in NAMES:
        if INSTALLED[name]():
            found = True
            UNINSTALL[name](dry_run, shell)
    if not dry_run:
        forget()
    if not found:
        _say("schedule", "no spillover cron line, systemd timer or launchd agent, nothing to remove")


# --- cron (the line lives in install.py: `install cron` is its own piece too) ------------------


def cron_installed():
    if shutil.which("crontab") is None:
        return False
    try:
        return any(CRON_MARKER in line for line in read_crontab().splitlines())
    except SpilloverError:
        return False


def _install_cron(dry_run, shell=None):
    install_cron(dry_run, shell, via_schedule=True)


# --- systemd -----------------------------------------------------------------------------------


def systemd_dir():
    return os.path.join(paths.config_home(), "systemd", "user")


def _unit_quote(value):
    """A double-quoted word in a unit file: backslash and quote escaped, % doubled (a specifier)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def service_text():
    log = paths.state_path(paths.LOG).replace("%", "%%")
    env = "".join(f"Environment={_unit_quote(f'{k}={v}')}\n" for k, v in tick_environment().items())
    return (f"{UNIT_MARKER}\n[Unit]\nDescription=spillover tick: decide the Claude Code route\n\n"
            f"[Service]\nType=oneshot\n{env}"
            f"ExecStart={' '.join(_unit_quote(word) for word in spillover_command())} tick\n"
            f"StandardOutput=append:{log}\nStandardError=append:{log}\n")


def timer_text():
    return (f"{UNIT_MARKER}\n[Unit]\nDescription=Run spillover tick every minute\n\n"
            "[Timer]\nOnCalendar=*-*-* *:*:00\nAccuracySec=1s\nPersistent=true\n\n"
            "[Install]\nWantedBy=timers.target\n")


def _exec_start(text):
    return next((line.partition("=")[2].strip() for line in text.splitlines() if line.startswith("ExecStart=")), "")


def systemd_installed():
    return UNIT_MARKER in (_read(os.path.join(systemd_dir(), TIMER)) or "")


def _systemctl(*argv):
    code, out = _run("systemctl", "--user", *argv)
    if code != 0:
        raise SpilloverError(f"`systemctl --user {' '.join(argv)}` failed: {out or f'exit status {code}'}")


def install_systemd(dry_run, shell=None):
    wanted = {SERVICE: service_text(), TIMER: timer_text()}
    changed = [name for name, text in wanted.items() if _read(os.path.join(systemd_dir(), name)) != text]
    where = _tilde(systemd_dir())
    if dry_run:
        _say("systemd", f"would write {', '.join(changed)} in {where} and enable spillover.timer" if changed
             else f"{SERVICE} and {TIMER} in {where} are up to date (would enable spillover.timer)")
        return
    ensure_state_dir()  # the service appends to tick.log in it
    _makedirs(systemd_dir(), 0o755)
    for name in changed:
        path = os.path.join(systemd_dir(), name)
        current = _read(path)
        if current is not None and UNIT_MARKER not in current:  # a unit made by hand from an older README
            _say("systemd", f"replaced your {_tilde(path)} (it ran: {_exec_start(current) or 'no ExecStart'})")
        atomic_write(path, wanted[name], mode=0o644)
    _systemctl("daemon-reload")
    _systemctl("enable", "--now", TIMER)
    _say("systemd", (f"wrote {', '.join(changed)} in {where}" if changed else f"{SERVICE} and {TIMER} in {where} unchanged")
         + "; spillover.timer enabled (`systemctl --user list-timers spillover.timer`)")
    linger = lingering()
    if linger is False:
        user = _user()
        _say("systemd", f"⚠ lingering is off for {user}: the timer stops when your last session ends (SSH, tmux "
                        f"detached); keep it running with `loginctl enable-linger {user}`")


def _user():
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return os.environ.get("USER", "$USER")


def lingering():
    """True/False from loginctl, None when it cannot tell."""
    code, out = _run("loginctl", "show-user", _user(), "-p", "Linger")
    if code != 0:
        return None
    value = out.strip().partition("=")[2].strip()
    return {"yes": True, "no": False}.get(value)


def uninstall_systemd(dry_run, shell=None):
    where = _tilde(systemd_dir())
    if dry_run:
        _say("systemd", f"would disable spillover.timer and remove {SERVICE}, {TIMER} from {where}")
        return
    _run("systemctl", "--user", "disable", "--now", TIMER)  # best effort: the session may be gone
    for name in (TIMER, SERVICE):
        path = os.path.join(systemd_dir(), name)
        if UNIT_MARKER in (_read(path) or ""):
            os.unlink(path)
    _run("systemctl", "--user", "daemon-reload")
    forget("systemd")
    _say("systemd", f"disabled spillover.timer and removed {SERVICE}, {TIMER} from {where}")


# --- launchd -----------------------------------------------------------------------------------


def plist_path():
    return os.path.join(os.path.expanduser("~"), "Library", "LaunchAgents", f"{LABEL}.plist")


def plist_data():
    log = paths.state_path(paths.LOG)
    return {"Label": LABEL, "ProgramArguments": [*spillover_command(), "tick"], "StartInterval": PERIOD,
            "RunAtLoad": True, "EnvironmentVariables": tick_environment(), "StandardOutPath": log,
            "StandardErrorPath": log, "WorkingDirectory": os.path.expanduser("~")}


def plist_text():
    return plistlib.dumps(plist_data(), sort_keys=False).decode()


def launchd_installed():
    text = _read(plist_path())
    return text is not None and LABEL in text


def _domain():
    return f"gui/{os.getuid()}"


def install_launchd(dry_run, shell=None):
    path, text = plist_path(), plist_text()
    same = _read(path) == text
    if dry_run:
        _say("launchd", f"{_tilde(path)} is up to date" if same else f"would write {_tilde(path)} and load it")
        return
    ensure_state_dir()
    if not same:
        _makedirs(os.path.dirname(path), 0o755)
        atomic_write(path, text, mode=0o644)
    _run("launchctl", "bootout", f"{_domain()}/{LABEL}")  # reload: it may hold an older copy
    code, out = _run("launchctl", "bootstrap", _domain(), path)
    note = "" if code == 0 else f" (`launchctl bootstrap {_domain()} {path}` said: {out or code}; it loads at your next login)"
    _say("launchd", f"{'unchanged' if same else 'wrote'} {_tilde(path)}, loaded as {LABEL}, every {PERIOD}s{note}")


def uninstall_launchd(dry_run, shell=None):
    path = plist_path()
    if dry_run:
        _say("launchd", f"would unload {LABEL} and remove {_tilde(path)}")
        return
    _run("launchctl", "bootout", f"{_domain()}/{LABEL}")
    if os.path.exists(path):
        os.unlink(path)
    forget("launchd")
    _say("launchd", f"unloaded {LABEL} and removed {_tilde(path)}")


def _uninstall_cron(dry_run, shell=None):
    uninstall_cron(dry_run, shell)


INSTALL = {"systemd": install_systemd, "launchd": install_launchd, "cron": _install_cron}
UNINSTALL = {"systemd": uninstall_systemd, "launchd": uninstall_launchd, "cron": _uninstall_cron}
INSTALLED = {"systemd": systemd_installed, "launchd": launchd_installed, "cron": cron_installed}


def installed():
    """The schedulers that have a spillover entry now."""
    return [name for name in NAMES if INSTALLED[name]()]
