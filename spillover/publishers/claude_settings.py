"""Publish the route into Claude Code's user settings, so running sessions follow it (design §3a).

Claude Code watches `$CLAUDE_CONFIG_DIR/settings.json` and re-applies its `env` block to the
running process about a second after a change; every request builds a new API client. So the
route written here reaches the very next request of every running session
(research/claude_code_live.md).

What is written (`managed_block`):
- a spill route: every managed variable into `env` (base URL, model overrides, `""` for the two
  credential variables) plus `SPILLOVER_ROUTE`, and `apiKeyHelper` = an absolute
  `spillover credential --target NAME` command. No secret ever goes into the file: it is often
  0644 and often a symlink into a dotfiles repository. (`SPILLOVER_LIVE_CREDENTIAL=env` writes
  the token into `env` instead, and only into a file private to the user: `env_mode_allowed`.)
- the plan route, phase 1: every managed variable as `""` (a removed key keeps its old value in a
  running process; `""` counts as unset) and `SPILLOVER_ROUTE=plan`; spillover's `apiKeyHelper`
  stays (it now refuses: the route is plan). Removing it in the same write would be unsafe: the
  helper is read live while `env` is applied a second later, and in between a session would send
  the plan's OAuth token to the spill target's base URL.
- the plan route, phase 2 (`plan_phase`: once running sessions had time to apply phase 1):
  `apiKeyHelper` (a configured helper turns the OAuth plan off) and spillover's keys removed, the
  user's own values restored. Between spills the file holds nothing of spillover's.

`apply` merges a block into the file as it is now (not as spillover last wrote it), keeps every
other key and the file's mode, writes through a symlink, and does not lose a concurrent write by
the client or an editor (`update`). It does not fight another tool that manages the same keys, and leaves a
file with the user's own `apiKeyHelper` alone.
"""

import hashlib
import json
import os
import stat
import time
from dataclasses import dataclass

from spillover import fsutil, jsonsafe
from spillover.credential import helper_target
from spillover.fsutil import atomic_write, ensure_state_dir
from spillover.targets import MODEL_VARS, ROUTING_VARS

MARKER = "SPILLOVER_ROUTE"
MANAGED_ENV = ROUTING_VARS + MODEL_VARS + (MARKER,)
CREDENTIAL_VARS = ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY")
HELPER_KEY = "apiKeyHelper"
PLAN_ROUTES = ("plan", "blocked")
# The client applies a change after a 1 s debounce; 2.1.1xx drops a change within 5 s of its own write.
SETTLE_SECONDS = 6.0
RETRIES = 50


@dataclass(frozen=True)
class Result:
    """What `apply` did. status: written | unchanged | foreign | user-helper | refused | invalid | busy."""

    status: str
    changed: bool = False
    reason: str = ""
    route: str = ""
    phase: int = 0
    dropped_helper: bool = False  # this write removed spillover's apiKeyHelper (the guard holds prompts a moment)


def helper_command(argv, target, *, config=None, state_dir=None):
    """The `apiKeyHelper` string: `argv` (the absolute spillover command) + `credential --target
    NAME`, with the config file and state dir pinned (the helper runs with the session's
    environment, which a project can shape)."""
    from spillover.publishers.env_files import sh_quote

    words = [sh_quote(part) for part in argv] + ["credential", "--target", target]
    if config:
        words += ["--config", sh_quote(config)]
    if state_dir:
        words += ["--state-dir", sh_quote(state_dir)]
    return " ".join(words)


