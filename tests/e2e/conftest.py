"""Fixtures for the end-to-end suite with the real Claude Code client (design §3, §7).

The client is `@anthropic-ai/claude-code`, pinned twice in tests/e2e/package.json and
package-lock.json through npm aliases: the oldest supported version (`claude-code-oldest`) and the
newest tested one (`claude-code-newest`), installed with `npm ci` into tests/e2e/node_modules (by
`make e2e`, or here when missing). Every test that uses `claude_client` or `client_env` runs on
both. It installs from the npm registry alone, native binary included; after that nothing here touches
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
# What keeps the client off the network and fails a 429 at once (research/claude_code_probe.md).
QUIET_CLIENT = {
    "TERM": "dumb",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_MAX_RETRIES": "0",
}


PACKAGE = "@anthropic-ai/claude-code"


def pinned_versions():
    """{version: npm alias} of the clients pinned in package.json (`"claude-code-oldest":
    "npm:@anthropic-ai/claude-code@2.1.197"`), oldest first."""
    deps = json.loads((E2E / "package.json").read_text())["dependencies"]
    pins = {}
    for alias, spec in deps.items():
        name, _, version = spec.removeprefix("npm:").rpartition("@")
        if name == PACKAGE:
            pins[version] = alias
    return dict(sorted(pins.items(), key=lambda item: tuple(int(p) for p in item[0].split("."))))


VERSIONS = list(pinned_versions())  # ["2.1.197", "2.1.332"]: every client test runs on each
OLDEST, NEWEST = VERSIONS[0], VERSIONS[-1]


def client_path(version):
    """The native `claude` executable of a pinned version (npm's postinstall links it here)."""
    return E2E / "node_modules" / pinned_versions()[version] / "bin" / "claude.exe"


def installed_version(exe):
    exe = Path(exe)
    if not exe.exists():
        return None
    try:
        out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60,
                             env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent", **QUIET_CLIENT})
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.split()[0] if out.returncode == 0 and out.stdout.split() else None


_checked = {}


def claude_for(version):
    """Path of the pinned client `version` ("2.1.197", "2.1.332"); runs `npm ci` once when a pinned
    client is missing or not the version its alias pins. For tests that drive a client themselves
    (e.g. interactive ones under tmux): put it on PATH as `claude` with `link_claude`."""
    if version not in pinned_versions():
        pytest.fail(f"Claude Code {version} is not pinned in tests/e2e/package.json (pinned: {VERSIONS})")
    if not _checked:
        if any(installed_version(client_path(v)) != v for v in VERSIONS):
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("npm is needed to install the pinned Claude Code clients (apt install nodejs npm), then `make e2e`")
            proc = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=E2E, capture_output=True, text=True, timeout=900)
            assert proc.returncode == 0, f"npm ci failed:\n{proc.stdout}\n{proc.stderr}"
        for v in VERSIONS:
            got = installed_version(client_path(v))
            assert got == v, f"installed Claude Code {got!r}, pinned {v!r} (did the postinstall step run?)"
        _checked.update(dict.fromkeys(VERSIONS, True))
    return client_path(version)


def link_claude(bin_dir, version):
    """Make `bin_dir/claude` the pinned client `version`; returns the link."""
    link = Path(bin_dir) / "claude"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(claude_for(version))
    return link


@pytest.fixture(params=VERSIONS, ids=VERSIONS)
def claude_version(request):
    """The client version under test: every test that uses the client runs once per pinned version."""
    return request.param


@pytest.fixture
def claude_client(claude_version):
    """Path of the pinned `claude` of this test's version (installed with `npm ci` when missing)."""
    return claude_for(claude_version)


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
def client_env(sandbox, tools, claude_client, claude_version):
    """The clean environment (`env -i`) a user's shell would have, sandboxed: PATH, HOME, TERM,
    the switches that keep the client off the network, and the XDG dirs (where direnv keeps its
    allow list and library, and where spillover's state dir is found)."""
    link_claude(tools, claude_version)  # `claude` on PATH is the version under test, nothing else
    path = os.pathsep.join([str(tools), "/usr/local/bin", "/usr/bin", "/bin"])
    env = {"PATH": path, "HOME": str(sandbox.home), "LANG": "C.UTF-8", **QUIET_CLIENT}
    for name in ("XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME"):
        env[name] = sandbox.env[name]
    return env
