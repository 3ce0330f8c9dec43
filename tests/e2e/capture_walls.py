"""Record what the real Claude Code clients write at a usage wall: the fixtures of tests/fixtures.

    .venv/bin/python -m tests.e2e.capture_walls [--versions 2.1.197,2.1.332] [--cases five_hour,...]

For each pinned client and each case below, one headless run (`claude -p "say pong" --output-format
json`) in a fresh sandboxed HOME signed in with a fake Max subscription (OAuth), against the fake
Anthropic on loopback (`ANTHROPIC_BASE_URL`), with a trap proxy for any other host, telemetry,
auto-update and retries off, `TZ=Europe/Madrid`, and a `StopFailure` hook (every matcher) that
saves its stdin. It writes:
- tests/fixtures/transcripts/<version>/<case>.jsonl: the client's error records
  (`"isApiErrorMessage": true`) from its transcript, verbatim;
- tests/fixtures/stopfailure/<version>/<case>.json: the StopFailure payload, verbatim (when it fired);
- tests/fixtures/transcripts/<version>/cases.json: per case, what the fake answered (status,
  headers, reset epoch), the client's exit code and result text, the requests it made, and what
  spillover must read from it (`expect`: the bucket, or null for not a wall).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.e2e.conftest import QUIET_CLIENT, VERSIONS, claude_for
from tests.e2e.fake_anthropic import FakeAnthropic

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
TZ = "Europe/Madrid"
HOUR, DAY = 3600, 86400
OUT_OF_CREDITS = {"anthropic-ratelimit-unified-overage-status": "rejected",
                  "anthropic-ratelimit-unified-overage-disabled-reason": "out_of_credits"}
THIRD_PARTY = ("Third-party apps now draw from your extra usage, not your plan limits. "
               "Turn on extra usage at claude.ai/settings/usage to keep going.")

# name: (fake mode, claim, seconds to reset, extra headers, error answer, expected bucket or None)
CASES = {
    "five_hour": ("429wall", "five_hour", 2 * HOUR, {}, None, "five_hour"),
    "seven_day": ("429wall", "seven_day", 3 * DAY, {}, None, "seven_day"),
    "seven_day_opus": ("429wall", "seven_day_opus", 3 * DAY, {}, None, "seven_day_opus"),
    "seven_day_sonnet": ("429wall", "seven_day_sonnet", 3 * DAY, {}, None, "seven_day_sonnet"),
    "seven_day_overage_included": ("429wall", "seven_day_overage_included", 3 * DAY, {}, None, "seven_day_fable"),
    # The plan's five-hour wall when the usage credits that would carry on are used up.
    "five_hour_out_of_credits": ("429wall", "five_hour", 2 * HOUR, OUT_OF_CREDITS, None, "five_hour"),
    # Usage credits (overage) themselves exhausted / refused.
    "overage_out_of_credits": ("429wall", "overage", 2 * HOUR,
                               dict(OUT_OF_CREDITS, **{"anthropic-ratelimit-unified-overage-reset": "{reset}"}), None, "overage"),
    "overage_rejected": ("429wall", "overage", 2 * HOUR, {"anthropic-ratelimit-unified-overage-status": "rejected"}, None, "overage"),
    # `status: rejected` with no claim: the client calls it "temporarily limiting", not a wall.
    # With the client's `tengu_vellum_anchor` feature on (FEATURES): the " · progress saved" suffix.
    "five_hour_progress_saved": ("429wall", "five_hour", 2 * HOUR, {}, None, "five_hour"),
    "seven_day_progress_saved": ("429wall", "seven_day", 3 * DAY, {}, None, "seven_day"),
    "overage_out_of_credits_progress_saved": ("429wall", "overage", 2 * HOUR,
                                              dict(OUT_OF_CREDITS, **{"anthropic-ratelimit-unified-overage-reset": "{reset}"}),
                                              None, "overage"),
    "no_claim": ("429wall", None, 2 * HOUR, {}, None, None),
    # Not walls.
    "transient": ("429transient", None, 0, {}, None, None),
    "third_party_400": ("error", None, 0, {}, (400, "invalid_request_error", THIRD_PARTY), None),
    "long_context_429": ("error", None, 0, {}, (429, "rate_limit_error", "Extra usage is required for long context requests."), None),
}

# Feature flags seeded into the sandbox's ~/.claude.json (`cachedGrowthBookFeatures`, honoured with
# telemetry off when CLAUDE_CODE_GB_DISK_CACHE_WHEN_TELEMETRY_OFF=1): nothing is fetched.
FEATURES = {name: {"tengu_vellum_anchor": True} for name in CASES if name.endswith("_progress_saved")}


def run_case(version, name, fake, root):
    mode, claim, reset_in, headers, error, expect = CASES[name]
    home = root / name / "home"
    project = root / name / "project"
    claude_dir = home / ".claude"
    for d in (claude_dir, project):
        d.mkdir(parents=True)
    (claude_dir / ".credentials.json").write_text(json.dumps({"claudeAiOauth": {
        "accessToken": "sk-ant-oat01-capture-capture-capture-capture-tok", "refreshToken": "sk-ant-ort01-never-used",
        "expiresAt": int((time.time() + 3600) * 1000), "scopes": ["user:profile", "user:inference"],
        "subscriptionType": "max", "rateLimitTier": "default_claude_max_20x"}}))
    features = FEATURES.get(name, {})
    (home / ".claude.json").write_text(json.dumps(
        {"cachedGrowthBookFeatures": features, "cachedGrowthBookFeaturesAt": int(time.time() * 1000)} if features else {}))
    hook_out = root / name / "stopfailure.json"
    hook = {"type": "command", "command": f"cat > {hook_out}"}
    (claude_dir / "settings.json").write_text(json.dumps({"hooks": {"StopFailure": [{"matcher": "", "hooks": [hook]}]}}))
    fake.clear()
    fake.mode, fake.claim, fake.reset_in, fake.wall_headers = mode, claim, reset_in, headers
    if error:
        fake.error = error
    link_dir = root / name / "bin"
    link_dir.mkdir()
    (link_dir / "claude").symlink_to(claude_for(version))
    env = {"PATH": f"{link_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8", "TZ": TZ,
           **QUIET_CLIENT, "ANTHROPIC_BASE_URL": fake.url, "CLAUDE_CODE_GB_DISK_CACHE_WHEN_TELEMETRY_OFF": "1",
           "HTTPS_PROXY": fake.url, "HTTP_PROXY": fake.url, "NO_PROXY": "127.0.0.1,localhost"}
    started = time.time()
    proc = subprocess.run(["timeout", "60", "claude", "-p", "say pong", "--output-format", "json"], cwd=project, env=env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=90)
    time.sleep(0.5)  # the hook runs as the client exits
    records = []
    for path in sorted((claude_dir / "projects").rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            if '"isApiErrorMessage"' in line:
                records.append(line)
    try:
        result = json.loads(proc.stdout)
    except ValueError:
        result = {"stdout": proc.stdout}
    posts = fake.messages()
    answered = {}
    if posts:
        reset = None
        if mode == "429wall":
            reset = int(posts[0]["at"]) + reset_in
        answered = {"status": error[0] if error else 429, "claim": claim, "reset": reset, "headers": headers,
                    "message": error[2] if error else "Rate limited"}
    info = {"version": version, "case": name, "tz": TZ, "features": features, "started": started, "expect": expect, "answered": answered,
            "exit_code": proc.returncode, "result": result.get("result"), "stderr": proc.stderr[-2000:],
            "requests": [f'{r["method"]} {r["path"]}' for r in fake.requests],
            "stopfailure": hook_out.exists()}
    out = FIXTURES / "transcripts" / version
    out.mkdir(parents=True, exist_ok=True)
    if records:
        (out / f"{name}.jsonl").write_text("\n".join(records) + "\n")
    if hook_out.exists():
        sf = FIXTURES / "stopfailure" / version
        sf.mkdir(parents=True, exist_ok=True)
        (sf / f"{name}.json").write_text(json.dumps(json.loads(hook_out.read_text()), indent=2) + "\n")
    return info


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", default=",".join(VERSIONS))
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args(argv)
    fake = FakeAnthropic()
    try:
        for version in args.versions.split(","):
            manifest_path = FIXTURES / "transcripts" / version / "cases.json"
            manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
            with tempfile.TemporaryDirectory(prefix="capture-walls-") as tmp:
                for name in args.cases.split(","):
                    info = run_case(version, name, fake, Path(tmp))
                    manifest[name] = info
                    print(f"{version} {name}: rc={info['exit_code']} {info['result']!r} stopfailure={info['stopfailure']}",
                          file=sys.stderr)
            manifest_path.parent.mkdir(parents=True, exist_ok=True)
            manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    finally:
        fake.close()


if __name__ == "__main__":
    os.umask(0o022)
    main()
