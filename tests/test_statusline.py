"""`spillover statusline`: the real Claude Code statusLine payload in, one line out, a trace line in
samples.jsonl, and the decision a real `spillover tick` takes from it."""

import json
import re
import subprocess
import time

from spillover import samples
from tests import fakes
from tests.conftest import OR_KEY


def payload(five_hour=87, resets_in=4000, seven_day=23, now=None, as_string=False, rate_limits=True):
    """What Claude Code 2.1.x pipes to the statusLine command (cc-docs statusline.md)."""
    now = time.time() if now is None else now
    body = {
        "hook_event_name": "Status",
        "session_id": "5f1d3c1e-8a5b-4c3e-9f0e-2b7d1e0c9a11",
        "transcript_path": "/home/u/.claude/projects/-home-u-proj/5f1d3c1e-8a5b-4c3e-9f0e-2b7d1e0c9a11.jsonl",
        "cwd": "/home/u/proj",
        "model": {"id": "claude-opus-4-8", "display_name": "Opus 4.8"},
        "workspace": {"current_dir": "/home/u/proj", "project_dir": "/home/u/proj", "added_dirs": []},
        "version": "2.1.197",
        "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 0.4132, "total_duration_ms": 512345, "total_api_duration_ms": 123456,
                 "total_lines_added": 156, "total_lines_removed": 23},
        "context_window": {"total_input_tokens": 15234, "total_output_tokens": 4521, "context_window_size": 200000,
                           "used_percentage": 8, "remaining_percentage": 92,
                           "current_usage": {"input_tokens": 8500, "output_tokens": 1200,
                                             "cache_creation_input_tokens": 5000, "cache_read_input_tokens": 2000}},
        "exceeds_200k_tokens": False,
        "vim": {"mode": "NORMAL"},
    }
    if rate_limits:
        limits = {}
        if five_hour is not None:
            reset = int(now + resets_in)
            limits["five_hour"] = {"used_percentage": five_hour, "resets_at": str(reset) if as_string else reset}
        if seven_day is not None:
            limits["seven_day"] = {"used_percentage": seven_day, "resets_at": int(now + 4 * 86400)}
        body["rate_limits"] = limits
    return json.dumps(body)


def trace(sandbox):
    path = sandbox.state_dir / "samples.jsonl"
    return [json.loads(l) for l in path.read_text().splitlines()] if path.exists() else []


def test_records_rate_limits_and_prints_one_line(sandbox):
    now = time.time()
    proc = sandbox.run("statusline", input=payload(87, resets_in=4000, now=now))
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.count("\n") == 1
    assert re.fullmatch(r"spillover 5h 87% ↻1h0[56]m\n", proc.stdout), proc.stdout
    [line] = trace(sandbox)
    assert line["source"] == "statusline" and abs(line["t"] - now) < 30
    assert line["five_hour"] == {"percent": 87.0, "resets_at": float(int(now + 4000))}
    assert line["seven_day"] == {"percent": 23.0, "resets_at": float(int(now + 4 * 86400))}
    assert (sandbox.state_dir / "samples.jsonl").stat().st_mode & 0o777 == 0o600


def test_resets_at_as_numeric_string_and_one_window_absent(sandbox):
    now = time.time()
    sandbox.run("statusline", input=payload(55.5, resets_in=600, seven_day=None, as_string=True, now=now), check=True)
    [line] = trace(sandbox)
    assert line["five_hour"] == {"percent": 55.5, "resets_at": float(int(now + 600))}
    assert "seven_day" not in line
    sandbox.run("statusline", input=payload(None, seven_day=40, now=now), check=True)
    assert "five_hour" not in trace(sandbox)[-1] and trace(sandbox)[-1]["seven_day"]["percent"] == 40.0


def test_before_the_first_api_response_nothing_is_recorded(sandbox):
    proc = sandbox.run("statusline", input=payload(rate_limits=False))
    assert proc.returncode == 0 and proc.stdout == "spillover\n"
    assert trace(sandbox) == []


