"""`spillover hook prompt`: Claude Code's UserPromptSubmit hook that keeps a prompt off a host its
credential does not belong to (design §3a).

Settings files mix: project `.claude/settings.json`, `.claude/settings.local.json` and managed
settings beat the user file key by key, and `apiKeyHelper` is read live while `env` is re-applied
only in trusted workspaces. A failing credential helper does not stop a request (the client sends
it with an empty key), so this hook checks, before every prompt, that the session's effective base
URL (its own environment: the hook inherits the session's live `process.env`) and its effective
credential (the helper from the merged settings files, or a token in the environment) belong
together. When they do not, the prompt is blocked — `{"decision": "block", "reason": …}` on stdout,
exit 0 — with the reason and the fix, and no request is sent.

Only sessions spillover is involved in are checked (its `SPILLOVER_ROUTE` in the environment or its
credential helper in effect); anything unexpected lets the prompt through. Imports: os, sys, json
and spillover.credential (which is itself light).
"""

import json
import os
import sys

from spillover import credential, fsutil, paths

MAX_INPUT = 1 << 20
MANAGED_SETTINGS = "/etc/claude-code/managed-settings.json"
# Claude Code applies a settings change about 1.0-1.2 s after the write (measured, both clients).
HELPER_APPLY_SECONDS = 2.0


def _load(path):
    return fsutil.read_json_object(path)


def settings_files(project_dir, environ, managed=MANAGED_SETTINGS):
    """The settings files in precedence order, lowest first: user, project, local, managed."""
    user_dir = paths.claude_config_dirs(environ.get("CLAUDE_CONFIG_DIR", ""))[0]
    files = [("user", os.path.join(user_dir, "settings.json"))]
    if project_dir:
        files.append(("project", os.path.join(project_dir, ".claude", "settings.json")))
        files.append(("local", os.path.join(project_dir, ".claude", "settings.local.json")))
    files.append(("managed", managed))
    return files


def effective(files):
    """(helper, helper's file, {env name: file that sets it last}, merged env) from the settings."""
    helper, helper_from, env_from, merged = None, None, {}, {}
    for _, path in files:
        data = _load(path)
        if isinstance(data.get("apiKeyHelper"), str):
            # A later file's "" overrides an earlier helper: no helper (`spillover exclude`).
            helper, helper_from = (data["apiKeyHelper"], path) if data["apiKeyHelper"].strip() else (None, None)
        env = data.get("env")
        if isinstance(env, dict):
            for name in env:
                env_from[name] = path
            merged.update(env)
    return helper, helper_from, env_from, merged


def helper_removed_at(state_dir, settings_path):
    """When spillover's last write of `settings_path` (live-status.json) was the plan's phase 2
    removing its apiKeyHelper, or None (SPILLOVER_LIVE_CREDENTIAL=env has no helper to drop)."""
    status = _load(os.path.join(state_dir, paths.LIVE_STATUS_JSON))
    real = os.path.realpath(settings_path)
    for path, entry in status.items():
        if isinstance(entry, dict) and entry.get("route") == "plan" and entry.get("dropped_helper") is True \
                and isinstance(entry.get("at"), (int, float)) and os.path.realpath(path) == real:
            return float(entry["at"])
    return None


