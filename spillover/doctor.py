"""`spillover doctor`: one line per piece, ✔ fine / ⚠ worth a look / ✖ broken, each with the exact fix.

It reads what the tick recorded (state.json) instead of polling the usage endpoint, which
rate-limits hard; the only network read is OpenRouter's `/key` (and `/models`) when the tick has
no recent answer. Exit status 1 when anything is ✖, else 0. Secrets are never printed.
"""

import os
import shutil
import sys
import time

from spillover import fastcheck, paths
from spillover.exitcodes import ExitCode
from spillover.errors import ConfigError, SourceError, SpilloverError
from spillover.fmt import ago as _ago
from spillover.fmt import clock as _clock
from spillover.redact import mask, redact

OK, WARN, FAIL = "✔", "⚠", "✖"


class Report:
    def __init__(self, out):
        self.out = out
        self.failed = False
        self.secrets = ()

    def line(self, mark, piece, text, fix=None):
        from spillover.redact import printable, redact

        self.failed |= mark == FAIL
        text = f"{text}" + (f"; fix: {fix}" if fix else "")
        self.out.write(f"{mark} {piece:<11} " + redact(printable(text), self.secrets) + "\n")


def run(now=None, out=None):
    now = time.time() if now is None else now
    report = Report(out or sys.stdout)
    check_paths(report)
    cfg, config_ok = check_config(report)
    from spillover.redact import known_secrets
    from spillover.state import State

    report.secrets = known_secrets(cfg)
    state_ok = check_state(report)
    state = State.load(paths.state_dir())[0] if state_ok else State()
    check_credentials(report, cfg, now)
    check_usage_endpoint(report, cfg, state, now)
    if config_ok:  # with defaults in place of a broken config, the target lines would blame the wrong thing
        check_targets(report, cfg, state, now)
    check_schedule(report, cfg, state, now)
    check_route(report, now)
    check_direnv_and_hook(report)
    check_statusline(report, cfg)
    check_claude(report, state)
    check_rejected_key(report, cfg)
    check_extra_usage(report, cfg)
    if config_ok:
        check_stored_api_key(report, cfg)
    from spillover import live

    if cfg is not None:
        live.doctor(report, cfg)
    return 1 if report.failed else 0


def check_state(report):
    """The state dir is the user's alone and writable, and state.json parses. Returns whether the
    state dir can be used at all."""
    from spillover import fsutil

    directory = paths.state_dir()
    if not os.path.exists(directory):
        return True  # the first tick creates it
    try:
        fsutil.ensure_state_dir(directory)
    except SpilloverError as exc:
        text, _, fix = str(exc).partition("; fix: ")
        report.line(FAIL, "state", text, fix or None)
        return False
    if not os.access(directory, os.W_OK | os.X_OK):
        mode = os.stat(directory).st_mode & 0o7777
        report.line(FAIL, "state", f"state dir {directory} is not writable by you (mode {mode:04o}): no tick can record anything",
                    f"chmod 700 '{directory}'")
        return False
    path = os.path.join(directory, paths.STATE_JSON)
    if os.path.exists(path):
        import json

        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
            damaged = not isinstance(data, dict)
        except (OSError, ValueError):
            damaged = True
        if damaged:
            report.line(WARN, "state", f"{path} is damaged; the next tick rebuilds it", "wait a minute, or run `spillover tick`")
    return True


def check_stored_api_key(report, cfg):
    from spillover import targets
    from spillover.sources import claude_json
    from spillover.tick import STORED_KEY_PROBLEM

    info = claude_json.extra_usage(cfg)
    if info.get("stored_api_key") and any(targets.get(name).leaks_stored_api_key for name in cfg.targets):
        report.line(FAIL, "claude key", STORED_KEY_PROBLEM.format(path=info["path"]).split(": it sends")[0],
                    "it would be sent to the spill target as x-api-key: run `claude /logout`, then `/login` with your Claude account")


# --- owned paths ------------------------------------------------------------------------------


def check_paths(report):
    """The state dir and the config file (and its dir) must be the user's alone (issue 14)."""
    from spillover import fsutil

    state = paths.state_dir()
    problems = []
    if os.path.isdir(state):
        info = os.stat(state)
        if info.st_uid != os.getuid() or info.st_mode & 0o022:
            try:
                fsutil.ensure_state_dir(state)
            except SpilloverError as exc:
                problems.append(str(exc))
    config_file = paths.config_file()
    for path, what in ((config_file, "config file"), (os.path.dirname(config_file), "config dir")):
        problem = fsutil.trust_problem(path, what) if os.path.exists(path) else None
        if problem and problem not in problems:
            problems.append(problem)
    for problem in problems:
        text, _, fix = problem.partition("; fix: ")
        report.line(FAIL, "ownership", text, fix or None)
    if not problems:
        report.line(OK, "ownership", f"state dir and config are yours alone ({state})")