def test_bad_input_prints_a_neutral_line_and_exits_0(sandbox):
    for junk in ("", "not json", "[1, 2]", '{"rate_limits": {"five_hour": {"used_percentage": "lots", "resets_at": {}}}}',
                 '{"rate_limits": {"five_hour": {"used_percentage": -4}}}', '{"rate_limits": "x"}', "\xff\xfe{"):
        proc = sandbox.run("statusline", input=junk)
        assert (proc.returncode, proc.stdout, proc.stderr) == (0, "spillover\n", ""), junk
    assert trace(sandbox) == []


def test_a_damaged_state_file_does_not_break_the_line(sandbox):
    sandbox.state_dir.mkdir(parents=True)
    (sandbox.state_dir / "state.json").write_text('{"route": ')
    proc = sandbox.run("statusline", input=payload(12))
    assert proc.returncode == 0 and proc.stdout.startswith("spillover 5h 12%")


def test_an_unwritable_state_dir_does_not_break_the_line(sandbox):
    sandbox.state_dir.parent.mkdir(parents=True)
    sandbox.state_dir.write_text("a file where the dir should be")
    proc = sandbox.run("statusline", input=payload(12))
    assert proc.returncode == 0 and proc.stdout.startswith("spillover 5h 12%") and proc.stderr == ""


def test_the_same_reading_is_written_once_and_keeps_its_first_time(sandbox):
    now = time.time()
    body = payload(60, now=now)
    for _ in range(3):
        sandbox.run("statusline", input=body, check=True)
    assert len(trace(sandbox)) == 1
    sandbox.run("statusline", input=payload(61, now=now), check=True)
    sandbox.run("statusline", input=body, check=True)  # back to 60: a change, so written
    assert [l["five_hour"]["percent"] for l in trace(sandbox)] == [60.0, 61.0, 60.0]
    # An old identical reading is a re-render of the last API response (claude_code_live.md §3):
    # it is not written again, so the reading keeps the time its value was first seen.
    path = sandbox.state_dir / "samples.jsonl"
    lines = trace(sandbox)
    lines[-1]["t"] -= 20 * 60
    path.write_text("".join(json.dumps(l) + "\n" for l in lines))
    sandbox.run("statusline", input=body, check=True)
    assert len(trace(sandbox)) == 3 and trace(sandbox)[-1]["t"] == lines[-1]["t"]
    assert trace(sandbox)[-1]["account"] == str(sandbox.home / ".claude")


