"""`spillover credential --target NAME`: Claude Code's `apiKeyHelper` (design §3a).

Claude Code runs this with the session's own environment before a request (and again after every
settings change) and sends what it prints as both `x-api-key` and `Authorization: Bearer`. It
prints the target's secret read from spillover's private config file only — never from the
environment it runs in, which a project's settings or `.envrc` can shape — and fails closed (exit 1,
nothing on stdout, the reason on stderr) unless:
- the published route (state.json in the state dir) is that target, and
- the session's own `ANTHROPIC_BASE_URL` is that target's base URL,
so a credential never reaches a host it does not belong to.

Imports: os, sys, json, spillover.paths, and python-dotenv for the config file (its own parser,
so the secret is read exactly as the tick reads it).
"""

import os
import re
import sys

from spillover import paths

USAGE = "usage: spillover credential --target openrouter|anthropic|gateway [--config PATH] [--state-dir PATH]"
SECRET_KEY = {"openrouter": "OPENROUTER_API_KEY", "anthropic": "SPILLOVER_ANTHROPIC_API_KEY", "gateway": "SPILLOVER_GATEWAY_TOKEN"}
ANTHROPIC_URL = "https://api.anthropic.com"
DEFAULT_BASE = {"openrouter": "https://openrouter.ai/api", "anthropic": ANTHROPIC_URL, "gateway": ""}
BASE_KEY = {"openrouter": "SPILLOVER_OPENROUTER_BASE_URL", "gateway": "SPILLOVER_GATEWAY_BASE_URL"}

_OUR_HELPER = re.compile(r"spillover\S*\s+(?:-m\s+spillover\s+)?credential\s+--target[ =]['\"]?([A-Za-z0-9_-]+)['\"]?(\s+--\S+(\s+\S+)?)*\s*$")


def helper_target(command):
    """The target of a spillover `apiKeyHelper` command, or None when the command is not spillover's."""
    if not isinstance(command, str):
        return None
    match = _OUR_HELPER.search(command.strip())
    return match.group(1) if match else None


class Refused(Exception):
    """Why the credential is not given; the message never holds a secret."""


def read_config(path):
    """The raw values of the dotenv config file ({} when it is missing)."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return {}
    from io import StringIO

    from dotenv import dotenv_values

    values = dotenv_values(stream=StringIO(text), interpolate=False)
    return {k: ("" if v is None else v) for k, v in values.items()}


def normal_url(url):
    return (url or "").strip().rstrip("/")


def base_url(target, values):
    """The target's base URL as the config file (or the default) gives it."""
    return normal_url(values.get(BASE_KEY.get(target, ""), "") or DEFAULT_BASE[target])


def published_route(state_dir):
    """The route of the last decision: state.json, else the `# route:` line of route.env."""
    from spillover import fsutil

    route = fsutil.read_json_object(os.path.join(state_dir, paths.STATE_JSON)).get("route")
    if isinstance(route, str):
        return route
    return route_from_file(state_dir)


def route_from_file(state_dir):
    """The route named in route.env's header, or None (how a lost state.json is recovered). Here,
    not in publishers/env_files.py, which writes that header: this module stays light, as it runs
    before every request after a flip."""
    try:
        with open(os.path.join(state_dir, paths.ROUTE_ENV), encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("# route: "):
                    return line[len("# route: "):].strip()
    except OSError:
        pass
    return None


def session_base_url(environ):
    """The base URL the session sends to: its ANTHROPIC_BASE_URL, or Anthropic's when unset or ""."""
    return normal_url(environ.get("ANTHROPIC_BASE_URL", "")) or ANTHROPIC_URL


def secret(target, *, config_path, state_dir, environ):
    """The target's secret, or raise Refused. Reads only the config file and the state dir."""
    if target not in SECRET_KEY:
        raise Refused(f"unknown target {target!r}")
    route = published_route(state_dir)
    if route != target:
        raise Refused(f"the published route is {route or 'unknown'}, not {target}")
    values = read_config(config_path)
    want = base_url(target, values)
    got = session_base_url(environ)
    if not want or got != want:
        raise Refused(f"this session's base URL ({got}) is not the {target} base URL ({want or 'not configured'})")
    value = (values.get(SECRET_KEY[target]) or "").strip()
    if not value:
        raise Refused(f"{SECRET_KEY[target]} is not in {config_path} (the credential is read from that file only)")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise Refused(f"{SECRET_KEY[target]} in {config_path} holds control characters")
    return value


def main(argv, environ=None):
    environ = os.environ if environ is None else environ
    target = config_path = state_dir = None
    args = list(argv)
    while args:
        arg = args.pop(0)
        name, eq, value = arg.partition("=")
        if name in ("--target", "--config", "--state-dir"):
            if not eq:
                if not args:
                    print(f"{USAGE}\nspillover credential: {name} needs a value", file=sys.stderr)
                    return 2
                value = args.pop(0)
            if name == "--target":
                target = value
            elif name == "--config":
                config_path = value
            else:
                state_dir = value
        elif arg in ("-h", "--help"):
            print(USAGE + "\n\nprints the target's secret for Claude Code's apiKeyHelper; exit 1, nothing printed, when refused")
            return 0
        else:
            print(f"{USAGE}\nspillover credential: unknown argument {arg!r}", file=sys.stderr)
            return 2
    if not target:
        print(f"{USAGE}\nspillover credential: --target is required", file=sys.stderr)
        return 2
    try:
        value = secret(target, config_path=config_path or paths.config_file(),
                       state_dir=state_dir or paths.state_dir(), environ=environ)
    except Refused as exc:
        print(f"spillover credential: refused: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"spillover credential: refused: {exc.filename or ''} {exc.strerror or exc}", file=sys.stderr)
        return 1
    sys.stdout.write(value + "\n")
    sys.stdout.flush()
    return 0
