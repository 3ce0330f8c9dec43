"""Running sessions follow the route (design §3a): the settings publisher, pushed ticks, the
StopFailure hook, `install live`, `exclude`, and the statusline's self-heal and watchdog actions.

The light checks that run on every status-line render live in live_watch.py; it imports this
module only when it has something to do.
"""

import json
import os
import sys
import time

from spillover import fsutil, paths
from spillover.publishers import claude_settings as cs

LIVE_JSON = "live.json"  # `install live` ran: {"installed_at", "command", "env", "dirs"}
WALLS_JSONL = "walls.jsonl"  # what the StopFailure hook saw: read by sources/stopfailure.py
PENDING = "tick.pending"  # a pushed tick found the lock held: the running tick runs once more
PUSH_STAMP = "push.stamp"  # mtime: the last tick a statusline reading started
HEAL_STAMP = "heal.stamp"  # mtime: the last self-heal rewrite
SESSIONS_JSON = "live-sessions.json"  # {session id: [route it reports, at]}, from the statusline
STATUS_JSON = paths.LIVE_STATUS_JSON  # {settings path: {status, reason, route, phase, at}}: status, doctor, the guard
PUSH_EVERY = 30.0
HEAL_EVERY = 10.0
# What a pushed tick must not take from the session it was started in: the session's route, its
# config dir, its keys. The tick runs with the scheduled tick's environment (live.json) instead.
SCRUB_PREFIXES = ("ANTHROPIC_", "OPENROUTER_", "CLAUDE_", "SPILLOVER_ROUTE", "AWS_", "GOOGLE_", "VERTEX_")
KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "USER", "LOGNAME", "SPILLOVER_CONFIG", "SPILLOVER_STATE_DIR",
        "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME")
STOP_FAILURE_MATCHERS = ("rate_limit", "billing_error", "authentication_failed")
UNHEALTHY_ERRORS = ("billing_error", "authentication_failed")


# --- the record of `install live` ------------------------------------------------------------


def _load_json(path):
    return fsutil.read_json_object(path)


def installed(state_dir):
    """live.json when `spillover install live` ran, else None."""
    data = _load_json(os.path.join(state_dir, LIVE_JSON))
    return data or None


def enabled(cfg, state_dir):
    """SPILLOVER_LIVE=on|off; unset: on once `install live` ran."""
    if cfg.live == "off":
        return False
    return cfg.live == "on" or installed(state_dir) is not None


def command(state_dir):
    """The absolute spillover command recorded by `install live`, else this one's."""
    recorded = (installed(state_dir) or {}).get("command")
    if isinstance(recorded, list) and recorded and all(isinstance(w, str) for w in recorded) and os.path.isabs(recorded[0]):
        return recorded
    from spillover import install

    return install.spillover_command()


def excluded_dirs(cfg):
    return [os.path.abspath(os.path.expanduser(d)) for d in (cfg.live_exclude or "").split(":") if d.strip()]


# --- the publisher ---------------------------------------------------------------------------


def settings_paths(cfg):
    return [os.path.join(d, "settings.json") for d in cfg.claude_dirs]


def publish_view(state_dir, view, *, cfg=None, now=None):
    """The tick's publisher call (publishers/claude_settings.PUBLISHER): True when a file changed."""
    from spillover import config

    cfg = config.load() if cfg is None else cfg
    if not enabled(cfg, state_dir):
        return False
    now = time.time() if now is None else now
    return any([publish_one(state_dir, path, view, cfg, now).changed for path in settings_paths(cfg)])