def managed_block(route, env_pairs, helper_command, *, phase=1, credential="helper"):
    """What spillover writes for `route`: {"route", "phase", "credential", "env": {NAME: value or
    None}, "apiKeyHelper": command or None}. None means "remove the key (and restore the user's
    own value)". `env_pairs` is targets.route_env(); its secrets are used only when
    credential == "env"."""
    if credential not in ("helper", "env"):
        raise ValueError(f"credential must be helper or env, not {credential!r}")
    if route in PLAN_ROUTES:
        shift = plan_shift(route, env_pairs)
        if phase >= 2:
            env = dict.fromkeys(MANAGED_ENV)
            if shift:
                env.update(shift, **{MARKER: route})
            return {"route": route, "phase": 2, "credential": credential, "env": env, HELPER_KEY: None, "shift": shift}
        env = dict.fromkeys(MANAGED_ENV, "")
        env.update(shift, **{MARKER: route})
        # spillover's helper stays until phase 2: removed now, a session that has not yet applied
        # the "" base URL would send the plan's OAuth token to the spill target (the client sends
        # it to any ANTHROPIC_BASE_URL). Kept, it refuses (the route is plan): an empty key at worst.
        return {"route": route, "phase": 1, "credential": credential, "env": env, HELPER_KEY: None, "keep_helper": True,
                "shift": shift}
    values = dict(env_pairs)
    env = {name: ("" if values.get(name) is None else values[name]) for name in MANAGED_ENV}
    env[MARKER] = route
    helper = None
    if credential == "helper":
        env.update(dict.fromkeys(CREDENTIAL_VARS, ""))
        words = (helper_command or "").split()
        if not words or not os.path.isabs(words[0].strip("'\"")):
            raise ValueError(f"apiKeyHelper must be an absolute command, not {helper_command!r}")
        helper = helper_command
    return {"route": route, "phase": 1, "credential": credential, "env": env, HELPER_KEY: helper}


def plan_shift(route, env_pairs):
    """{alias variable: model id} of a downshift on the plan route (targets.route_env puts the
    walled tier's alias there): it goes into settings.json too, as running sessions resolve model
    aliases per request."""
    if route != "plan":
        return {}
    return {name: value for name, value in env_pairs if name in MODEL_VARS and value}


def private_state_path(state_dir, settings_path):
    """Spillover's private record for one settings file (0600 in the 0700 state dir)."""
    digest = hashlib.sha256(os.path.abspath(settings_path).encode()).hexdigest()[:12]
    return os.path.join(state_dir, f"live-{digest}.json")


def load_state(path):
    return fsutil.read_json_object(path)


def _save_state(path, data):
    ensure_state_dir(os.path.dirname(path))
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True) + "\n", mode=0o600)


def plan_phase(state_path, now, *, sessions_on_plan=False, shift=None):
    """1 or 2: phase 2 (remove the keys) once phase 1 (`""` values) was written more than
    SETTLE_SECONDS ago, or as soon as every live session reported the plan. `shift` is the
    downshift to publish (plan_shift): a change of it on the plan goes through phase 1 again, and
    waits SETTLE_SECONDS whatever the sessions report (they report the plan all along)."""
    private = load_state(state_path)
    if private.get("phase") == 2 and (private.get("shift") or {}) != (shift or {}):
        return 1
    since = private.get("plan_since")
    if not isinstance(since, (int, float)):
        return 1
    if private.get("shift_change"):
        sessions_on_plan = False
    return 2 if sessions_on_plan or now - since >= SETTLE_SECONDS else 1


def _fingerprint(value):
    return None if value is None else hashlib.sha256(str(value).encode()).hexdigest()[:16]


def git_work_tree(directory):
    """The first parent directory holding `.git` (a dir or a worktree file), or None."""
    directory = os.path.abspath(directory)
    while True:
        if os.path.lexists(os.path.join(directory, ".git")):
            return directory
        parent = os.path.dirname(directory)
        if parent == directory:
            return None
        directory = parent


