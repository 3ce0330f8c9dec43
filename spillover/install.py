"""`spillover install|uninstall [schedule|cron|direnv|shell|statusline|all]`: wire spillover into the
places users touch every day, reversibly. Each piece prints one line per action; `--dry-run` prints what
would change and writes nothing; running an install twice changes nothing the second time.
"""

import json
import os
import pwd
import shutil
import subprocess
import sys

from spillover import __version__, paths
from spillover.errors import SpilloverError, UsageError
from spillover.fsutil import atomic_write
from spillover.publishers.env_files import fish_quote, sh_quote

PIECES = ("schedule", "direnv", "shell", "statusline", "live")  # what `all` does (cron is one schedule)
SHELLS = ("bash", "zsh", "fish")

CRON_MARKER = "# managed by spillover install cron"
# Passed through to the cron line when set, so that cron's bare environment resolves the same paths.
CRON_ENV = ("SPILLOVER_CONFIG", "SPILLOVER_STATE_DIR", "CLAUDE_CONFIG_DIR",
            "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")
NO_CRONTAB = ("no `crontab` command on this machine: install cron (e.g. `apt install cron`), or let "
              "`spillover install schedule` set up a systemd user timer or a launchd agent instead")

DIRENV_HEADER = (f"# spillover {__version__} direnv library, installed by `spillover install direnv`.\n"
                 "# Do not edit: `spillover install direnv` rewrites it, `spillover uninstall direnv` removes it.\n")
DIRENV_MARKER = "direnv library, installed by `spillover install direnv`"

RC_MARKER = "# spillover prompt hook (added by `spillover install shell`; `spillover uninstall shell` removes it)"

PREVIOUS_STATUSLINE = "statusline-previous.json"
STATUSLINE_REFRESH = 10  # seconds


# --- entry points (cli.cmd_install / cmd_uninstall) -------------------------------------------


def install(what="all", dry_run=False, shell=None):
    """Install one piece (schedule, cron, direnv, shell, statusline) or all; `shell` picks the rc file."""
    from spillover import schedule

    from spillover import live

    return _each(what, dry_run, shell, {"schedule": schedule.install_schedule, "cron": install_cron, "direnv": install_direnv,
                                        "shell": install_shell, "statusline": install_statusline, "live": live.install_live})


def uninstall(what="all", dry_run=False, shell=None, purge=False):
    from spillover import schedule

    if purge and what != "all":
        raise UsageError("--purge goes with `uninstall all` only")
    if what == "all" and not dry_run:
        publish_plan("spillover uninstalled: back on the plan")
    from spillover import live

    # live first: running sessions are brought back to the plan while the statusline still runs.
    code = _each(what, dry_run, shell, {"schedule": schedule.uninstall_schedule, "cron": uninstall_cron,
                                        "direnv": uninstall_direnv, "shell": uninstall_shell, "statusline": uninstall_statusline,
                                        "live": live.uninstall_live}, order=("live",))
    if what == "all":
        if not dry_run:
            publish_plan("spillover uninstalled: back on the plan")  # a tick that ran meanwhile spilled nothing
        remove_created_if_empty(dry_run)
        leftovers(dry_run, purge)
    return code


# --- what install created (installed.json in the state dir), so uninstall removes what is ours and empty ---

MANIFEST = "installed.json"


def _manifest_path():
    return paths.state_path(MANIFEST)