# --- config -----------------------------------------------------------------------------------


def check_config(report):
    """Reports the config file; returns a Config (defaults when the real one does not load)."""
    from spillover import config

    path = os.environ.get("SPILLOVER_CONFIG") or paths.config_file()
    try:
        cfg = config.load()
    except ConfigError as exc:
        if "is not yours alone" in str(exc):
            report.line(FAIL, "config", f"not read: {str(exc).partition('; fix: ')[0]}", "see ownership above")
        else:
            report.line(FAIL, "config", *_config_cause(path, str(exc)))
        from dataclasses import replace

        return replace(config.load(environ={}, path=os.devnull), path=path), False
    if not os.path.exists(path):
        report.line(WARN, "config", f"no config file at {path}: defaults and environment only",
                    f"create it with OPENROUTER_API_KEY=… (then chmod 600 {path})")
    else:
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            report.line(FAIL, "config", f"{path} is readable by others (mode {mode:04o}); it holds keys", f"chmod 600 {path}")
        else:
            report.line(OK, "config", f"{path} (mode {mode:04o})")
    for warning in cfg.warnings:
        if "readable by others" not in warning:
            report.line(WARN, "config", warning)
    # the scheduler starts the tick with a bare environment: a key only in the shell's environment is lost.
    env_only = [k for k in ("OPENROUTER_API_KEY", "OPENROUTER_MANAGEMENT_KEY", "SPILLOVER_ANTHROPIC_API_KEY", "SPILLOVER_GATEWAY_TOKEN")
                if cfg.origin.get(k) == "env" and os.environ.get(k)]
    if env_only:
        report.line(WARN, "config", f"{', '.join(env_only)} set only in your environment: the scheduled tick does not see it",
                    f"put it in {path} (mode 0600)")
    return cfg, True


def _config_cause(path, message):
    """(text, fix) for a config that does not load: the file and line of the bad key, or why the
    file cannot be read."""
    import re

    from spillover import config

    if os.path.exists(path) and not os.access(path, os.R_OK):
        info = os.stat(path)
        mine = info.st_uid == os.getuid()
        text = f"{path} cannot be read by you (mode {info.st_mode & 0o777:04o}{'' if mine else ', owner uid ' + str(info.st_uid)})"
        return text, f"chmod 600 {path}" if mine else f"sudo chown {os.getuid()} {path} && chmod 600 {path}"
    if "cannot be read" in message:
        return message, f"save {path} as UTF-8 text"
    name = re.match(r"([A-Z][A-Z0-9_]*)[=:]", message)
    name = name.group(1) if name else None
    if name and name in os.environ:
        return f"{message} (set in your environment)", f"correct or unset {name} in your shell's environment"
    line = config.line_of(path, name) if name else None
    if line is None and name == "SPILLOVER_THRESHOLD":
        line = config.line_of(path, "SPILLOVER_RESUME")
    if line is not None:
        return f"{path}:{line}: {message}", f"edit line {line} of {path}"
    return f"{path}: {message}", f"edit {path}"


# --- Claude plan ------------------------------------------------------------------------------


def check_credentials(report, cfg, now):
    from spillover.sources import oauth

    if "oauth" not in cfg.sources:
        report.line(OK, "credentials", "not read: the oauth source is off (SPILLOVER_SOURCES)")
        return
    try:
        creds = oauth.load_credentials(cfg.claude_dirs)
    except SourceError as exc:
        report.line(FAIL, "credentials", str(exc), "run `claude` and log in with your Pro/Max account (/login)")
        return
    if creds.expired(now):
        when = _clock(creds.expires_at) if creds.expires_at else "an unknown time"
        report.line(FAIL, "credentials", f"{creds.origin}: the OAuth token expired at {when} (spillover never refreshes it)",
                    "run `claude` once; it renews the token")
        return
    if creds.scopes and "user:profile" not in creds.scopes:
        report.line(FAIL, "credentials", f"{creds.origin}: the token lacks the user:profile scope needed to read usage",
                    "run `claude`, then /login again")
        return
    valid = f", valid until {_clock(creds.expires_at)}" if creds.expires_at else ""
    plan = f", {creds.subscription} plan" if creds.subscription else ""
    report.line(OK, "credentials", f"{creds.origin}{valid}{plan}, scope user:profile")