def publish_one(state_dir, path, view, cfg, now, *, sessions_on_plan=False, force=False, phase=None):
    private = cs.private_state_path(state_dir, path)
    plan = view.route in cs.PLAN_ROUTES
    if phase is None:
        phase = cs.plan_phase(private, now, sessions_on_plan=sessions_on_plan, shift=cs.plan_shift(view.route, view.pairs)) if plan else 1
    helper = None
    if not plan:
        helper = cs.helper_command(command(state_dir), view.route, config=paths.config_file(), state_dir=state_dir)
    try:
        block = cs.managed_block(view.route, view.pairs, helper, phase=phase, credential=cfg.live_credential)
        result = cs.apply(path, block, now=now, state=private)
        if force and result.status == "unchanged" and _rewrite_same(path):
            result = cs.Result("written", changed=True, route=result.route, phase=result.phase)
    except (OSError, ValueError) as exc:
        result = cs.Result("invalid", reason=f"{path}: {getattr(exc, 'strerror', None) or exc}", route=view.route, phase=phase)
    _record_status(state_dir, path, result, now)
    if result.changed and plan and result.phase == 1:
        spawn(["hook", "settle"], state_dir, delay=cs.SETTLE_SECONDS + 0.5)
    return result


def _rewrite_same(path):
    """Write the settings file again with the same content (a new inode and mtime): the self-heal
    for a client that dropped spillover's write as an echo of its own (2.1.1xx)."""
    real = os.path.realpath(path)
    raw, st = cs._read(real)
    if raw is None:
        return False
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return cs._replace_if_same(real, text, raw, st)[0]  # lost to a concurrent write: that one is new anyway


def _record_status(state_dir, path, result, now):
    file = os.path.join(state_dir, STATUS_JSON)
    data = _load_json(file)
    entry = {"status": result.status, "reason": result.reason, "route": result.route, "phase": result.phase,
             "dropped_helper": result.dropped_helper}
    if {k: (data.get(path) or {}).get(k) for k in entry} == entry:
        return
    data[path] = dict(entry, at=now)
    try:
        fsutil.ensure_state_dir(state_dir)
        fsutil.atomic_write(file, json.dumps(data, indent=1, sort_keys=True) + "\n", mode=0o600)
    except OSError:
        pass


def publish_route(state_dir, route, *, cfg=None, now=None, sessions_on_plan=False, only_settings=False, phase=None, force=False,
                  always=False, downshift=True):
    """Publish `route` through the publishers (all of them, or only the settings one). On the plan
    route the last decision's downshift stays in (unless `downshift` is False: uninstall)."""
    from spillover import config, publishers, targets
    from spillover.publishers.base import RouteView

    cfg = config.load() if cfg is None else cfg
    now = time.time() if now is None else now
    shifts = _state_downshift(state_dir) if downshift and route == "plan" else ()
    view = RouteView(route, tuple(targets.route_env(route, cfg, downshift=shifts)), "", "")
    if not only_settings:
        for name, publisher in publishers.REGISTRY.items():
            if name != cs.PUBLISHER.name:
                publisher.publish(state_dir, view)
    if not always and not enabled(cfg, state_dir):
        return []
    return [publish_one(state_dir, path, view, cfg, now, sessions_on_plan=sessions_on_plan, phase=phase, force=force)
            for path in settings_paths(cfg)]


def _state_downshift(state_dir):
    """The downshift of the last decision, when it was the plan (state.json)."""
    from spillover.state import State

    state = State.load(state_dir)[0]
    shifts = (state.details or {}).get("downshift") if state.route == "plan" else None
    return [s for s in shifts if isinstance(s, dict)] if isinstance(shifts, list) else ()


def published(state_dir, path):
    """(route, phase) spillover last wrote into the settings file at `path`; ("plan", 2) when nothing."""
    private = cs.load_state(cs.private_state_path(state_dir, path))
    route = private.get("route")
    if not isinstance(route, str):
        return "plan", 2
    return route, private.get("phase") or 1


# --- detached ticks ----------------------------------------------------------------------------


def tick_env(state_dir, environ=None):
    """The scheduled tick's environment: what `install live` recorded, else the caller's with the
    session's route, config dir and keys scrubbed."""
    environ = os.environ if environ is None else environ
    env = {k: v for k, v in environ.items() if k in KEEP}
    recorded = (installed(state_dir) or {}).get("env")
    if isinstance(recorded, dict):
        env.update({k: v for k, v in recorded.items() if isinstance(k, str) and isinstance(v, str)})
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env["SPILLOVER_STATE_DIR"] = env.get("SPILLOVER_STATE_DIR") or state_dir
    env["SPILLOVER_CONFIG"] = env.get("SPILLOVER_CONFIG") or paths.config_file()
    recorded = recorded if isinstance(recorded, dict) else {}
    return {k: v for k, v in env.items() if k in recorded or not k.startswith(SCRUB_PREFIXES)}