def problem(environ, files, config_path, *, state_dir=None, now=None):
    """The reason to block this prompt, or "" when its base URL and credential belong together."""
    helper, helper_from, env_from, merged = effective(files)
    target = credential.helper_target(helper)
    route = environ.get("SPILLOVER_ROUTE", "")
    if not target and not route:
        return ""  # spillover is not involved in this session
    user_file = files[0][1]
    if not target and route == "plan" and env_from.get("SPILLOVER_ROUTE") in (None, user_file) and state_dir:
        # Phase 2 just removed spillover's helper: until the client drops it (about a second), this
        # session still asks it for a key, it refuses (the route is plan), and the plan gets "".
        removed = helper_removed_at(state_dir, user_file)
        if removed is not None and 0 <= (now or 0) - removed < HELPER_APPLY_SECONDS:
            return ("spillover is switching this session back to the plan (its credential helper left settings.json "
                    "a moment ago, and Claude Code applies that about a second after the write). Send the prompt "
                    "again in a second or two.")
    values = credential.read_config(config_path)
    got = credential.session_base_url(environ)
    where = env_from.get("ANTHROPIC_BASE_URL")
    set_by = f" (set by {where})" if where else ""
    tokens = [n for n in ("ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY") if environ.get(n, "").strip()]
    if target:
        want = credential.base_url(target, values) if target in credential.SECRET_KEY else ""
        if route != target and got != want:
            # The settings were just rewritten: the helper is read live, `env` about a second later.
            now = f"to {target}" if merged.get("SPILLOVER_ROUTE") == target else "back to the plan"
            return (f"spillover is switching this session {now} (Claude Code applies a settings change about a "
                    "second after it is written). Send the prompt again in a few seconds.")
        if got != want:
            return (f"spillover's {target} credential helper is in effect (from {helper_from}) but this session's "
                    f"ANTHROPIC_BASE_URL is {got}{set_by}, not the {target} base URL {want or '(not configured)'}. "
                    f"Fix: remove ANTHROPIC_BASE_URL from {where or 'the settings that set it'}, or run "
                    "`spillover exclude` for this project.")
        if tokens:
            token_from = ", ".join(f"{n} (set by {env_from.get(n, 'the environment')})" for n in tokens)
            return (f"this session sends {token_from} to {got}, the {target} spill target, instead of spillover's "
                    f"credential. Fix: remove it from that file, or run `spillover exclude` for this project.")
        return ""
    # spillover's route is in the environment but its helper is not in effect.
    spill_urls = {credential.base_url(t, values): t for t in credential.SECRET_KEY if credential.base_url(t, values)}
    spill_urls.pop(credential.ANTHROPIC_URL, None)
    if got in spill_urls and route == spill_urls[got] and tokens and env_from.get("SPILLOVER_ROUTE") \
            and all(env_from.get(n) == env_from["SPILLOVER_ROUTE"] for n in tokens + ["ANTHROPIC_BASE_URL"]) \
            and all(environ[n].strip() == (values.get(credential.SECRET_KEY[route]) or "").strip() for n in tokens):
        return ""  # SPILLOVER_LIVE_CREDENTIAL=env: the target's own token, from spillover's block
    if got in spill_urls:
        whose = f"the apiKeyHelper of {helper_from}" if helper else (", ".join(tokens) or "the Claude plan's login")
        return (f"this session's ANTHROPIC_BASE_URL is {got}{set_by}, spillover's {spill_urls[got]} target, but its "
                f"credential is {whose}, which does not belong there. Fix: remove the apiKeyHelper or the "
                "ANTHROPIC_* keys from that project's settings, or run `spillover exclude` for this project.")
    return ""


def watchdog(environ):
    """True when this spilled session's decision is stale and its reset passed: the plan was
    published (live_watch), and this prompt must not go to the target."""
    from spillover import live_watch

    state_dir = paths.state_dir()
    if not os.path.exists(os.path.join(state_dir, live_watch.LIVE_JSON)):
        return False
    if live_watch.session_route(environ) in live_watch.PLAN_ROUTES:
        return False
    state = _load(os.path.join(state_dir, paths.STATE_JSON))
    import time

    now = time.time()
    if not (live_watch._stale(state, now) and live_watch._reset_passed(state, now)):
        return False
    from spillover import live

    live.statusline_action("watchdog", state_dir, now)
    return True


def main(argv, environ=None, stdin=None):
    environ = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    try:
        payload = json.loads(stdin.read(MAX_INPUT) or "{}")
    except ValueError:
        payload = {}
    if not isinstance(payload, dict):
        payload = {}
    project = environ.get("CLAUDE_PROJECT_DIR") or payload.get("cwd") or os.getcwd()
    if watchdog(environ):
        sys.stdout.write(json.dumps({"decision": "block", "reason": (
            "spillover brought this session back to the plan: the scheduled tick is not running and the "
            "spill's reset has passed. Send the prompt again in a few seconds (and see `spillover doctor`).")}) + "\n")
        return 0
    import time

    reason = problem(environ, settings_files(project, environ), paths.config_file(), state_dir=paths.state_dir(), now=time.time())
    if reason:
        sys.stdout.write(json.dumps({"decision": "block", "reason": "spillover blocked this prompt: " + reason}) + "\n")
    return 0