def env_mode_allowed(path):
    """(ok, reason): may the credential itself go into this settings file's `env`? Only into a
    regular file of the user's, mode 0600, not a symlink, not inside a git work tree."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None:
        if stat.S_ISLNK(st.st_mode):
            return False, f"{path} is a symlink (to {os.path.realpath(path)}): a key written there lands in another tree"
        if not stat.S_ISREG(st.st_mode):
            return False, f"{path} is not a regular file"
        if st.st_uid != os.getuid():
            return False, f"{path} belongs to uid {st.st_uid}, not to you"
        if st.st_mode & 0o077:
            return False, f"{path} is readable by others (mode {stat.S_IMODE(st.st_mode):04o}): chmod 600 {path}"
    tree = git_work_tree(os.path.dirname(os.path.abspath(path)))
    if tree:
        return False, f"{path} is inside the git work tree {tree}: a key there can be committed"
    return True, ""


SETTINGS_MAX_BYTES = 4 << 20  # a settings.json is a few KiB; anything larger is not one


def _read(real):
    """(raw bytes or None, stat or None) of the file. Only a bounded regular file is read (a FIFO
    would hang the tick, /dev/zero would fill memory): anything else raises OSError."""
    try:
        return jsonsafe.read_regular(real, SETTINGS_MAX_BYTES)
    except FileNotFoundError:
        return None, None
    except OSError as exc:
        raise OSError(f"{exc}; spillover does not write it") from None


def _foreign(env, data, private):
    """Why another tool seems to manage the keys of this file, or ""."""
    if MARKER in env:
        return ""
    written = private.get("written") or {}
    saved = (private.get("saved") or {}).get("env", {})
    if written:
        changed = sorted(name for name in MANAGED_ENV if name != MARKER and name in env
                         and _fingerprint(env[name]) != written.get(name) and env[name] != saved.get(name))
        if changed:
            return (f"{', '.join(changed)} changed to values spillover did not write and {MARKER} is gone: "
                    "another tool (cc-switch, claude-code-router…) manages this file")
    routing = sorted(name for name in ROUTING_VARS if isinstance(env.get(name), str) and env[name].strip())
    if routing:
        return (f"env sets {', '.join(routing)} without spillover's {MARKER}: another tool (cc-switch, "
                "claude-code-router…) or your own routing manages this file")
    return ""


def _merge(data, block, saved):
    """The new settings object: `data` with the block's managed part, every other key kept."""
    new = dict(data)
    env = dict(new.get("env") or {})
    for name, value in block["env"].items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    if block["phase"] >= 2 and block["route"] in PLAN_ROUTES:
        for name, value in (saved.get("env") or {}).items():
            if block["env"].get(name) is None:  # a downshift's alias wins over the user's own
                env[name] = value
    phase2 = block["route"] in PLAN_ROUTES and block["phase"] >= 2
    if env or not phase2 or saved.get("had_env", "env" in data):
        new["env"] = env
    else:
        new.pop("env", None)  # spillover created `env`: leave no empty one behind
    helper = block[HELPER_KEY]
    if block.get("keep_helper"):
        pass
    elif helper is not None:
        new[HELPER_KEY] = helper
    elif block["route"] in PLAN_ROUTES and block["phase"] >= 2 and saved.get("helper"):
        new[HELPER_KEY] = saved["helper"]
    else:
        new.pop(HELPER_KEY, None)
    return new


def _replace_if_same(real, text, raw, st):
    """Write `text` over `real` unless the file changed since it was read as (raw, st), keeping
    the file's mode. Returns (replaced, others): the bytes of each file another writer renamed
    there between the last look and the commit (put back as they were: fsutil.replace_if_current)."""

    def unchanged():
        again, again_st = _read(real)
        # Content, then inode/mtime last: the window between this check and the commit is a stat.
        if again != raw or fsutil.file_key(again_st) != fsutil.file_key(st):
            return False
        try:
            now_st = os.stat(real)
        except FileNotFoundError:
            now_st = None
        return fsutil.file_key(now_st) == fsutil.file_key(st)

    mode = stat.S_IMODE(st.st_mode) if st is not None else 0o600
    if st is None:
        os.makedirs(os.path.dirname(real), mode=0o700, exist_ok=True)
    return fsutil.replace_if_current(real, text, mode=mode, expected=fsutil.file_key(st), only_if=unchanged,
                                     read_limit=SETTINGS_MAX_BYTES)