def spawn(args, state_dir, *, delay=0.0, environ=None):
    """Run `spillover ARGS` detached: a double fork (its own session, stdin/stdout on /dev/null,
    stderr to the tick log, reparented at once), so it never blocks or slows the caller (a Claude
    Code hook, the statusline). It runs in the forked copy of this process (no new interpreter to
    start: a wall reaches the tick sooner) with the scheduled tick's environment, not the caller's."""
    env = tick_env(state_dir, environ)
    if delay:
        env["SPILLOVER_DELAY"] = f"{delay:.2f}"
    try:
        pid = os.fork()
    except OSError:
        return False
    if pid:
        try:
            os.waitpid(pid, 0)
        except OSError:
            pass
        return True
    code = 1
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        null = os.open(os.devnull, os.O_RDWR)
        try:
            log = os.open(os.path.join(state_dir, paths.LOG), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError:
            log = null
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(log, 2)
        os.closerange(3, 1024)
        os.chdir("/")
        os.environ.clear()
        os.environ.update(env)
        sys.stdin = open(0, encoding="utf-8", closefd=False)
        sys.stdout = open(1, "w", encoding="utf-8", closefd=False)
        sys.stderr = open(2, "w", encoding="utf-8", closefd=False)
        from spillover import cli

        code = cli.main(list(args)) or 0
    except BaseException:  # noqa: BLE001 - a detached child never returns into the caller's code
        code = 1
    finally:
        os._exit(int(code) if isinstance(code, int) else 1)


def spawn_tick(state_dir, *, poll=False, environ=None):
    return spawn(["tick"] + (["--poll"] if poll else []), state_dir, environ=environ)


def mark_pending(state_dir):
    try:
        with open(os.path.join(state_dir, PENDING), "a"):
            pass
    except OSError:
        pass


def take_pending(state_dir):
    try:
        os.unlink(os.path.join(state_dir, PENDING))
        return True
    except OSError:
        return False


def stamp_due(state_dir, name, every, now):
    """True (and the stamp is renewed) when the machine-wide stamp `name` is older than `every`."""
    path = os.path.join(state_dir, name)
    try:
        if now - os.stat(path).st_mtime < every:
            return False
    except FileNotFoundError:
        pass
    except OSError:
        return False
    try:
        with open(path, "a"):
            pass
        os.utime(path, (now, now))
    except OSError:
        return False
    return True


# --- settle: phase 2 of the way back to the plan ----------------------------------------------


def settle(state_dir, environ=None):
    """`spillover hook settle` (started detached after a phase-1 write): once running sessions had
    time to apply the `""` values, remove spillover's keys (phase 2), under the tick's lock."""
    environ = os.environ if environ is None else environ
    try:
        delay = float(environ.get("SPILLOVER_DELAY") or 0)
    except ValueError:
        delay = 0.0
    time.sleep(max(0.0, min(delay, 60.0)))
    from spillover import config
    from spillover.fsutil import Busy, Lock

    cfg = config.load(environ=tick_env(state_dir, environ))
    for _ in range(40):
        try:
            with Lock(state_dir):
                for path in settings_paths(cfg):
                    route, phase = published(state_dir, path)
                    if route in cs.PLAN_ROUTES and phase == 1:
                        publish_route(state_dir, route, cfg=cfg, only_settings=True)
                return 0
        except Busy:
            time.sleep(0.25)
    return 0


# --- the StopFailure hook ----------------------------------------------------------------------


def stop_failure(payload, environ, state_dir, now):
    """Record what a StopFailure payload says (a wall, or a spill target failing) in walls.jsonl;
    True when a tick should run. A transient limit is not a wall."""
    from spillover.sources.transcripts import classify_wall

    error = payload.get("error") if isinstance(payload.get("error"), str) else ""
    text = payload.get("last_assistant_message") if isinstance(payload.get("last_assistant_message"), str) else ""
    route = (environ.get("SPILLOVER_ROUTE") or "").strip() or "plan"
    entry = {"at": now, "error": error[:40], "route": route[:40]}
    if route not in cs.PLAN_ROUTES and error in UNHEALTHY_ERRORS:
        entry.update(kind="target", target=route)
    elif route in cs.PLAN_ROUTES and error in ("rate_limit", "billing_error"):
        found = classify_wall(text, now)
        if found is None:
            return False
        bucket, resets_at = found
        entry.update(kind="wall", bucket=bucket, resets_at=resets_at)
    else:
        return False
    fsutil.ensure_state_dir(state_dir)
    fsutil.append_jsonl(os.path.join(state_dir, WALLS_JSONL), entry)
    return True


def hook_stop_failure(argv, environ=None, stdin=None):
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    try:
        payload = json.loads(stdin.read(1 << 20) or "{}")
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        return 0
    state_dir = paths.state_dir()
    if stop_failure(payload, environ, state_dir, time.time()):
        spawn_tick(state_dir, environ=environ)
    return 0


# --- install live / uninstall live -------------------------------------------------------------


def _hook_command(state_dir, *words):
    from spillover.publishers.env_files import sh_quote

    argv = command(state_dir)
    return " ".join([sh_quote(w) for w in argv] + list(words) + ["--config", sh_quote(paths.config_file()),
                                                                  "--state-dir", sh_quote(state_dir)])


def is_our_hook(entry, verb):
    """A hook entry spillover wrote (`… spillover … hook VERB …`), whatever path it ran from."""
    if not isinstance(entry, dict) or not isinstance(entry.get("command"), str):
        return False
    words = entry["command"].split()
    return "hook" in words and verb in words and words.index(verb) == words.index("hook") + 1 and "spillover" in entry["command"]


def _strip_ours(groups, verb):
    """`groups` (a hooks event's list) without spillover's entries; empty groups dropped."""
    kept = []
    for group in groups if isinstance(groups, list) else []:
        if not isinstance(group, dict) or not isinstance(group.get("hooks"), list):
            kept.append(group)
            continue
        hooks = [h for h in group["hooks"] if not is_our_hook(h, verb)]
        if hooks:
            kept.append(dict(group, hooks=hooks))
        elif not group["hooks"]:
            kept.append(group)
    return kept


def hook_entries(state_dir):
    """{event: [groups]} spillover adds to settings.json `hooks`."""
    stop = {"type": "command", "command": _hook_command(state_dir, "hook", "stop-failure"), "timeout": 10}
    guard = {"type": "command", "command": _hook_command(state_dir, "hook", "prompt"), "timeout": 10}
    return {"StopFailure": [{"matcher": m, "hooks": [stop]} for m in STOP_FAILURE_MATCHERS],
            "UserPromptSubmit": [{"hooks": [guard]}]}


HOOK_VERBS = {"StopFailure": "stop-failure", "UserPromptSubmit": "prompt"}


def merge_hooks(data, entries):
    """Settings `data` with spillover's hook entries replaced by `entries` ({} removes them)."""
    new = dict(data)
    hooks = dict(new.get("hooks") or {}) if isinstance(new.get("hooks"), dict) else {}
    for event, verb in HOOK_VERBS.items():
        groups = _strip_ours(hooks.get(event), verb) + list(entries.get(event, []))
        if groups:
            hooks[event] = groups
        else:
            hooks.pop(event, None)
    if hooks:
        new["hooks"] = hooks
    else:
        new.pop("hooks", None)
    return new


def _update_settings(path, change):
    """Read, change and replace settings.json atomically, keeping its mode and link, and never
    losing a concurrent write of another key (claude_settings.update). True when written."""
    try:
        outcome, _ = cs.update(path, lambda data, real, st: change(data))
    except ValueError as exc:
        raise ValueError(f"{path} {exc}") from None
    if outcome == "busy":
        raise OSError(f"{path} kept changing; run the command again")
    return outcome == "written"


def install_live(dry_run, shell=None):
    from spillover import config, install
    from spillover.errors import SpilloverError

    cfg = config.load()
    state_dir = fsutil.ensure_state_dir()
    record = {"installed_at": time.time(), "command": install.spillover_command(), "env": install.tick_environment(),
              "dirs": list(cfg.claude_dirs)}
    if cfg.live == "off":
        install._say("live", "SPILLOVER_LIVE=off in the config: the hooks are installed, running sessions are not switched")
    if dry_run:
        for path in settings_paths(cfg):
            install._say("live", f"would add spillover's StopFailure and UserPromptSubmit hooks to {install._tilde(path)} "
                                 "and publish the route into it")
        return
    previous = installed(state_dir) or {}
    if {k: previous.get(k) for k in ("command", "env", "dirs")} != {k: record[k] for k in ("command", "env", "dirs")}:
        fsutil.atomic_write(os.path.join(state_dir, LIVE_JSON), json.dumps(record, indent=1) + "\n", mode=0o600)
    entries = hook_entries(state_dir)
    route = _state_route(state_dir)
    for path in settings_paths(cfg):
        try:
            changed = _update_settings(path, lambda data: merge_hooks(data, entries))
        except (OSError, ValueError) as exc:
            raise SpilloverError(f"{exc}; nothing was changed there") from None
        what = ("added spillover's StopFailure and prompt-guard hooks to" if changed
                else "spillover's StopFailure and prompt-guard hooks are in")
        install._say("live", f"{what} {install._tilde(path)}{'' if changed else ', unchanged'}; running sessions follow the "
                             f"route (now {route})")
    for result in publish_route(state_dir, route, cfg=cfg, only_settings=True):
        if result.status not in ("written", "unchanged"):
            install._say("live", f"✖ {result.reason}")


def _state_route(state_dir):
    from spillover.credential import published_route

    route = published_route(state_dir)
    return route if route else "plan"


def wait_plan(state_dir, cfg, *, timeout=None, say=print):
    """Bring every settings file back to the plan: phase 1, wait until sessions applied it (every
    session the statusline saw reports the plan, or SETTLE_SECONDS), phase 2."""
    timeout = cs.SETTLE_SECONDS + 0.5 if timeout is None else timeout
    results = publish_route(state_dir, "plan", cfg=cfg, only_settings=True, phase=1, always=True, downshift=False)
    if any(r.changed for r in results):
        say(f"wrote the plan values (\"\") into settings.json; waiting up to {timeout:.0f}s for running sessions to apply them")
        start = time.time()
        while time.time() - start < timeout and not sessions_on_plan(state_dir, start):
            time.sleep(0.2)
    return publish_route(state_dir, "plan", cfg=cfg, only_settings=True, phase=2, always=True, downshift=False)


def sessions_on_plan(state_dir, since=0.0, *, window=600.0, now=None):
    """True when every session the statusline saw in the last `window` seconds reports the plan,
    and at least one reported since `since`."""
    now = time.time() if now is None else now
    sessions = _load_json(os.path.join(state_dir, SESSIONS_JSON))
    recent = [v for v in sessions.values() if isinstance(v, list) and len(v) >= 2 and now - float(v[1] or 0) < window]
    return bool(recent) and all(v[0] in cs.PLAN_ROUTES for v in recent) and any(float(v[1]) >= since for v in recent)


def statusline_action(action, state_dir, now):
    """What live_watch decided on a render: phase2 | heal | watchdog | push. Returns the action done."""
    from spillover.fsutil import Busy, Lock

    if action == "push":
        if stamp_due(state_dir, PUSH_STAMP, PUSH_EVERY, now):
            spawn_tick(state_dir, poll=True)
            return "push"
        return None
    if action == "heal" and not stamp_due(state_dir, HEAL_STAMP, HEAL_EVERY, now):
        return None
    try:
        with Lock(state_dir):
            from spillover import config

            cfg = config.load(environ=tick_env(state_dir))  # not the session's environment
            if action == "phase2":
                if not sessions_on_plan(state_dir, 0.0, now=now):
                    return None
                for path in settings_paths(cfg):
                    route, phase = published(state_dir, path)
                    if route in cs.PLAN_ROUTES and phase == 1:
                        publish_route(state_dir, route, cfg=cfg, only_settings=True, sessions_on_plan=True, now=now)
                return "phase2"
            if action == "heal":
                for path in settings_paths(cfg):
                    route, _ = published(state_dir, path)
                    view_route = route
                    publish_route(state_dir, view_route, cfg=cfg, only_settings=True, force=True, now=now,
                                  phase=published(state_dir, path)[1] if route in cs.PLAN_ROUTES else None)
                return "heal"
            if action == "watchdog":
                publish_route(state_dir, "plan", cfg=cfg, now=now)
                return "watchdog"
    except Busy:
        return None
    return None


def uninstall_live(dry_run, shell=None):
    from spillover import config, install

    cfg = config.load()
    state_dir = fsutil.ensure_state_dir()
    if dry_run:
        for path in settings_paths(cfg):
            install._say("live", f"would write the plan values into {install._tilde(path)}, wait until running sessions "
                                 "applied them, then remove spillover's keys and hooks")
        return
    for result in wait_plan(state_dir, cfg, say=lambda text: install._say("live", text)):
        if result.status not in ("written", "unchanged"):
            install._say("live", f"✖ {result.reason}")
    for path in settings_paths(cfg):
        try:
            changed = _update_settings(path, lambda data: merge_hooks(data, {}))
        except (OSError, ValueError) as exc:
            install._say("live", f"✖ {exc}")
            continue
        install._say("live", f"{'removed' if changed else 'no'} spillover hooks in {install._tilde(path)}; "
                             "spillover's keys removed, your own values restored")
    for name in (LIVE_JSON, SESSIONS_JSON, STATUS_JSON):
        try:
            os.unlink(os.path.join(state_dir, name))
        except FileNotFoundError:
            pass


# --- spillover exclude -------------------------------------------------------------------------

EXCLUDE_MARKER = "SPILLOVER_EXCLUDED"


def exclude_block():
    """What an excluded project's `.claude/settings.local.json` holds (it beats the user file):
    every managed variable `""` (the plan's host and models), and `apiKeyHelper` `""`, which
    overrides spillover's helper from the user file (an empty helper is no helper: the OAuth
    login stays in effect)."""
    env = dict.fromkeys(cs.MANAGED_ENV, "")
    env.update({"ANTHROPIC_AUTH_TOKEN": "", "ANTHROPIC_API_KEY": "", cs.MARKER: "plan", EXCLUDE_MARKER: "1"})
    return {"env": env, cs.HELPER_KEY: ""}


def local_settings(directory):
    return os.path.join(os.path.abspath(os.path.expanduser(directory)), ".claude", "settings.local.json")


def _exclude_change(data, on):
    new = dict(data)
    env = dict(new.get("env") or {}) if isinstance(new.get("env"), dict) else {}
    block = exclude_block()
    if on:
        env.update(block["env"])
        new["env"] = env
        new[cs.HELPER_KEY] = ""
        return new
    if env.get(EXCLUDE_MARKER) != "1":
        return new
    for name in block["env"]:
        env.pop(name, None)
    if env:
        new["env"] = env
    else:
        new.pop("env", None)
    if new.get(cs.HELPER_KEY) == "":
        new.pop(cs.HELPER_KEY)
    return new


def excluded_list(cfg):
    return excluded_dirs(cfg)


def set_excluded(directory, on, *, config_path=None):
    """Write (or remove) the project's override and record DIR in SPILLOVER_LIVE_EXCLUDE."""
    from spillover import config

    directory = os.path.abspath(os.path.expanduser(directory))
    if not os.path.isdir(directory):
        raise OSError(f"{directory} is not a directory")
    path = local_settings(directory)
    changed = _update_settings(path, lambda data: _exclude_change(data, on))
    config_path = config_path or paths.config_file()
    values = config.read_file(config_path) if os.path.exists(config_path) else {}
    current = [d for d in (values.get("SPILLOVER_LIVE_EXCLUDE") or "").split(":") if d.strip()]
    wanted = [d for d in current if os.path.abspath(os.path.expanduser(d)) != directory] + ([directory] if on else [])
    if wanted != current:
        _set_config_value(config_path, "SPILLOVER_LIVE_EXCLUDE", ":".join(wanted))
    return path, changed


def _set_config_value(path, name, value):
    from spillover.config import dotenv_quote

    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        lines = []
    lines = [line for line in lines if not line.lstrip().startswith(name + "=")]
    if value:
        lines.append(f"{name}={dotenv_quote(value)}")
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    mode = os.stat(path).st_mode & 0o777 if os.path.exists(path) else 0o600
    fsutil.atomic_write(path, "\n".join(lines) + "\n", mode=mode)


def cmd_exclude(args):
    from spillover import config

    cfg = config.load()
    if args.list or not args.dir:
        dirs = excluded_dirs(cfg)
        for directory in dirs:
            ok = _exclude_in_place(directory)
            print(f"{directory}{'' if ok else '  (override missing: run `spillover exclude ' + directory + '` again)'}")
        if not dirs:
            print("no project is excluded (spillover exclude DIR keeps a project's sessions on the plan while spilled)")
        return 0
    path, changed = set_excluded(args.dir, not args.remove)
    if args.remove:
        print(f"{args.dir}: no longer excluded; {'removed spillover override from' if changed else 'nothing of spillover in'} {path}. "
              "Sessions started there from now on follow the route.")
    else:
        print(f"{args.dir}: excluded; {path} keeps its sessions on the plan even while spilled. Sessions already "
              "running there follow it only if .claude/ existed when they started: restart them.")
    return 0


def _exclude_in_place(directory):
    data = _load_json(local_settings(directory))
    return (data.get("env") or {}).get(EXCLUDE_MARKER) == "1"


# --- doctor ------------------------------------------------------------------------------------

MANAGED_DIR_ENV = "SPILLOVER_MANAGED_SETTINGS_DIR"  # tests point it at a fake /etc/claude-code


def managed_files(environ=None):
    environ = os.environ if environ is None else environ
    base = environ.get(MANAGED_DIR_ENV) or "/etc/claude-code"
    files = [os.path.join(base, "managed-settings.json")]
    drop_in = os.path.join(base, "managed-settings.d")
    try:
        files += sorted(os.path.join(drop_in, n) for n in os.listdir(drop_in) if n.endswith(".json"))
    except OSError:
        pass
    return files


def project_files(cfg):
    """(kind, path) of the project and local settings of every project Claude Code knows
    (`projects` in .claude.json)."""
    seen, out = set(), []
    for config_dir in cfg.claude_dirs:
        for claude_json in {paths.claude_json(config_dir), os.path.join(config_dir, ".claude.json")}:
            projects = _load_json(claude_json).get("projects")
            for project in projects if isinstance(projects, dict) else ():
                if not isinstance(project, str) or project in seen:
                    continue
                seen.add(project)
                out.append(("project", os.path.join(project, ".claude", "settings.json")))
                out.append(("local", os.path.join(project, ".claude", "settings.local.json")))
    return out


def precedence_problems(cfg, environ=None):
    """Lines naming each project, local or managed settings file that sets a key spillover manages
    or its own apiKeyHelper (these beat the user file), and managed settings that disable hooks."""
    out = []
    files = project_files(cfg) + [("managed", p) for p in managed_files(environ)]
    for kind, path in files:
        data = _load_json(path)
        if not data:
            continue
        env = data.get("env") if isinstance(data.get("env"), dict) else {}
        if env.get(EXCLUDE_MARKER) == "1":
            continue  # spillover's own exclude override
        keys = sorted(k for k in env if k in cs.MANAGED_ENV or k in cs.CREDENTIAL_VARS)
        helper = data.get(cs.HELPER_KEY)
        if isinstance(helper, str) and helper.strip():
            from spillover.credential import helper_target

            if helper_target(helper) is None:
                keys.append("apiKeyHelper (its own)")
        if keys:
            out.append((kind, path, f"{kind} settings {path} set {', '.join(keys)}: they beat spillover's user settings, "
                                    "so sessions there do not follow the route (the prompt guard blocks what would mix "
                                    "credentials)", f"remove them, or `spillover exclude {os.path.dirname(os.path.dirname(path))}`"
                                    if kind != "managed" else "ask your administrator"))
        if kind == "managed":
            for key in ("disableAllHooks", "allowManagedHooksOnly"):
                if data.get(key) is True:
                    out.append((kind, path, f"managed settings {path} set {key}: the statusline feed and the StopFailure "
                                            "hook do not run", "ask your administrator"))
    return out


def _runs(command_text):
    """Whether the first word of a command spillover wrote still exists and is executable."""
    import shlex

    try:
        words = shlex.split(command_text)
    except ValueError:
        return False
    return bool(words) and os.path.isabs(words[0]) and os.path.isfile(words[0]) and os.access(words[0], os.X_OK)


def doctor(report, cfg):
    """The live checks (doctor.run calls this with its Report)."""
    from spillover.doctor import FAIL, OK, WARN

    state_dir = paths.state_dir()
    if not enabled(cfg, state_dir):
        report.line(OK if cfg.live == "off" else WARN, "live",
                    "running Claude Code sessions do not follow the route (only sessions started after a flip do)",
                    None if cfg.live == "off" else "spillover install live")
    else:
        report.line(OK, "live", f"running sessions follow the route through settings.json (credential: "
                                f"{'apiKeyHelper' if cfg.live_credential == 'helper' else 'ANTHROPIC_AUTH_TOKEN in settings env'})")
    statuses = _load_json(os.path.join(state_dir, STATUS_JSON))
    for path in settings_paths(cfg):
        data = _load_json(path)
        rec = statuses.get(path) or {}
        if rec.get("status") in ("foreign", "user-helper", "refused", "invalid"):
            report.line(FAIL if rec["status"] in ("refused", "invalid") else WARN, "live", rec.get("reason", ""), None)
        seen = set()
        for what, text in _our_commands(data):
            if text in seen:
                continue  # one StopFailure command under three matchers
            seen.add(text)
            if _runs(text):
                report.line(OK, "live", f"{what} in {path} runs ({text.split()[0]})")
            else:
                report.line(FAIL, "live", f"{what} in {path} is `{text}`, which no longer exists",
                            "spillover install live (or remove it: see README, Running sessions)")
    for _, _, text, fix in precedence_problems(cfg):
        report.line(WARN, "live", text, fix)
    for directory in excluded_dirs(cfg):
        ok = _exclude_in_place(directory)
        report.line(OK if ok else WARN, "live", f"excluded project {directory}" + ("" if ok else ": its override is missing"),
                    None if ok else f"spillover exclude {directory}")


def _our_commands(data):
    """(what, command) of every command spillover wrote into a settings object."""
    from spillover.credential import helper_target

    out = []
    helper = data.get(cs.HELPER_KEY)
    if isinstance(helper, str) and helper_target(helper):
        out.append(("apiKeyHelper", helper))
    status = data.get("statusLine")
    if isinstance(status, dict) and isinstance(status.get("command"), str) and status["command"].split()[-1:] == ["statusline"] \
            and "spillover" in status["command"]:
        out.append(("statusLine", status["command"]))
    hooks = data.get("hooks") if isinstance(data.get("hooks"), dict) else {}
    for event, verb in HOOK_VERBS.items():
        for group in hooks.get(event) or []:
            for entry in (group.get("hooks") or []) if isinstance(group, dict) else []:
                if is_our_hook(entry, verb):
                    out.append((f"{event} hook", entry["command"]))
    return out