def check_usage_endpoint(report, cfg, state, now):
    if "oauth" not in cfg.sources:
        return
    rec = state.source("oauth")
    backoff = rec.backoff_until or 0
    if not rec.last_attempt_at:
        report.line(WARN, "usage", "the usage endpoint has not been read yet", "wait for the next tick, or run `spillover tick --poll`")
        return
    if rec.ok:
        report.line(OK, "usage", f"usage endpoint reachable, last read {_ago(now - (rec.last_ok_at or now))}")
        return
    error = redact(rec.error or "failed", cfg.secrets)
    if backoff > now:
        last = f", last good read {_ago(now - rec.last_ok_at)}" if rec.last_ok_at else ""
        report.line(WARN, "usage", f"{error}; backing off until {_clock(backoff)}{last} (other signals still count)")
    elif rec.kind in ("expired", "auth"):
        report.line(FAIL, "usage", error, "run `claude` once to renew its login")
    else:
        report.line(FAIL, "usage", error, "see `spillover status`; check SPILLOVER_CLAUDE_USAGE_URL and your network")


# --- spill targets ----------------------------------------------------------------------------


def check_targets(report, cfg, state, now):
    from spillover import targets

    for name in cfg.targets:
        targets.get(name).doctor(report, cfg, state, now)


def check_models(report, cfg):
    try:
        from spillover import budget
    except ImportError:
        return
    check = getattr(budget, "check_models", None)
    if check is None:
        return
    try:
        results = check(cfg)
    except SourceError as exc:
        report.line(WARN, "models", f"could not read OpenRouter's model list: {redact(exc, cfg.secrets)}", "retry `spillover models --check` later")
        return
    bad = [(slug, hint) for slug, ok, hint in results if not ok]
    if bad:
        text = "; ".join(f"{slug} is not on OpenRouter ({hint})" for slug, hint in bad)
        report.line(FAIL, "models", text, "set SPILLOVER_FABLE_MODEL / _OPUS_ / _SONNET_ / _HAIKU_ / _SUBAGENT_MODEL to slugs from "
                    "`spillover models`, or unset them to follow OpenRouter's catalog")
    else:
        from spillover import catalog

        mapped = catalog.for_config(cfg)
        report.line(OK, "models", f"{len(results)} configured OpenRouter model slug(s) exist; the route maps "
                    + ", ".join(f"{tier} {slug}" for tier, slug in mapped.slugs.items()) + f" ({mapped.source})")


# --- the schedule and the route -----------------------------------------------------------------------


def _tick_age(state, now):
    return None if state.decided_at is None else now - state.decided_at


def _last_log_line():
    try:
        with open(paths.state_path(paths.LOG), encoding="utf-8", errors="replace") as handle:
            lines = [line.strip() for line in handle.readlines()[-20:] if line.strip()]
    except OSError:
        return ""
    return redact(lines[-1])[:200] if lines else ""


SCHEDULER_LABEL = {"systemd": "systemd user timer spillover.timer", "launchd": "launchd agent dev.spillover.tick",
                   "cron": "crontab line"}


def _scheduler_fix(name):
    """What to look at when the chosen scheduler does not fire: the fix for that scheduler only."""
    from spillover import install, schedule

    if name == "systemd":
        fix = "`systemctl --user status spillover.timer` and `journalctl --user -u spillover.service`"
        if not schedule.systemd_works():
            fix += "; `systemctl --user` does not answer here (no user session)"
        if schedule.lingering() is False:
            fix += f"; lingering is off: `loginctl enable-linger {schedule._user()}` keeps the timer running without a login"
        return fix
    if name == "launchd":
        return f"`launchctl print gui/{os.getuid()}/{schedule.LABEL}`; reload it with `spillover install schedule`"
    if not install.cron_daemon_running():
        return ("no cron daemon is running: start it (`sudo service cron start`), or use a systemd user timer "
                "or launchd agent instead (`spillover uninstall cron && spillover install schedule`)")
    return "the cron daemon runs: see tick.log, and run the line's command from `crontab -l` by hand"