def read_manifest():
    try:
        with open(_manifest_path(), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return {"created": [], "modified": []}
    if not isinstance(data, dict):
        return {"created": [], "modified": []}
    return {k: [p for p in data.get(k) or [] if isinstance(p, str)] for k in ("created", "modified")}


def _remember(kind, path):
    """Record that install created (or modified) `path`; best effort, never fails an install."""
    from spillover.fsutil import ensure_state_dir

    path = os.path.abspath(path)
    old_umask = os.umask(0o022)  # the state dir's missing parents (~/.local…) are not left open under umask 000
    try:
        ensure_state_dir()
        data = read_manifest()
        if path in data["created"] or path in data[kind]:
            return
        data[kind].append(path)
        atomic_write(_manifest_path(), json.dumps(data, indent=1) + "\n", mode=0o600)
    except (OSError, SpilloverError):
        pass
    finally:
        os.umask(old_umask)


def _is_empty(path):
    """A file with nothing of the user's in it: blank, or the JSON `{}` install started from."""
    text = _read(path)
    if text is None:
        return False
    if not text.strip():
        return True
    if path.endswith(".json"):
        try:
            return json.loads(text) == {}
        except ValueError:
            return False
    return False


def remove_created_if_empty(dry_run):
    """Remove the files and directories install created that are empty now (deepest first)."""
    data = read_manifest()
    kept = []
    for path in sorted(data["created"], key=lambda p: -p.count(os.sep)):
        if os.path.isdir(path) and not os.path.islink(path):
            if os.listdir(path):
                kept.append(path)
                continue
            if dry_run:
                _say("uninstall", f"would remove the empty directory {_tilde(path)} (install created it)")
                continue
            os.rmdir(path)
            _say("uninstall", f"removed the empty directory {_tilde(path)} (install created it)")
        elif _is_empty(path):
            if dry_run:
                _say("uninstall", f"would remove {_tilde(path)} (install created it; it is empty now)")
                continue
            os.unlink(path)
            _say("uninstall", f"removed {_tilde(path)} (install created it; it is empty now)")
        elif os.path.exists(path):
            kept.append(path)
    if not dry_run and os.path.exists(_manifest_path()):
        data["created"] = kept
        atomic_write(_manifest_path(), json.dumps(data, indent=1) + "\n", mode=0o600)


def publish_plan(reason):
    """Publish the plan route through every publisher (route.env, route.fish, settings.json…) and
    record it in state.json, so that nothing stays spilled once spillover stops ticking."""
    from spillover import config, fsutil, publishers, targets
    from spillover.errors import ConfigError
    from spillover.state import State

    if not os.path.isdir(paths.state_dir()):
        return
    try:
        cfg = config.load()
    except ConfigError:
        cfg = config.load(environ={}, path=os.devnull)
    state_dir = fsutil.ensure_state_dir()
    view = publishers.RouteView("plan", tuple(targets.route_env("plan", cfg, reason=reason)), reason)
    try:
        with fsutil.Lock(state_dir):
            changed = any(publishers.publish_all(state_dir, view).values())
            state, _ = State.load(state_dir)
            if state.route not in (None, "plan"):
                state.route, state.status, state.reason, state.route_reason = "plan", "plan", reason, reason
                state.save(state_dir)
    except fsutil.Busy:
        raise SpilloverError("a tick is running right now; run `spillover uninstall all` again in a minute") from None
    if changed:
        _say("uninstall", f"published the plan route ({_tilde(paths.state_path(paths.ROUTE_ENV))}): "
                          "new shells and Claude Code sessions use your plan, open shells with the prompt hook at their next prompt; "
                          "in any other open shell run `unset ANTHROPIC_BASE_URL ANTHROPIC_AUTH_TOKEN ANTHROPIC_API_KEY` or open a new one")


def leftovers(dry_run, purge):
    """Say what stays after `uninstall all` and how to remove it; with purge, remove it."""
    config_file = paths.config_file()
    state_dir = paths.state_dir()
    config_dir = os.path.dirname(config_file)
    stays = [p for p in (config_file, state_dir) if os.path.exists(p)]
    if purge:
        for path in stays:
            if dry_run:
                _say("uninstall", f"would remove {_tilde(path)}")
                continue
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            _say("uninstall", f"removed {_tilde(path)}")
        for extra in (os.path.join(config_dir, PREVIOUS_STATUSLINE),):
            if os.path.exists(extra) and not dry_run:
                os.unlink(extra)
        if not dry_run and os.path.isdir(config_dir) and not os.listdir(config_dir):
            os.rmdir(config_dir)
            _say("uninstall", f"removed the empty directory {_tilde(config_dir)}")
        return
    if not stays:
        _say("uninstall", "nothing of spillover is left")
        return
    what = {config_file: "config file (your keys)", state_dir: "state dir (route files, history, tick.log)"}
    _say("uninstall", "left in place: " + "; ".join(f"{_tilde(p)} ({what[p]})" for p in stays))
    _say("uninstall", "remove them with `spillover uninstall all --purge` (or `rm -r " + " ".join(sh_quote(_tilde(p)) for p in stays) + "`)")


def _each(what, dry_run, shell, actions, order=()):
    what = tuple(order) + tuple(p for p in PIECES if p not in order) if what == "all" else (what,)
    if len(what) == 1:
        actions[what[0]](dry_run, shell)  # errors go to cli.main: one line, the right exit code
        return 0
    failed = False
    for piece in what:
        try:
            actions[piece](dry_run, shell)
        except SpilloverError as exc:
            print(f"{piece}: ✖ {exc}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


def _say(piece, text):
    print(f"{piece}: {text}")


def _executable(path):
    return bool(path) and os.path.isfile(path) and os.access(path, os.X_OK)


def console_script():
    """The absolute path of the installed `spillover` console script that runs this code, or None.

    The script being run (`sys.argv[0]`), else the one beside the interpreter (a venv's bin/).
    When `spillover` on PATH (or ~/.local/bin/spillover) is a link to that same script, that path
    wins: it is what pipx and `make quickstart` keep stable across upgrades, while a venv's own
    bin/ moves with the venv (a checkout's .venv, a pipx venv rebuilt by `pipx reinstall`)."""
    argv0 = sys.argv[0] if sys.argv else ""
    if os.path.basename(argv0) == "spillover" and _executable(argv0):
        script = os.path.abspath(argv0)
    else:
        script = os.path.join(os.path.dirname(sys.executable), "spillover")
        if not _executable(script):
            return None
    real = os.path.realpath(script)
    for candidate in (shutil.which("spillover"), os.path.join(os.path.expanduser("~"), ".local", "bin", "spillover")):
        if _executable(candidate) and os.path.realpath(candidate) == real:
            return os.path.abspath(candidate)
    return script


def spillover_command():
    """The absolute command that runs this spillover from any directory: the console script, else
    the interpreter with -P (Python 3.11+: the working directory is not put on sys.path, so a folder
    named `spillover` in it is never imported instead of the package)."""
    script = console_script()
    return [script] if script else [sys.executable, "-P", "-m", "spillover"]


def _sh_command(*words):
    """The command, its path quoted for sh; `words` are plain (hook, bash, statusline)."""
    return " ".join([sh_quote(part) for part in spillover_command()] + list(words))


def _fish_command(*words):
    return " ".join([fish_quote(part) for part in spillover_command()] + list(words))


def _is_hook_line(line):
    return "spillover" in line and " hook " in line


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _makedirs(path, mode):
    """os.makedirs with `mode` for every directory it creates, whatever the umask (makedirs alone
    gives the missing parents 0777 under umask 000). Existing directories are left as they are."""
    if os.path.isdir(path):
        return
    _makedirs(os.path.dirname(path), mode)
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        return
    os.chmod(path, mode)
    _remember("created", path)


def _write(path, text, default_mode=0o644):
    """Write through a symlink (dotfile managers link rc files) keeping the file's mode, less any
    group/world write bit; missing directories are created 0755 (0700 for a private file)."""
    real = os.path.realpath(path)
    try:
        mode = os.stat(real).st_mode & 0o755
        created = False
    except FileNotFoundError:
        mode, created = default_mode, True
    _makedirs(os.path.dirname(real), 0o755 if default_mode & 0o044 else 0o700)
    atomic_write(real, text, mode=mode)
    _remember("created" if created else "modified", real)


def _tilde(path):
    home = os.path.expanduser("~")
    return "~" + path[len(home):] if path == home or path.startswith(home + os.sep) else path


# --- cron -------------------------------------------------------------------------------------


def cron_template():
    """The entry line of the shipped template (the first line that is not a comment)."""
    with open(paths.shipped("spillover.cron"), encoding="utf-8") as handle:
        for line in handle:
            if line.strip() and not line.lstrip().startswith("#"):
                return line.rstrip("\n")
    raise SpilloverError(f"{paths.shipped('spillover.cron')}: no entry line (damaged install?)")


def tick_environment(environ=None):
    """NAME -> value a scheduler must pass to the tick so that its bare environment resolves the
    same paths as this shell: CRON_ENV when set, and HOME when it is not the login home."""
    environ = os.environ if environ is None else environ
    env = {}
    home = environ.get("HOME")
    try:
        login_home = pwd.getpwuid(os.getuid()).pw_dir
    except KeyError:
        login_home = None
    if home and home != login_home:
        env["HOME"] = home  # cron, systemd and launchd set HOME from the password database
    env.update({name: environ[name] for name in CRON_ENV if environ.get(name)})
    return env


def cron_line(environ=None):
    assignments = "".join(f"{name}={sh_quote(value)} " for name, value in tick_environment(environ).items())
    line = (cron_template()
            .replace("@ENV@", assignments)
            .replace("@SPILLOVER@", " ".join(sh_quote(word) for word in spillover_command()))
            .replace("@LOG@", sh_quote(paths.state_path(paths.LOG))))
    return line.replace("%", "\\%")  # an unescaped % is a newline to cron


def cron_daemon_running():
    """Whether a cron daemon runs on this machine: `pgrep` when there is one, else /proc."""
    pgrep = shutil.which("pgrep")
    if pgrep:
        try:
            proc = subprocess.run([pgrep, "-x", "cron|crond|cronie|busybox-crond"], capture_output=True, text=True, timeout=10, check=False)
            return proc.returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            pass
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as handle:
                if handle.read().strip() in ("cron", "crond", "cronie"):
                    return True
        except OSError:
            continue
    return False


NO_CRON_DAEMON = ("no cron daemon is running on this machine, so the line does nothing until one does: start it "
                  "(`sudo service cron start`, or `sudo systemctl enable --now cron`), or run `spillover install schedule`")


def _crontab(*args, input=None):
    exe = shutil.which("crontab")
    if not exe:
        raise SpilloverError(NO_CRONTAB.format(python=sys.executable))
    try:
        return subprocess.run([exe, *args], input=input, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SpilloverError(f"crontab {' '.join(args)}: {exc}") from None


def read_crontab():
    """The user's crontab text ('' when there is none)."""
    proc = _crontab("-l")
    if proc.returncode != 0:
        if "no crontab" in proc.stderr.lower():
            return ""
        raise SpilloverError(f"`crontab -l` failed: {proc.stderr.strip() or f'exit status {proc.returncode}'}")
    return proc.stdout


def _write_crontab(lines):
    if not lines:
        proc = _crontab("-r")
        if proc.returncode != 0 and "no crontab" not in proc.stderr.lower():
            raise SpilloverError(f"`crontab -r` failed: {proc.stderr.strip()}")
        return
    proc = _crontab("-", input="\n".join(lines) + "\n")
    if proc.returncode != 0:
        raise SpilloverError(f"`crontab -` refused the new crontab: {proc.stderr.strip()}")


def install_cron(dry_run, shell=None, via_schedule=False):
    line = cron_line()
    lines = read_crontab().splitlines()
    ours = [i for i, text in enumerate(lines) if CRON_MARKER in text]
    if len(ours) == 1 and lines[ours[0]] == line:
        _say("cron", f"already installed, unchanged: {line}")
        _cron_recorded(dry_run, via_schedule)
        return
    verb = "update the spillover line in" if ours else "add to"
    if dry_run:
        _say("cron", f"would {verb} your crontab: {line}")
        return
    if ours:
        lines[ours[0]] = line
        lines = [text for i, text in enumerate(lines) if i not in ours[1:]]
    else:
        lines.append(line)
    from spillover.fsutil import ensure_state_dir

    ensure_state_dir()  # the line appends to a log in it
    _write_crontab(lines)
    _say("cron", f"{'updated' if ours else 'added'} the tick, every minute: {line}")
    _cron_recorded(dry_run, via_schedule)


def _cron_recorded(dry_run, via_schedule):
    from spillover import schedule

    if via_schedule:
        return  # `install schedule` records its own choice and has checked the daemon
    if not dry_run:
        schedule.record("cron")
    if not cron_daemon_running():
        _say("cron", f"⚠ {NO_CRON_DAEMON}")


def uninstall_cron(dry_run, shell=None):
    lines = read_crontab().splitlines()
    kept = [text for text in lines if CRON_MARKER not in text]
    if len(kept) == len(lines):
        _say("cron", "no spillover line in your crontab, nothing to remove")
        return
    if dry_run:
        _say("cron", f"would remove {len(lines) - len(kept)} spillover line(s) from your crontab")
        return
    _write_crontab(kept)
    from spillover import schedule

    schedule.forget("cron")
    _say("cron", f"removed the spillover line from your crontab ({len(kept)} other line(s) untouched)")


# --- direnv -----------------------------------------------------------------------------------


def direnv_text():
    """What `spillover install direnv` writes: a do-not-edit header, then the shipped direnvrc."""
    with open(paths.shipped("direnvrc"), encoding="utf-8") as handle:
        return DIRENV_HEADER + handle.read()


def install_direnv(dry_run, shell=None):
    path = paths.direnv_lib()
    text, current = direnv_text(), _read(path)
    hint = "add `use spillover` to a project's .envrc, then `direnv allow`"
    if current == text:
        _say("direnv", f"{_tilde(path)} is up to date, unchanged ({hint})")
        _private_lib_dir(path, dry_run)
        return
    verb = "update" if current is not None else "write"
    if dry_run:
        _say("direnv", f"would {verb} {_tilde(path)}")
        return
    _write(path, text)
    _say("direnv", f"{'updated' if current is not None else 'wrote'} {_tilde(path)} ({hint})")
    _private_lib_dir(path, dry_run)


def _private_lib_dir(path, dry_run):
    """direnv sources every file in its lib dir: one that others can write runs their code as you.
    A dir of yours loses its group/world write bits (one left by an install under umask 000)."""
    lib = os.path.dirname(os.path.realpath(path))
    try:
        info = os.stat(lib)
    except FileNotFoundError:
        return
    if info.st_uid != os.getuid() or not info.st_mode & 0o022:
        return
    old, new = info.st_mode & 0o7777, info.st_mode & 0o7755
    if dry_run:
        _say("direnv", f"would make {_tilde(lib)} mode {new:o}: others can write it (mode {old:o})")
        return
    os.chmod(lib, new)
    _say("direnv", f"made {_tilde(lib)} mode {new:o}: others could write it (mode {old:o})")


def uninstall_direnv(dry_run, shell=None):
    path = paths.direnv_lib()
    current = _read(path)
    if current is None:
        _say("direnv", f"{_tilde(path)} is not there, nothing to remove")
        return
    if DIRENV_MARKER not in current.split("\n", 1)[0]:
        _say("direnv", f"{_tilde(path)} was not written by spillover, left alone")
        return
    if dry_run:
        _say("direnv", f"would remove {_tilde(path)}")
        return
    os.unlink(path)
    _say("direnv", f"removed {_tilde(path)} (a .envrc that still says `use spillover` will now fail: remove that line)")


# --- shell ------------------------------------------------------------------------------------


def rc_file(shell):
    home = os.path.expanduser("~")
    if shell == "bash":
        return os.path.join(home, ".bashrc")
    if shell == "zsh":
        return os.path.join(os.environ.get("ZDOTDIR") or home, ".zshrc")
    if shell == "fish":
        return os.path.join(paths.config_home(), "fish", "config.fish")
    raise UsageError(f"unknown shell {shell!r}: expected one of {', '.join(SHELLS)}")


def hook_line(shell):
    if shell == "fish":
        return f"{_fish_command('hook', 'fish')} | source"
    return f'eval "$({_sh_command("hook", shell)})"'


def pick_shell(shell=None):
    if shell:
        return shell
    name = os.path.basename(os.environ.get("SHELL", ""))
    if name in SHELLS:
        return name
    raise UsageError(f"cannot tell your shell from $SHELL={os.environ.get('SHELL', '')!r}: pass --shell bash, zsh or fish")


def install_shell(dry_run, shell=None):
    shell = pick_shell(shell)
    path, line = rc_file(shell), hook_line(shell)
    text = _read(path)
    lines = (text or "").splitlines()
    if RC_MARKER in lines:
        at = lines.index(RC_MARKER)
        if at + 1 < len(lines) and lines[at + 1] == line:
            _say("shell", f"{_tilde(path)} already has the {shell} hook, unchanged")
            return
        if dry_run:
            _say("shell", f"would update the hook line in {_tilde(path)}: {line}")
            return
        if at + 1 < len(lines) and _is_hook_line(lines[at + 1]):
            lines[at + 1] = line
        else:
            lines.insert(at + 1, line)
        _write(path, "\n".join(lines) + "\n")
        _say("shell", f"updated the {shell} hook in {_tilde(path)}: {line}")
        return
    if dry_run:
        _say("shell", f"would append to {_tilde(path)}: {line}")
        return
    prefix = "" if not text else ("\n" if text.endswith("\n") else "\n\n")
    _write(path, (text or "") + prefix + RC_MARKER + "\n" + line + "\n")
    _say("shell", f"appended the {shell} hook to {_tilde(path)} (new shells pick up the route at each prompt): {line}")


def uninstall_shell(dry_run, shell=None):
    # Without --shell, clean every rc file: the hook may have been installed under another $SHELL.
    shells = (shell,) if shell else SHELLS
    found = False
    for shell in shells:
        path = rc_file(shell)
        text = _read(path)
        if not text or RC_MARKER not in text.splitlines():
            continue
        found = True
        lines = text.splitlines()
        at = lines.index(RC_MARKER)
        end = at + 2 if at + 1 < len(lines) and _is_hook_line(lines[at + 1]) else at + 1
        if at > 0 and lines[at - 1] == "" and text.endswith("\n"):
            at -= 1  # the blank line install added before the marker
        if dry_run:
            _say("shell", f"would remove the hook from {_tilde(path)}")
            continue
        kept = lines[:at] + lines[end:]
        _write(path, "\n".join(kept) + ("\n" if kept else ""))
        _say("shell", f"removed the hook from {_tilde(path)}")
    if not found:
        _say("shell", "no spillover hook in " + ", ".join(_tilde(rc_file(s)) for s in shells) + ", nothing to remove")


# --- Claude Code statusLine -------------------------------------------------------------------


def settings_path():
    return os.path.join(paths.claude_config_dirs()[0], "settings.json")


def previous_statusline_path():
    """The contract with `spillover statusline`: it chains previous["command"]."""
    return os.path.join(paths.config_home(), "spillover", PREVIOUS_STATUSLINE)


def is_ours(statusline):
    if not isinstance(statusline, dict) or not isinstance(statusline.get("command"), str):
        return False
    words = statusline["command"].split()
    return len(words) >= 2 and words[-1] == "statusline" and "spillover" in " ".join(words[:-1])


def _load_settings(path):
    from spillover.publishers.claude_settings import parse_settings

    try:
        return parse_settings(_read(path))
    except ValueError as exc:
        raise SpilloverError(f"{path} {exc}; fix it first, nothing was changed") from None


def _dump(data):
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def install_statusline(dry_run, shell=None):
    path = settings_path()
    settings = _load_settings(path)
    # refreshInterval: renders also while a session is idle, so that its self-heal and the
    # watchdog (live_watch.py) run without waiting for the next message.
    ours = {"type": "command", "command": _sh_command("statusline"), "refreshInterval": STATUSLINE_REFRESH}
    current = settings.get("statusLine")
    if current == ours:
        _say("statusline", f"{_tilde(path)} already runs `spillover statusline`, unchanged")
        return
    save_previous = current is not None and not is_ours(current)
    if dry_run:
        extra = f" (saving your current one to {_tilde(previous_statusline_path())})" if save_previous else ""
        _say("statusline", f"would set statusLine in {_tilde(path)} to `{ours['command']}`{extra}")
        return
    if save_previous:
        previous = previous_statusline_path()
        _makedirs(os.path.dirname(previous), 0o700)
        atomic_write(previous, _dump(current), mode=0o600)
        _say("statusline", f"saved your statusLine to {_tilde(previous)}; `spillover statusline` runs it and shows its output")
    settings["statusLine"] = ours
    _write(path, _dump(settings), default_mode=0o600)
    _say("statusline", f"set statusLine in {_tilde(path)} to `{ours['command']}` (records the plan's quota on every render)")


def uninstall_statusline(dry_run, shell=None):
    path = settings_path()
    settings = _load_settings(path)
    current = settings.get("statusLine")
    previous_path = previous_statusline_path()
    if not is_ours(current):
        _say("statusline", f"statusLine in {_tilde(path)} is not spillover's, left alone")
        return
    try:
        with open(previous_path, encoding="utf-8") as handle:
            previous = json.load(handle)
    except FileNotFoundError:
        previous = None
    except (OSError, ValueError):
        raise SpilloverError(f"{previous_path} is damaged; fix or delete it, nothing was changed") from None
    if dry_run:
        what = "restore your previous statusLine" if previous else "remove the statusLine key"
        _say("statusline", f"would {what} in {_tilde(path)}")
        return
    if isinstance(previous, dict):
        settings["statusLine"] = previous
    else:
        settings.pop("statusLine", None)
    _write(path, _dump(settings), default_mode=0o600)
    if os.path.exists(previous_path):
        os.unlink(previous_path)
    _say("statusline", f"{'restored your previous statusLine' if isinstance(previous, dict) else 'removed the statusLine key'} in {_tilde(path)}")
