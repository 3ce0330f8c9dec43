"""Fixtures for the end-to-end suite with the real Claude Code client (design §3, §7).

The client is `@anthropic-ai/claude-code`, pinned in tests/e2e/package.json and package-lock.json
and installed with `npm ci` into tests/e2e/node_modules (by `make e2e`, or here when missing). It
installs from the npm registry alone, native binary included; after that nothing here touches
the network: the client talks only to loopback fakes.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.e2e.fake_anthropic import FakeAnthropic

E2E = Path(__file__).resolve().parent
CLIENT_BIN = E2E / "node_modules" / ".bin"
# What keeps the client off the network and fails a 429 at once (research/claude_code_probe.md).
QUIET_CLIENT = {
    "TERM": "dumb",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
}


def pinned_version():
    return json.loads((E2E / "package.json").read_text())["dependencies"]["@anthropic-ai/claude-code"]


def installed_version():
    exe = CLIENT_BIN / "claude"
    if not exe.exists():
        return None
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", **QUIET_CLIENT})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.split()[0] if out.returncode == 0 and out.stdout.split() else None


@pytest.fixture(scope="session")
def claude_client():
    """Path of the pinned `claude`; runs `npm ci` when it is missing or not the pinned version."""
    want = pinned_version()
    if installed_version() != want:
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install the pinned Claude Code client (apt install nodejs npm), then `make e2e`")
        proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=E2E, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout}\n{proc.stderr}"
        got = installed_version()
        assert got == want, f"installed Claude Code {got!r}, pinned {want!r} (did the postinstall step run?)"
    return CLIENT_BIN / "claude"


@pytest.fixture
def anthropic():
    fake = FakeAnthropic()
    yield fake
    fake.close()


@pytest.fixture
def tools(sandbox):
    """A bin dir for the client's PATH: `spillover` (this checkout, this interpreter) and `claude`."""
    bin_dir = sandbox.root / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "spillover"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {sys.executable} -m spillover "$@"\n')
    wrapper.chmod(0o755)
    return bin_dir


@pytest.fixture
def client_env(sandbox, tools, claude_client):
    """The clean environment (`env -i`) a user's shell would have, sandboxed: PATH, HOME, TERM,
    the switches that keep the client off the network, and the XDG dirs (where direnv keeps its
    allow list and library, and where spillover's state dir is found)."""
    path = os.pathsep.join([str(tools), str(claude_client.parent), "/usr/local/bin", "/usr/bin", "/bin"])
    env = {"PATH": path, "HOME": str(sandbox.home), "LANG": "C.UTF-8", **QUIET_CLIENT}
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env[name] = sandbox.env[name]
    return env