def test_the_trace_stays_bounded(sandbox):
    sandbox.state_dir.mkdir(parents=True)
    path = sandbox.state_dir / "samples.jsonl"
    old = samples.record(time.time() - 3600, "oauth", {"five_hour": (10.0, None)})
    text = json.dumps(old) + "\n"
    path.write_text(text * (samples.MAX_BYTES // len(text) + 10))
    assert path.stat().st_size > samples.MAX_BYTES
    sandbox.run("statusline", input=payload(70), check=True)
    lines = trace(sandbox)
    assert len(lines) == samples.KEEP_LINES
    assert lines[-1]["source"] == "statusline" and lines[-1]["five_hour"]["percent"] == 70.0


def test_chains_the_previous_statusline_command(sandbox):
    previous = sandbox.home / ".config" / "spillover" / "statusline-previous.json"
    previous.parent.mkdir(parents=True)
    # The user's own statusline reads the same stdin and prints its own line (plus noise).
    previous.write_text(json.dumps({"command": "head -c 14; echo; echo second line; echo oops >&2"}))
    proc = sandbox.run("statusline", input=payload(33))
    assert proc.returncode == 0
    assert re.fullmatch(r'\{"hook_event_n │ spillover 5h 33% ↻\S+\n', proc.stdout), proc.stdout
    assert trace(sandbox)[-1]["five_hour"]["percent"] == 33.0


def test_a_failing_or_hanging_previous_command_is_left_out(sandbox):
    previous = sandbox.home / ".config" / "spillover" / "statusline-previous.json"
    previous.parent.mkdir(parents=True)
    for command in ("exit 3", "sleep 31.25; echo late", "definitely-not-a-command-xyz", ""):
        previous.write_text(json.dumps({"command": command}))
        proc = sandbox.run("statusline", input=payload(20), timeout=20)
        assert proc.returncode == 0 and proc.stdout.startswith("spillover 5h 20%"), (command, proc.stdout)
    # The hanging pipeline was killed as a whole, not left behind.
    assert subprocess.run(["pgrep", "-f", "sleep 31.25"], capture_output=True).returncode == 1


def test_a_chain_back_to_itself_does_not_loop(sandbox):
    import sys

    previous = sandbox.home / ".config" / "spillover" / "statusline-previous.json"
    previous.parent.mkdir(parents=True)
    previous.write_text(json.dumps({"command": f"{sys.executable} -m spillover statusline"}))
    proc = sandbox.run("statusline", input=payload(20), timeout=20)
    assert proc.returncode == 0
    assert proc.stdout.count("spillover 5h 20%") == 2 and proc.stdout.count("\n") == 1  # one level, then stop
    assert len(trace(sandbox)) == 1  # the nested run saw the same reading within the minute


# --- the decision and the line, through real ticks -----------------------------------------------


def test_statusline_reading_flips_the_route_and_shows_in_status(wired):
    env = {"SPILLOVER_SOURCES": "statusline,transcripts"}
    wired.run("statusline", input=payload(97, resets_in=3000), check=True, env=env)
    wired.run("tick", check=True, env=env)
    state = wired.state()
    assert state["route"] == "openrouter" and state["hot_bucket"] == "five_hour"
    assert state["buckets"]["five_hour"]["source"] == "statusline"
    assert wired.usage.hits("/api/oauth/usage") == []
    assert wired.run("check", "-q", env=env).returncode == 3
    status = wired.run("status", env=env).stdout
    assert re.search(r"five_hour\s+97%\s+\S+\s+statusline\s+\d+s ago\s+hot", status), status
    assert re.search(r"seven_day\s+23%\s+\S+\s+statusline\s+\d+s ago", status), status
    assert OR_KEY not in status
    # Spilled: the line says so, with the key's remaining budget (fakes.key_body: $24.50).
    proc = wired.run("statusline", input=payload(97, resets_in=3000), env=env)
    assert re.fullmatch(r"spillover openrouter \$24\.50 left · 5h 97% ↻\d+m\n", proc.stdout), proc.stdout


def test_a_fresh_statusline_reading_saves_an_oauth_poll(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(60.0, resets_in=3000))
    wired.run("tick", check=True)
    assert len(wired.usage.hits("/api/oauth/usage")) == 1
    assert wired.state()["route"] == "plan"
    wired.run("statusline", input=payload(96, resets_in=3000), check=True)
    wired.run("tick", check=True)
    state = wired.state()
    assert state["route"] == "openrouter" and state["buckets"]["five_hour"]["source"] == "statusline"
    assert len(wired.usage.hits("/api/oauth/usage")) == 1
    assert state["sources"]["oauth"]["due"] == "fresher signal from statusline"


def test_line_shows_route_and_pin_from_state(sandbox):
    sandbox.state_dir.mkdir(parents=True)
    now = time.time()
    (sandbox.state_dir / "state.json").write_text(json.dumps({
        "version": 1, "decided_at": now, "route": "plan", "status": "plan", "pin": {"route": "plan", "until": None, "honoured": True},
        "buckets": {"five_hour": {"percent": 44.0, "resets_at": now + 7200, "observed_at": now - 30, "source": "oauth"}}}))
    proc = sandbox.run("statusline", input=payload(rate_limits=False))
    assert re.fullmatch(r"spillover plan \(pinned\) · 5h 44% ↻(1h59m|2h00m)\n", proc.stdout), proc.stdout
