"""An interactive `claude` under tmux at a usage wall: what it shows, writes and hooks.

    .venv/bin/python -m tests.e2e.capture_interactive VERSION CLAIM [MODEL]

Sandboxed HOME (onboarding done, project trusted, fake Max subscription), the fake Anthropic
answering every Messages call with a 429 wall of CLAIM (reset in 2 h), a trap proxy, telemetry,
auto-update and retries off, TZ=UTC, and a StopFailure hook with matcher `rate_limit`. Types
"say pong", waits, prints the screen, the requests and the hook's payload, and saves the error
record and the payload as tests/fixtures/{transcripts,stopfailure}/VERSION/CLAIM_interactive.*
(and the case in that version's cases.json).
"""

import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.capture_walls import CASES, FIXTURES
from tests.e2e.conftest import QUIET_CLIENT, claude_for
from tests.e2e.fake_anthropic import FakeAnthropic

SETTLE = 8  # seconds for the client to draw its prompt, and to answer


def sandbox(root, version):
    home, proj = root / "home", root / "proj"
    claude_dir = home / ".claude"
    claude_dir.mkdir(parents=True)
    proj.mkdir()
    (claude_dir / ".credentials.json").write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-capture-capture-capture-capture-tok", "refreshToken": "sk-ant-ort01-never-used",
        "expiresAt": int((time.time() + 3600) * 1000), "scopes": ["user:profile", "user:inference"],
        "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x"}}))
    hook_out = root / "stopfailure.jsonl"
    hook = {"type": "command", "command": f"cat >> {hook_out}; echo >> {hook_out}"}
    (claude_dir / "settings.json").write_text(json.dumps({"hooks": {"StopFailure": [{"matcher": "rate_limit", "hooks": [hook]}]}}))
    (home / ".claude.json").write_text(json.dumps({
        "hasCompletedOnboarding": True, "theme": "dark", "lastOnboardingVersion": version,
        "projects": {str(proj): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}}}))
    (root / "bin").mkdir()
    (root / "bin" / "claude").symlink_to(claude_for(version))
    return home, proj, hook_out


def main(version, claim, model=""):
    fake = FakeAnthropic()
    fake.mode, fake.claim, fake.reset_in = "429wall", claim, 7200
    root = Path(tempfile.mkdtemp(prefix="capture-interactive-"))
    home, proj, hook_out = sandbox(root, version)
    env = {"PATH": f"{root}/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TZ": "UTC", **QUIET_CLIENT,
           "TERM": "xterm-256color", "ANTHROPIC_BASE_URL": fake.url,
           "HTTPS_PROXY": fake.url, "HTTP_PROXY": fake.url, "NO_PROXY": "127.0.0.1"}
    sock = str(root / "tmux.sock")
    command = "env -i " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " claude"
    if model:
        command += f" --model {shlex.quote(model)}"
    subprocess.run(["tmux", "-S", sock, "new-session", "-d", "-x", "160", "-y", "40", "-c", str(proj), command], check=True)

    def screen():
        return subprocess.run(["tmux", "-S", sock, "capture-pane", "-p"], capture_output=True, text=True).stdout

    try:
        time.sleep(SETTLE)
        subprocess.run(["tmux", "-S", sock, "send-keys", "say pong", "Enter"], check=True)
        time.sleep(SETTLE)
        shown = screen()
    finally:
        subprocess.run(["tmux", "-S", sock, "kill-server"], check=False)
        fake.close()
    print(shown)
    print("requests", [f'{r["method"]} {r["path"]}' for r in fake.requests])
    payload = json.loads(hook_out.read_text().splitlines()[0]) if hook_out.exists() else None
    print("stopfailure", json.dumps(payload))
    records = [line for f in (home / ".claude" / "projects").rglob("*.jsonl")
               for line in f.read_text().splitlines() if '"isApiErrorMessage"' in line]
    if not records:
        sys.exit("no error record in the transcript")
    name = f"{claim}_interactive"
    (FIXTURES / "transcripts" / version / f"{name}.jsonl").write_text("\n".join(records) + "\n")
    if payload is not None:
        (FIXTURES / "stopfailure" / version / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")
    last = json.loads(records[-1])
    reset = (last.get("quotaLimits") or {}).get("resetsAt") or int(fake.messages()[0]["at"]) + fake.reset_in
    manifest_path = FIXTURES / "transcripts" / version / "cases.json"
    manifest = json.loads(manifest_path.read_text())
    manifest[name] = {"version": version, "case": name, "tz": "UTC", "interactive": True, "model": model or None,
                      "expect": CASES[claim][5], "answered": {"status": 429, "claim": claim, "reset": reset, "headers": {}},
                      "result": last["message"]["content"][0]["text"], "screen": shown.rstrip().splitlines()[-8:],
                      "requests": [f'{r["method"]} {r["path"]}' for r in fake.requests], "stopfailure": payload is not None}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
