"""An interactive `claude` under tmux at a usage wall: what it shows, writes and hooks.

    .venv/bin/python -m tests.e2e.capture_interactive VERSION CLAIM [MODEL]

Sandboxed HOME (onboarding done, project trusted, fake Max subscription), the fake Anthropic
answering every Messages call with a 429 wall of CLAIM (reset in 2 h), a trap proxy, telemetry,
auto-update and retries off, TZ=UTC, and a StopFailure hook with matcher `rate_limit`. Types
"say pong", waits, prints the screen, the requests and the hook's payload, and saves the error
record and the payload as tests/fixtures/{transcripts,stopfailure}/VERSION/CLAIM_interactive.*
"""
import json, subprocess, sys, time, tempfile, shlex
from pathlib import Path
from tests.e2e.fake_anthropic import FakeAnthropic
from tests.e2e.conftest import QUIET_CLIENT, claude_for
from tests.e2e.capture_walls import FIXTURES, CASES
version, claim, model = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else "")
fake = FakeAnthropic(); fake.mode = "429wall"; fake.claim = claim; fake.reset_in = 7200
root = Path(tempfile.mkdtemp(prefix="tmuxexp-"))
home = root/"home"; cd = home/".claude"; proj = root/"proj"
cd.mkdir(parents=True); proj.mkdir()
(cd/".credentials.json").write_text(json.dumps({"claudeAiOauth": {"accessToken": "sk-ant-oat01-x", "refreshToken": "r", "expiresAt": int((time.time()+3600)*1000), "scopes": ["user:profile","user:inference"], "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x"}}))
out = root/"sf.json"
(cd/"settings.json").write_text(json.dumps({"hooks": {"StopFailure": [{"matcher": "rate_limit", "hooks": [{"type": "command", "command": f"cat >> {out}; echo >> {out}"}]}]}}))
(home/".claude.json").write_text(json.dumps({"hasCompletedOnboarding": True, "theme": "dark", "lastOnboardingVersion": version,
   "projects": {str(proj): {"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True}}}))
(root/"bin").mkdir(); (root/"bin"/"claude").symlink_to(claude_for(version))
env = {"PATH": f"{root}/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TZ": "UTC", **QUIET_CLIENT, "TERM": "xterm-256color",
       "ANTHROPIC_BASE_URL": fake.url, "HTTPS_PROXY": fake.url, "HTTP_PROXY": fake.url, "NO_PROXY": "127.0.0.1"}
sock = str(root/"tmux.sock")
envs = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
subprocess.run(["tmux", "-S", sock, "new-session", "-d", "-x", "160", "-y", "40", "-c", str(proj), f"env -i {envs} claude" + (f" --model {model}" if model else "")], check=True)
def cap():
    return subprocess.run(["tmux", "-S", sock, "capture-pane", "-p"], capture_output=True, text=True).stdout
time.sleep(8)
print("=== start\n", cap()[-1500:])
subprocess.run(["tmux", "-S", sock, "send-keys", "say pong", "Enter"])
time.sleep(8)
print("=== after prompt\n", cap()[-2500:])
print("requests", [(r["method"], r["path"]) for r in fake.requests])
print("sf", out.read_text() if out.exists() else None)
for f in (cd/"projects").rglob("*.jsonl"):
    lines = [l for l in f.read_text().splitlines() if '"isApiErrorMessage"' in l or '"type":"system"' in l]
    for l in lines: print("REC", l[:400])
    records = [l for l in lines if '"isApiErrorMessage"' in l]
    name = f"{claim}_interactive"
    (FIXTURES/"transcripts"/version/f"{name}.jsonl").write_text("\n".join(records) + "\n")
    if out.exists():
        (FIXTURES/"stopfailure"/version/f"{name}.json").write_text(json.dumps(json.loads(out.read_text().splitlines()[0]), indent=2) + "\n")
    manifest_path = FIXTURES/"transcripts"/version/"cases.json"
    manifest = json.loads(manifest_path.read_text())
    limits = json.loads(records[-1]).get("quotaLimits") or {}
    manifest[name] = {"version": version, "case": name, "tz": "UTC", "interactive": True, "model": model or None,
                      "expect": CASES[claim][5], "answered": {"status": 429, "claim": claim, "reset": limits.get("resetsAt") or int(fake.messages()[0]["at"]) + fake.reset_in, "headers": {}},
                      "result": json.loads(records[-1])["message"]["content"][0]["text"], "screen": cap().splitlines()[-8:],
                      "requests": [f'{r["method"]} {r["path"]}' for r in fake.requests], "stopfailure": out.exists()}
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
subprocess.run(["tmux", "-S", sock, "kill-server"])
print("root", root)
fake.close()