def parse_settings(raw):
    """The settings object in `raw` ({} for no file or an empty one); ValueError otherwise."""
    if raw is None or not raw.strip():
        return {}
    try:
        data = jsonsafe.loads(raw)
    except ValueError as exc:
        raise ValueError(f"is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError("is not a JSON object")
    return data


_MISSING = object()


def _carry(data, carried):
    """`data` with what each displaced file changed in the object spillover had read: a three-way
    merge per key (per key of nested objects such as `env` and `hooks`), where a key that `data`
    already changed itself keeps its value."""
    if not carried:
        return data
    data = json.loads(json.dumps(data))
    for base, theirs in carried:
        _three_way(data, base, theirs)
    return data


def _three_way(target, base, theirs):
    for key in set(base) | set(theirs):
        was, now = base.get(key, _MISSING), theirs.get(key, _MISSING)
        if was == now:
            continue
        here = target.get(key, _MISSING)
        if isinstance(now, dict) and isinstance(here, dict) and (was is _MISSING or isinstance(was, dict)):
            _three_way(here, {} if was is _MISSING else was, now)
        elif here == was:
            if now is _MISSING:
                target.pop(key, None)
            else:
                target[key] = now


def update(path, change):
    """The one read-change-write loop for settings.json (`apply`, the hooks, the self-heal).

    `change(data, real, st)` gets the object as the file holds it now ({} for no file) and returns
    the object to write, or anything else to stop (returned as is). A write by the client or an
    editor between the read and the commit is never lost: the commit fails, their file stays, the
    loop reads again, and what a displaced file changed is carried onto the new read (`_carry`).
    Returns (outcome, value), outcome one of written, unchanged, stopped, busy. Raises ValueError
    for a file that is not a JSON object and OSError for one spillover cannot read or write."""
    carried = []
    for _ in range(RETRIES):
        real = os.path.realpath(path)
        raw, st = _read(real)
        read = parse_settings(raw)
        new = change(_carry(read, carried), real, st)
        if not isinstance(new, dict):
            return "stopped", new
        if raw is not None and new == read:
            return "unchanged", new
        replaced, others = _replace_if_same(real, json.dumps(new, indent=2, ensure_ascii=False) + "\n", raw, st)
        if replaced:
            return "written", new
        for other in others:
            try:
                carried.append((read, parse_settings(other)))
            except ValueError:
                pass  # a half-edited file of theirs: theirs is back in place; nothing to carry
        time.sleep(0.005)
    return "busy", None


def apply(path, block, *, now=None, state):
    """Merge `block` into the settings file at `path`; `state` is the path of spillover's private
    record for that file (`private_state_path`). Returns a Result; raises only OSError."""
    now = time.time() if now is None else now
    plan = block["route"] in PLAN_ROUTES
    private = load_state(state)
    chosen = {}  # the block this attempt writes (a downshift or leaving one changes it)

    def stop(status, reason):
        return Result(status, reason=reason, route=block["route"], phase=block["phase"])

    def change(data, real, st):
        nonlocal private
        this = block
        if not isinstance(data.get("env", {}), dict):
            return stop("invalid", f"{path}: not a settings object with an `env` object; spillover did not write it")
        if st is not None and st.st_uid != os.getuid():
            return stop("refused", f"{real} belongs to uid {st.st_uid}, not to you; spillover does not write it")
        env = data.get("env") or {}
        current_helper = data.get(HELPER_KEY)
        if current_helper is not None and helper_target(current_helper) is None:
            return stop("user-helper", f"{path} has your own apiKeyHelper ({str(current_helper)[:60]}): not a subscription login, left alone")
        why = _foreign(env, data, private)
        if why:
            if private.get("foreign", {}).get("reason") != why:
                private["foreign"] = {"reason": why, "since": now}
                _save_state(state, private)
            return stop("foreign", why)
        if private.pop("foreign", None) is not None:
            _save_state(state, private)
        ours_present = MARKER in env or current_helper is not None
        if plan and not ours_present:
            if this.get("shift"):
                # Nothing of a spill to undo: only the downshift's alias goes in (phase 2 at once);
                # "" for the rest would override the user's own shell values for nothing.
                this = managed_block(this["route"], list(this["shift"].items()), None, phase=2, credential=this["credential"])
            else:
                if private:
                    _save_state(state, {})  # nothing of spillover's left to bring back
                    private = {}
                return Result("unchanged", route=this["route"], phase=2)
        old_shift = private.get("shift") if private.get("phase") == 2 else None
        if private.get("phase") == 1 and private.get("shift_change"):
            # Already on the way out of a downshift (its phase 1): the file still holds only the
            # aliases, so a phase-1 write again (a tick, heal, the statusline's phase 2 before
            # SETTLE_SECONDS) keeps them; the full phase-1 block would put "" over the user's own
            # ANTHROPIC_BASE_URL, which a running session then keeps after phase 2.
            old_shift = dict.fromkeys(name for name in private.get("written") or {} if name in MODEL_VARS)
        if plan and this["phase"] == 1 and old_shift and isinstance(old_shift, dict):
            # Only a downshift is in the file (its phase 2): "" just for the aliases it moved.
            this = dict(this, env=_leave_shift(this, old_shift), keep_helper=False)
        if not plan and this["credential"] == "env":
            ok, why = env_mode_allowed(path)
            if not ok:
                return stop("refused", f"SPILLOVER_LIVE_CREDENTIAL=env refused: {why}")
        if (not plan or this.get("shift")) and not private.get("saved"):
            # Before the first spill (or downshift) write: the user's own values of the keys spillover manages.
            private["saved"] = {"env": {k: v for k, v in env.items() if k in MANAGED_ENV and k != MARKER},
                                "had_env": "env" in data}
            _save_state(state, private)
        chosen["block"], chosen["dropped"] = this, current_helper is not None
        return _merge(data, this, private.get("saved") or {})

    try:
        outcome, value = update(path, change)
    except ValueError as exc:
        return stop("invalid", f"{path} {exc}; fix it, spillover did not write it")
    if outcome == "stopped":
        return value
    if outcome == "busy":
        return stop("busy", f"{path} kept changing while spillover wrote it; the next tick retries")
    written = chosen["block"]
    _record(state, private, written, now)
    if outcome == "unchanged":
        return Result("unchanged", route=written["route"], phase=written["phase"])
    return Result("written", changed=True, route=written["route"], phase=written["phase"],
                  dropped_helper=chosen["dropped"] and HELPER_KEY not in value)


def _leave_shift(block, old_shift):
    """The phase-1 env when the file holds only a downshift: the aliases it moved that the new
    block does not keep become "", every other key stays as it is (the user's own)."""
    env = {name: "" for name in old_shift if name in MODEL_VARS}
    env.update(block.get("shift") or {})
    env[MARKER] = block["route"]
    return env


def _record(state, private, block, now):
    plan = block["route"] in PLAN_ROUTES
    shift = block.get("shift") or {}
    if plan and block["phase"] >= 2 and not shift:
        new = {}
    else:
        new = dict(private)
        new["written"] = {name: _fingerprint(value) for name, value in block["env"].items()}
        if plan:
            if block["phase"] == 1 and private.get("phase") == 2:
                # Leaving a downshift's phase 2: its alias must be "" in sessions before it goes.
                new["plan_since"], new["shift_change"] = now, True
            new.setdefault("plan_since", now)
            if block["phase"] >= 2:
                new.pop("shift_change", None)
            new["shift"] = shift
        else:
            for key in ("plan_since", "shift_change", "shift"):
                new.pop(key, None)
        new["route"], new["phase"], new["at"] = block["route"], block["phase"], now
    if new != private:
        _save_state(state, new)
    private.clear()
    private.update(new)


class SettingsPublisher:
    """The publisher (publishers/base.py): the route into settings.json of every configured Claude
    config dir, when SPILLOVER_LIVE is on (default: once `spillover install live` ran). The work
    is in spillover/live.py."""

    name = "claude_settings"

    def publish(self, state_dir, view):
        from spillover import live

        return live.publish_view(state_dir, view)


PUBLISHER = SettingsPublisher()
