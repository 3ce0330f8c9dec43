"""Shared fixtures: a sandboxed HOME/XDG/CLAUDE_CONFIG_DIR for every test, fake servers, and a
helper that runs `python -m spillover` as a real subprocess in that sandbox."""

import functools
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import fakes

REPO = Path(__file__).resolve().parent.parent
OR_KEY = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc890"
MGMT_KEY = "sk-or-v1-fedcba9876543210fedcba9876543210fedcba9876543210fedcba98765mgt"
ANT_KEY = "sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-ABCDEFGHIJ-xyz"
OAUTH_TOKEN = "sk-ant-oat01-secretsecretsecretsecretsecretsecret-tok"


@dataclass
class Sandbox:
    root: Path
    home: Path
    env: dict

    @property
    def state_dir(self):
        return Path(self.env["SPILLOVER_STATE_DIR"])

    @property
    def config_file(self):
        return Path(self.env["SPILLOVER_CONFIG"])

    @property
    def claude_dir(self):
        return Path(self.env["CLAUDE_CONFIG_DIR"])

    def write_config(self, **values):
        lines = [f"{k}='{v}'" for k, v in values.items()]
        self.config_file.parent.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("\n".join(lines) + "\n")
        self.config_file.chmod(0o600)

    def write_credentials(self, token=OAUTH_TOKEN, expires_in=3600, scopes=("user:profile", "user:inference")):
        self.claude_dir.mkdir(parents=True, exist_ok=True)
        path = self.claude_dir / ".credentials.json"
        path.write_text(json.dumps({"claudeAiOauth": {
            "accessToken": token, "refreshToken": "sk-ant-ort01-refresh-must-never-be-used",
            "expiresAt": int((time.time() + expires_in) * 1000), "scopes": list(scopes),
            "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x"}}))
        path.chmod(0o600)
        return path

    def run(self, *args, env=None, input=None, timeout=60, check=False, at=None):
        """`python -m spillover ARGS` in the sandbox; `at`: faketime's clock for the whole process
        (an offset such as '+3m', or '@2030-01-01 00:00:00')."""
        full_env = dict(self.env, **(env or {}))
        clock = ["faketime", "-f", at] if at else []
        proc = subprocess.run([*clock, sys.executable, "-m", "spillover", *args], cwd=self.root, env=full_env,
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(f"spillover {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def state(self):
        return json.loads((self.state_dir / "state.json").read_text())

    def route_env(self):
        return (self.state_dir / "route.env").read_text()


def sandbox_env(root):
    home = root / "home"
    home.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "USER": os.environ.get("USER", "tester"),
        "LANG": "C.UTF-8",
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local/state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local/share"),
        "CLAUDE_CONFIG_DIR": str(home / ".claude"),
        "SPILLOVER_CONFIG": str(home / ".config/spillover/config.env"),
        "SPILLOVER_STATE_DIR": str(home / ".local/state/spillover"),
        "PYTHONPATH": str(REPO),
        "SPILLOVER_NOTIFY": "off",
        "NO_COLOR": "1",
    }
    return home, env


RUNTIME_PACKAGES = ("requests", "urllib3", "idna", "certifi", "charset_normalizer", "jmespath", "dotenv")


@functools.lru_cache(maxsize=None)
def readable_pythonpath():
    """A PYTHONPATH any user can import spillover and its runtime dependencies from: a copy of
    this checkout's package and of those packages in a 0755 dir under /tmp (removed at exit). The
    tests that run as other users need it: the checkout may sit under a 0700 dir (`mktemp -d`)."""
    import atexit
    import importlib
    import shutil
    import tempfile

    top = tempfile.mkdtemp(prefix="spillover-pythonpath-", dir="/tmp")
    atexit.register(shutil.rmtree, top, ignore_errors=True)
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(REPO / "spillover", os.path.join(top, "spillover"), ignore=ignore)
    for name in RUNTIME_PACKAGES:
        shutil.copytree(os.path.dirname(importlib.import_module(name).__file__), os.path.join(top, name), ignore=ignore)
    for base, dirs, files in os.walk(top):
        os.chmod(base, 0o755)
        for file in files:
            os.chmod(os.path.join(base, file), 0o644)
    return top


@pytest.fixture
def tz():
    """set_tz(name): this process's local time zone for the test (TZ, then time.tzset()); the
    previous one is back after it."""
    before = os.environ.get("TZ")

    def set_tz(name):
        os.environ["TZ"] = name
        time.tzset()

    yield set_tz
    if before is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def utc(tz):
    """Local time is UTC for this test (golden pictures and pages print local times)."""
    tz("UTC")


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    home, env = sandbox_env(tmp_path)
    # In-process code sees the same sandbox; nothing of the real user leaks in.
    for name in list(os.environ):
        if name.startswith(("SPILLOVER_", "OPENROUTER_", "ANTHROPIC_", "CLAUDE_", "XDG_")):
            monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        if name != "PATH":
            monkeypatch.setenv(name, value)
    return Sandbox(tmp_path, home, env)


@pytest.fixture
def usage_server():
    server = fakes.FakeServer()
    server.set("/api/oauth/usage", json=fakes.usage_body(42.0))
    yield server
    server.close()


@pytest.fixture
def openrouter_server():
    server = fakes.FakeServer()
    server.set("/api/v1/key", json=fakes.key_body())
    server.set("/api/v1/auth/key", json=fakes.key_body())
    server.set("/api/v1/credits", json=fakes.credits_body())
    server.set("/api/v1/models", json=fakes.models_body())
    yield server
    server.close()


def wire(box, usage, openrouter, **extra):
    """Point a sandbox's config at both fakes, with valid credentials and an OpenRouter key."""
    box.write_credentials()
    box.write_config(
        SPILLOVER_CLAUDE_USAGE_URL=f"{usage.url}/api/oauth/usage",
        OPENROUTER_API_URL=f"{openrouter.url}/api/v1",
        SPILLOVER_OPENROUTER_BASE_URL=f"{openrouter.url}/api",
        OPENROUTER_API_KEY=OR_KEY,
        SPILLOVER_TIMEOUT="2",
        **extra,
    )
    box.usage, box.openrouter = usage, openrouter
    return box


@pytest.fixture
def wired(sandbox, usage_server, openrouter_server):
    """A sandbox whose config points at both fakes, with valid credentials and an OpenRouter key."""
    return wire(sandbox, usage_server, openrouter_server)