def check_schedule(report, cfg, state, now):
    """The chosen scheduler is installed and firing: a tick within two periods."""
    from spillover import install, schedule

    age = _tick_age(state, now)
    firing = age is not None and age <= 2 * schedule.PERIOD
    last = f"last tick {_ago(age)}" if age is not None else "no tick has run yet"
    present = schedule.installed()
    name = schedule.chosen() or (present[0] if present else None)  # an older install recorded nothing
    if name is None:
        if firing:
            report.line(WARN, "schedule", f"no spillover timer, agent or crontab line, but {last} (something else runs it?)",
                        "spillover install schedule")
        else:
            report.line(FAIL, "schedule", f"nothing runs the tick every minute; {last}", "spillover install schedule")
        return
    label = SCHEDULER_LABEL[name]
    if name not in present:
        report.line(FAIL, "schedule", f"the {label} that `spillover install` set up is gone; {last}", "spillover install schedule")
        return
    if not firing and state.config_error:
        report.line(FAIL, "schedule", f"{label} installed; the tick runs but stops at the broken config; {last}",
                    "fix the config line above")
        return
    if not firing:
        try:
            since_install = now - os.stat(paths.state_path(schedule.CHOSEN)).st_mtime
        except OSError:
            since_install = None
        if age is None and since_install is not None and 0 <= since_install <= 2 * schedule.PERIOD:
            report.line(WARN, "schedule", f"{label} installed {_ago(since_install)}, waiting for its first tick")
            return
        log_line = _last_log_line()
        report.line(FAIL, "schedule", f"{label} installed but not firing: {last}, the period is {schedule.PERIOD}s"
                    + (f"; tick.log says: {log_line}" if log_line else ""), _scheduler_fix(name))
        return
    if name == "cron":
        try:
            ours = [line for line in install.read_crontab().splitlines() if install.CRON_MARKER in line]
        except SpilloverError:
            ours = []  # installed() read it a moment ago; nothing more to compare
        if ours and ours[0] != install.cron_line():
            report.line(WARN, "schedule", f"{label} installed, {last}, but it differs from what this install would write "
                        "(another spillover, older paths)", "spillover install schedule")
            return
    if name == "systemd" and schedule.lingering() is False:
        report.line(WARN, "schedule", f"{label} firing, {last}, but lingering is off: it stops when you log out",
                    f"loginctl enable-linger {schedule._user()}")
        return
    report.line(OK, "schedule", f"{label} installed and firing, {last}")


def check_route(report, now):
    code, summary = fastcheck.read(now)
    route_env = paths.state_path(paths.ROUTE_ENV)
    if code == ExitCode.ERROR:
        report.line(FAIL, "route", f"the tick stops at a broken config; the route in place is {summary.get('route') or 'plan'}",
                    "fix the config line above; the next tick decides again")
        return
    if code == ExitCode.STALE:
        report.line(FAIL, "route", summary.get("reason", "stale"), "see the schedule line above")
        return
    if not os.path.exists(route_env):
        report.line(FAIL, "route", f"{route_env} is missing although state.json is fresh", "run `spillover tick`")
        return
    age = summary.get("age_seconds")
    if summary.get("status") == "blocked":
        report.line(FAIL, "route", f"blocked, decided {_ago(age)}: {summary.get('reason') or '-'}",
                    "apply the fix on the target lines above (`spillover status` says why each target is skipped)")
        return
    report.line(OK, "route", f"{summary.get('route')} ({summary.get('status')}), decided {_ago(age)}: {summary.get('reason') or '-'}")


# --- what applies the route -------------------------------------------------------------------


def check_direnv_and_hook(report):
    from spillover import install

    lib = paths.direnv_lib()
    current = install._read(lib)
    has_direnv = shutil.which("direnv") is not None
    lib_ok = current is not None
    if current is None:
        lib_text = f"direnv lib not installed ({lib})"
    elif current != install.direnv_text():
        lib_text = f"direnv lib {lib} is out of date"
    else:
        lib_text = f"direnv lib installed, up to date ({lib})"
    hooks = []
    for shell in install.SHELLS:
        text = install._read(install.rc_file(shell))
        if text and (install.RC_MARKER in text.splitlines() or f"hook {shell}" in text and "spillover" in text):
            hooks.append(install._tilde(install.rc_file(shell)))
    if not lib_ok and not hooks:
        report.line(FAIL, "direnv", lib_text, "spillover install direnv (and `use spillover` in a project's .envrc)")
        report.line(FAIL, "hook", "no prompt hook in ~/.bashrc, ~/.zshrc or config.fish: nothing applies the route to your shells",
                    "spillover install shell, or use direnv")
        return
    if current is None:
        report.line(WARN, "direnv", lib_text, "spillover install direnv, if you use direnv")
    elif current != install.direnv_text():
        report.line(WARN, "direnv", lib_text, "spillover install direnv")
    elif not has_direnv:
        report.line(WARN, "direnv", lib_text + ", but `direnv` is not on PATH", "install direnv, or rely on the prompt hook")
    else:
        report.line(OK, "direnv", lib_text)
    if hooks:
        report.line(OK, "hook", f"prompt hook installed in {', '.join(hooks)} (new shells)")
    else:
        report.line(WARN, "hook", "no prompt hook in your rc files (fine if every project uses direnv)", "spillover install shell")


def check_statusline(report, cfg):
    import json

    from spillover import install

    if "statusline" not in cfg.sources:
        return
    path = install.settings_path()
    try:
        with open(path, encoding="utf-8") as handle:
            settings = json.load(handle)
    except FileNotFoundError:
        settings = {}
    except (OSError, ValueError) as exc:
        report.line(FAIL, "statusline", f"{path} cannot be read ({exc.__class__.__name__})", f"fix the JSON in {path}")
        return
    current = settings.get("statusLine") if isinstance(settings, dict) else None
    if install.is_ours(current):
        report.line(OK, "statusline", f"Claude Code's statusLine runs spillover ({path})")
    else:
        report.line(WARN, "statusline", "Claude Code's statusLine does not feed spillover (it gives a free, fresh quota reading)",
                    "spillover install statusline")


def check_claude(report, state=None):
    """The installed client against the versions the tests cover (the version is the one the
    usage source caches for its User-Agent)."""
    from spillover.sources import oauth

    exe = shutil.which("claude")
    if not exe:
        report.line(FAIL, "claude", "`claude` is not on PATH", "npm install -g @anthropic-ai/claude-code")
        return
    cache = dict((state.source("oauth").extra.get("client") or {}) if state is not None else {})
    version = oauth.claude_version(cache)
    have = oauth.version_key(version)
    if have is None or version == oauth.FALLBACK_CLIENT_VERSION:
        report.line(WARN, "claude", f"{exe} --version printed no version")
        return
    oldest, newest = oauth.OLDEST_SUPPORTED_CLIENT, oauth.NEWEST_TESTED_CLIENT
    if have < oauth.version_key(oldest):
        report.line(FAIL, "claude", f"Claude Code {version} ({exe}) is older than the oldest supported {oldest}",
                    "update it: `claude update` or npm install -g @anthropic-ai/claude-code@latest")
    elif have > oauth.version_key(newest):
        report.line(WARN, "claude", f"Claude Code {version} ({exe}) is newer than tested (newest tested {newest}); "
                    "wall wordings may have changed", "report a wall spillover misses with `spillover status`")
    else:
        report.line(OK, "claude", f"Claude Code {version} ({exe})")


def check_rejected_key(report, cfg):
    """An Anthropic key Claude Code once declined (customApiKeyResponses.rejected keeps its last
    20 characters): Claude Code ignores it, so the anthropic route ends at "Not logged in"."""
    if not cfg.anthropic_key:
        return
    from spillover.sources import claude_json

    loaded = claude_json.load(cfg)
    if claude_json.rejected_key(cfg, cfg.anthropic_key, loaded):
        report.line(FAIL, "anthropic", f"Claude Code has SPILLOVER_ANTHROPIC_API_KEY ({mask(cfg.anthropic_key)}) in "
                    f"customApiKeyResponses.rejected of {loaded[0]}: it ignores that key, and the anthropic route would "
                    "fall back to \"Not logged in\"",
                    f"remove the key's last 20 characters from customApiKeyResponses.rejected in {loaded[0]} "
                    "(or answer Yes when `claude` asks whether to use the key)")


def check_extra_usage(report, cfg):
    try:
        from spillover.sources import claude_json
    except ImportError:
        return
    try:
        info = claude_json.extra_usage(cfg)
    except Exception as exc:  # an optional, informational check must not break doctor
        report.line(WARN, "credits", f"could not read usage-credits state ({exc.__class__.__name__})")
        return
    enabled = info.get("enabled")
    if enabled is None:
        return
    if enabled:
        report.line(OK, "credits", f"Anthropic usage credits are on: at a wall Claude Code continues on them; "
                                   f"spillover {'spills anyway' if cfg.extra_usage == 'spill' else 'stays on the plan'} (SPILLOVER_EXTRA_USAGE={cfg.extra_usage})")
    else:
        report.line(OK, "credits", f"Anthropic usage credits are off ({info.get('reason') or 'disabled'}): spillover spills at the wall")
