"""Transcript wall detection (design §4.3): real-shaped Claude Code JSONL records, every wording,
incremental reading, and the decision a real `spillover tick` takes from them."""

import json
import os
import re
import time
import uuid
from datetime import datetime, timezone

import pytest

from spillover.sources import transcripts
from tests import fakes
from tests.conftest import OR_KEY


def iso(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch * 1000) % 1000:03d}Z"


def at(text):
    return datetime.fromisoformat(text).timestamp()


def wall_record(text, written, session="5f1d3c1e-8a5b-4c3e-9f0e-2b7d1e0c9a11", status=429, error="rate_limit"):
    """The synthetic assistant record Claude Code writes on a 429 (research §5.2, v2.1.220)."""
    record = {
        "parentUuid": str(uuid.uuid4()), "isSidechain": False, "userType": "external", "cwd": "/home/u/proj",
        "sessionId": session, "version": "2.1.220", "gitBranch": "main", "type": "assistant",
        "uuid": str(uuid.uuid4()), "timestamp": iso(written),
        "message": {"id": str(uuid.uuid4()), "model": "<synthetic>", "role": "assistant", "stop_reason": "stop_sequence",
                    "stop_sequence": "", "type": "message",
                    "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                              "server_tool_use": {"web_search_requests": 0}, "service_tier": None},
                    "content": [{"type": "text", "text": text}]},
        "isApiErrorMessage": True,
    }
    if error is not None:
        record["error"] = error
    if status is not None:
        record["apiErrorStatus"] = status
    record["requestId"] = "req_" + uuid.uuid4().hex[:24]
    return record


def chat_records(written, n=3):
    """Ordinary user/assistant traffic around the errors (what most of a transcript is)."""
    out = []
    for i in range(n):
        out.append({"type": "user", "uuid": str(uuid.uuid4()), "timestamp": iso(written + i),
                    "message": {"role": "user", "content": f"please refactor module {i} and mention \"isApiErrorMessage\" in docs"}})
        out.append({"type": "assistant", "uuid": str(uuid.uuid4()), "timestamp": iso(written + i + 0.5), "requestId": "req_x",
                    "message": {"id": "msg_1", "model": "claude-opus-4-8", "role": "assistant", "type": "message",
                                "content": [{"type": "text", "text": "Done. You've hit your session limit is what users see."}],
                                "usage": {"input_tokens": 1200, "output_tokens": 300}}})
    return out


def write_lines(path, records, mode="a"):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode, encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def session_file(claude_dir, project="-home-u-proj", session="5f1d3c1e"):
    return claude_dir / "projects" / project / f"{session}.jsonl"


# --- wording -> (bucket, reset) ------------------------------------------------------------------

WRITTEN = at("2026-07-26T15:06:19.592+00:00")  # a Sunday; Madrid and Berlin are UTC+2 then

WALLS = [
    ("You've hit your session limit · resets 5:40pm (Europe/Madrid)", "five_hour", "2026-07-26T15:40:00+00:00"),
    ("You've hit your session limit · resets 3pm (Europe/Berlin)", "five_hour", "2026-07-27T13:00:00+00:00"),
    ("You've hit your session limit · resets 12:50am (America/Los_Angeles)", "five_hour", "2026-07-27T07:50:00+00:00"),
    ("You've hit your weekly limit · resets Sep 17 at 10pm (America/New_York)", "seven_day", "2026-09-18T02:00:00+00:00"),
    ("You've hit your weekly limit · resets Mon 12:00am (UTC)", "seven_day", "2026-07-27T00:00:00+00:00"),
    ("You've hit your Opus limit · resets 3:45pm (UTC)", "seven_day_opus", "2026-07-26T15:45:00+00:00"),
    ("You've hit your Sonnet limit · resets Jul 30 at 9am (UTC)", "seven_day_sonnet", "2026-07-30T09:00:00+00:00"),
    ("You've hit your usage limit · resets 6pm (Europe/London)", "unknown", "2026-07-26T17:00:00+00:00"),
    ("You're out of extra usage · resets Aug 1 at 12am (UTC)", "overage", "2026-08-01T00:00:00+00:00"),
    ("You've hit your limit · resets 4pm (UTC)", "overage", "2026-07-26T16:00:00+00:00"),
    ("Claude AI usage limit reached|1785085200", "unknown", "2026-07-26T17:00:00+00:00"),
    ("API Error: Request rejected (429) · Claude AI usage limit reached|1785085200", "unknown", "2026-07-26T17:00:00+00:00"),
    ("API Error: Request rejected (429) · You've hit your session limit · resets 5:40pm (Europe/Madrid)", "five_hour", "2026-07-26T15:40:00+00:00"),
    ("5-hour limit reached ∙ resets 5pm (UTC)", "five_hour", "2026-07-26T17:00:00+00:00"),
    ("Opus weekly limit reached ∙ resets Oct 6, 1pm (UTC)", "seven_day_opus", "2026-10-06T13:00:00+00:00"),
    ("Claude usage limit reached. Your limit will reset at 8pm (America/Los_Angeles).", "unknown", "2026-07-27T03:00:00+00:00"),
    ("You've hit your session limit", "five_hour", None),
]


@pytest.mark.parametrize("text,bucket,reset", WALLS)
def test_every_wall_wording_names_its_bucket_and_reset(text, bucket, reset):
    got = transcripts.wall_of(wall_record(text, WRITTEN), WRITTEN)
    assert got is not None, text
    assert got[0] == bucket
    assert got[1] == pytest.approx(WRITTEN, abs=0.001)
    assert got[2] == (None if reset is None else at(reset))


def test_reset_without_zone_is_local_time(tz):
    tz("Europe/Berlin")
    got = transcripts.wall_of(wall_record("You've hit your session limit · resets 7:45pm", WRITTEN), WRITTEN)
    assert got[2] == at("2026-07-26T17:45:00+00:00")  # 19:45 in Berlin, later that day
    got = transcripts.wall_of(wall_record("You've hit your session limit · resets 3:45pm", WRITTEN), WRITTEN)
    assert got[2] == at("2026-07-27T13:45:00+00:00")  # 15:45 in Berlin has passed (it is 17:06 there)
    got = transcripts.wall_of(wall_record("5-hour limit reached ∙ resets 5am", WRITTEN), WRITTEN)
    assert got[2] == at("2026-07-27T03:00:00+00:00")  # next 5am in Berlin
    got = transcripts.wall_of(wall_record("You've hit your weekly limit · resets Mon 12:00am", WRITTEN), WRITTEN)
    assert got[2] == at("2026-07-26T22:00:00+00:00")  # Monday 00:00 in Berlin


def test_unknown_zone_falls_back_to_local_time(utc):
    got = transcripts.wall_of(wall_record("You've hit your session limit · resets 6pm (Mars/Olympus_Mons)", WRITTEN), WRITTEN)
    assert got[2] == at("2026-07-26T18:00:00+00:00")


NOT_WALLS = [
    "You've used 91% of your session limit · resets 5:40pm (Europe/Madrid)",
    "You've used 75% of your weekly limit · resets Mon 12:00am",
    "Approaching usage limit · resets at 9pm",
    "Approaching Opus limit",
    "You're close to your session limit",
    "You're now using extra usage · Your session limit resets 5:40pm (Europe/Madrid)",
    "API Error: Request rejected (429) · This request would exceed your account's rate limit. Please try again later.",
    "API Error: Request rejected (429) · Rate limited",
    "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited",
    "API Error: 529 Overloaded",
]


@pytest.mark.parametrize("text", NOT_WALLS)
def test_warnings_and_transient_429s_are_not_walls(text):
    assert transcripts.wall_of(wall_record(text, WRITTEN), WRITTEN) is None


def test_a_wall_wording_outside_an_api_error_record_is_not_a_wall():
    quoted = {"type": "user", "timestamp": iso(WRITTEN), "message": {"role": "user", "content": "You've hit your session limit · resets 5pm"}}
    assert transcripts.wall_of(quoted, WRITTEN) is None
    flagged_false = dict(wall_record("You've hit your session limit · resets 5pm", WRITTEN), isApiErrorMessage=False)
    assert transcripts.wall_of(flagged_false, WRITTEN) is None
    other_status = wall_record("You've hit your session limit · resets 5pm", WRITTEN, status=500)
    assert transcripts.wall_of(other_status, WRITTEN) is None
    legacy_without_status = wall_record("Claude AI usage limit reached|1785085200", WRITTEN, status=None, error=None)
    assert transcripts.wall_of(legacy_without_status, WRITTEN)[0] == "unknown"


# --- scanning ----------------------------------------------------------------------------------


def reset_text(epoch):
    """`resets 5:40pm (UTC)` for an epoch (the reset wording of the current client)."""
    moment = datetime.fromtimestamp(epoch, timezone.utc)
    return moment.strftime("%I:%M%p").lstrip("0").lower() + " (UTC)"


def minute(epoch):
    return (int(epoch) // 60 + 1) * 60  # a reset falls on a minute


@pytest.fixture
def dirs(sandbox):
    state = sandbox.state_dir
    state.mkdir(parents=True, exist_ok=True)
    return sandbox, [str(sandbox.claude_dir)], str(state)


def test_scan_finds_a_current_wall_and_remembers_it(dirs):
    sandbox, claude_dirs, state = dirs
    now = time.time()
    reset = minute(now + 2 * 3600)
    path = session_file(sandbox.claude_dir)
    write_lines(path, chat_records(now - 120) + [wall_record(f"You've hit your session limit · resets {reset_text(reset)}", now - 60)])
    result = transcripts.scan(claude_dirs, state, now)
    assert [(s.bucket, s.percent, s.wall, s.source, s.resets_at) for s in result.samples] == [("five_hour", 100.0, True, "transcript", reset)]
    assert result.samples[0].observed_at == pytest.approx(now - 60, abs=0.01)
    assert result.last_activity == pytest.approx(os.stat(path).st_mtime)
    assert result.problems == []
    offsets = json.loads((sandbox.state_dir / "transcripts.json").read_text())
    assert offsets["files"][str(path)]["offset"] == os.path.getsize(path)
    assert os.stat(sandbox.state_dir / "transcripts.json").st_mode & 0o777 == 0o600
    # Nothing new: the wall is still reported (it holds until its reset), from memory.
    again = transcripts.scan(claude_dirs, state, now + 60)
    assert [s.bucket for s in again.samples] == ["five_hour"]
    # After its reset it is gone.
    assert transcripts.scan(claude_dirs, state, reset + 1).samples == []


def test_past_walls_and_transient_errors_do_not_count(dirs):
    sandbox, claude_dirs, state = dirs
    now = time.time()
    records = [wall_record(f"You've hit your session limit · resets {reset_text(minute(now - 3 * 3600))}", now - 4 * 3600)]
    records += [wall_record(text, now - 30) for text in NOT_WALLS]
    records += [wall_record("Claude AI usage limit reached|%d" % (now - 60), now - 3600)]
    write_lines(session_file(sandbox.claude_dir), records)
    assert transcripts.scan(claude_dirs, state, now).samples == []


def test_unknown_reset_is_assumed_five_hours_or_a_week(dirs):
    sandbox, claude_dirs, state = dirs
    now = time.time()
    write_lines(session_file(sandbox.claude_dir), [
        wall_record("You've hit your session limit", now - 600),
        wall_record("You've hit your weekly limit", now - 600),
        wall_record("You've hit your usage limit", now - 6 * 3600),  # assumed reset already passed
    ])
    got = {s.bucket: s.resets_at for s in transcripts.scan(claude_dirs, state, now).samples}
    assert got == {"five_hour": pytest.approx(now - 600 + 5 * 3600, abs=0.01), "seven_day": pytest.approx(now - 600 + 7 * 86400, abs=0.01)}


def test_partial_last_line_is_read_again_when_complete(dirs):
    sandbox, claude_dirs, state = dirs
    now = time.time()
    path = session_file(sandbox.claude_dir)
    write_lines(path, chat_records(now - 100))
    line = json.dumps(wall_record(f"You've hit your session limit · resets {reset_text(minute(now + 3600))}", now - 10))
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line[:40])  # Claude Code is mid-write
    assert transcripts.scan(claude_dirs, state, now).samples == []
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line[40:] + "\n")
    assert [s.bucket for s in transcripts.scan(claude_dirs, state, now).samples] == ["five_hour"]


def test_unchanged_files_are_not_read_again(dirs, monkeypatch):
    sandbox, claude_dirs, state = dirs
    now = time.time()
    write_lines(session_file(sandbox.claude_dir), chat_records(now - 100, n=50))
    write_lines(session_file(sandbox.claude_dir, session="other"), chat_records(now - 100, n=50))
    transcripts.scan(claude_dirs, state, now)
    reads = []
    original = transcripts.read_new
    monkeypatch.setattr(transcripts, "read_new", lambda path, offset, cb: reads.append((path, offset)) or original(path, offset, cb))
    transcripts.scan(claude_dirs, state, now + 60)
    assert reads == []
    write_lines(session_file(sandbox.claude_dir), chat_records(now - 50, n=1))
    transcripts.scan(claude_dirs, state, now + 120)
    assert len(reads) == 1 and reads[0][1] > 0  # only the grown file, from where it left off


def test_truncated_or_replaced_files_are_read_from_the_start(dirs):
    sandbox, claude_dirs, state = dirs
    now = time.time()
    path = session_file(sandbox.claude_dir)
    write_lines(path, chat_records(now - 300, n=20))
    transcripts.scan(claude_dirs, state, now)
    wall = wall_record(f"You've hit your weekly limit · resets {reset_text(minute(now + 3600))}", now - 5)
    write_lines(path, [wall], mode="w")  # truncated and rewritten: smaller than the saved offset
    assert [s.bucket for s in transcripts.scan(claude_dirs, state, now).samples] == ["seven_day"]
    replacement = path.with_suffix(".new")
    write_lines(replacement, chat_records(now - 300, n=30) + [wall_record("You've hit your Opus limit", now - 5)])
    os.replace(replacement, path)  # a new inode, larger than the old offset
    assert {s.bucket for s in transcripts.scan(claude_dirs, state, now).samples} == {"seven_day", "seven_day_opus"}


def test_subagent_transcripts_repeat_the_wall_once(dirs):
    sandbox, claude_dirs, state = dirs
    now = time.time()
    text = f"You've hit your session limit · resets {reset_text(minute(now + 3600))}"
    main = session_file(sandbox.claude_dir)
    write_lines(main, [wall_record(text, now - 20)])
    write_lines(main.parent / main.stem / "subagents" / "agent-a1b2c3.jsonl", [wall_record(text, now - 21)])
    write_lines(main, [wall_record(text, now - 10)])  # the user retried
    result = transcripts.scan(claude_dirs, state, now)
    assert len(result.samples) == 1
    assert result.samples[0].observed_at == pytest.approx(now - 10, abs=0.01)  # the newest record of it


def test_walls_hit_while_spilled_are_the_targets_trouble(dirs):
    sandbox, claude_dirs, state = dirs
    now = time.time()
    text = f"You've hit your session limit · resets {reset_text(minute(now + 3600))}"
    write_lines(session_file(sandbox.claude_dir), [wall_record(text, now - 100)])
    assert transcripts.scan(claude_dirs, state, now, [(now - 1000, now - 500), (now - 200, None)]).samples == []
    (sandbox.state_dir / "transcripts.json").unlink()
    assert len(transcripts.scan(claude_dirs, state, now, [(now - 1000, now - 500)]).samples) == 1


def test_legacy_config_dir_and_comma_separated_dirs(dirs):
    sandbox, _, state = dirs
    now = time.time()
    other = sandbox.root / "work-claude"
    write_lines(sandbox.home / ".config" / "claude" / "projects" / "p" / "s.jsonl",
                [wall_record("Claude AI usage limit reached|%d" % (now + 3600), now - 30)])
    write_lines(other / "projects" / "p" / "s.jsonl", [wall_record("You've hit your Sonnet limit", now - 30)])
    result = transcripts.scan([str(sandbox.claude_dir), str(other)], state, now)
    assert {s.bucket for s in result.samples} == {"unknown", "seven_day_sonnet"}


def test_old_files_are_skipped_without_reading(dirs, monkeypatch):
    sandbox, claude_dirs, state = dirs
    now = time.time()
    path = session_file(sandbox.claude_dir)
    write_lines(path, chat_records(now - 20 * 86400, n=10))
    os.utime(path, (now - 20 * 86400, now - 20 * 86400))
    reads = []
    monkeypatch.setattr(transcripts, "read_new", lambda *a: reads.append(a))
    result = transcripts.scan(claude_dirs, state, now)
    assert reads == [] and result.last_activity == pytest.approx(now - 20 * 86400)


def test_no_transcripts_at_all_is_fine(dirs):
    _, claude_dirs, state = dirs
    result = transcripts.scan(claude_dirs, state, time.time())
    assert result.samples == [] and result.last_activity is None and result.problems == []


def test_odd_entries_do_not_break_the_scan(dirs):
    sandbox, claude_dirs, state = dirs
    path = session_file(sandbox.claude_dir)
    write_lines(path, chat_records(time.time()))
    os.symlink(sandbox.root / "missing", path.parent / "dangling.jsonl")
    os.mkfifo(path.parent / "pipe.jsonl")
    (path.parent / "binary.jsonl").write_bytes(b"\x00\xff" * 1000 + b'"isApiErrorMessage"\xff\n')
    result = transcripts.scan(claude_dirs, state, time.time())
    assert result.samples == [] and result.problems == []


# --- the decision, through real ticks ------------------------------------------------------------


def test_tick_spills_on_a_fresh_wall_newer_than_the_last_poll(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(80.0, resets_in=7200))
    wired.run("tick", check=True)
    assert wired.state()["route"] == "plan"
    assert len(wired.usage.hits("/api/oauth/usage")) == 1
    reset = minute(time.time() + 2 * 3600)
    write_lines(session_file(wired.claude_dir), chat_records(time.time() - 5) + [
        wall_record("API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited", time.time() - 3),
        wall_record(f"You've hit your session limit · resets {reset_text(reset)}", time.time() + 0.5),
    ])
    time.sleep(0.6)
    wired.run("tick", check=True)
    state = wired.state()
    assert state["route"] == "openrouter" and state["status"] == "spilled"
    assert state["buckets"]["five_hour"]["source"] == "transcript"
    assert state["buckets"]["five_hour"]["wall"] is True and state["buckets"]["five_hour"]["resets_at"] == reset
    assert state["sources"]["transcripts"]["walls"] == 1
    assert len(wired.usage.hits("/api/oauth/usage")) == 1  # the wall made polling unnecessary
    assert wired.run("check", "-q").returncode == 3
    assert "ANTHROPIC_AUTH_TOKEN" in wired.route_env() and OR_KEY not in wired.run("status").stdout
    status = wired.run("status").stdout
    assert re.search(r"five_hour\s+100%\s+\S+\s+transcript\s+\d+s ago\s+hot", status), status
    assert "last activity" in status


def test_tick_stays_on_the_plan_for_transient_429s(wired):
    now = time.time()
    write_lines(session_file(wired.claude_dir), chat_records(now - 60) + [wall_record(t, now - 30) for t in NOT_WALLS])
    wired.run("tick", check=True, env={"SPILLOVER_SOURCES": "transcripts"})
    state = wired.state()
    assert state["route"] == "plan"
    assert state["sources"]["transcripts"]["walls"] == 0 and state["sources"]["transcripts"]["ok"] is True
    assert wired.run("check", "-q", env={"SPILLOVER_SOURCES": "transcripts"}).returncode == 0


def test_tick_reads_legacy_wording_and_blocks_without_a_target(sandbox):
    now = time.time()
    write_lines(session_file(sandbox.claude_dir), [wall_record("Claude AI usage limit reached|%d" % (now + 3000), now - 30)])
    sandbox.run("tick", check=True, env={"SPILLOVER_SOURCES": "transcripts"})
    state = sandbox.state()
    assert state["route"] == "blocked" and state["hot_bucket"] == "unknown"
    assert state["buckets"]["unknown"]["resets_at"] == int(now) + 3000
    assert sandbox.run("check", "-q").returncode == 4


# --- the real clients' records (tests/fixtures/transcripts/<version>/, tests/e2e/capture_walls.py) ---

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures")
CLIENT_VERSIONS = ("2.1.197", "2.1.332")


def real_cases():
    out = []
    for version in CLIENT_VERSIONS:
        with open(os.path.join(FIXTURES, "transcripts", version, "cases.json"), encoding="utf-8") as handle:
            for name, case in sorted(json.load(handle).items()):
                out.append(pytest.param(version, name, case, id=f"{version}-{name}"))
    return out


def real_records(version, name):
    path = os.path.join(FIXTURES, "transcripts", version, f"{name}.jsonl")
    with open(path, encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle if line.strip()]
    assert records and all(r["isApiErrorMessage"] is True and r["version"] == version for r in records), path
    return records


def test_the_fixtures_cover_every_claim_of_both_clients():
    cases = {(p.values[0], p.values[1]): p.values[2] for p in real_cases()}
    for version in CLIENT_VERSIONS:
        expected = {n: c["expect"] for (v, n), c in cases.items() if v == version}
        assert {"five_hour", "seven_day", "seven_day_opus", "seven_day_sonnet", "seven_day_fable", "overage"} <= set(expected.values())
        assert None in expected.values()  # and non-walls


@pytest.mark.parametrize("version,name,case", real_cases())
def test_every_real_wording_spills_with_its_bucket_and_reset_or_not_at_all(version, name, case):
    records = real_records(version, name)
    text = transcripts.message_text(records[-1])
    assert text == case["result"], "the record holds what the client printed"
    written = transcripts.record_time(records[-1])
    if case["expect"] is None:
        assert [transcripts.wall_of(r, written) for r in records] == [None] * len(records), text
        assert transcripts.classify_wall(text, written) is None, text
        return
    reset = case["answered"]["reset"]
    got = transcripts.wall_of(records[-1], written)
    assert got is not None, f"{version} {name}: not read as a wall: {text!r}"
    assert got[0] == case["expect"], text
    assert got[1] == pytest.approx(written, abs=0.001)
    assert got[2] == pytest.approx(reset, abs=60), text  # the text shows the minute; 2.1.3xx also the epoch
    # The text alone, as a StopFailure hook gets it, says the same (to the minute).
    bucket, resets_at = transcripts.classify_wall(text, written)
    assert bucket == case["expect"] and resets_at == pytest.approx(reset, abs=60) and resets_at <= reset + 1, text


@pytest.mark.parametrize("version,name,case", real_cases())
def test_stopfailure_payloads_of_both_clients_classify_like_the_transcript(version, name, case):
    with open(os.path.join(FIXTURES, "stopfailure", version, f"{name}.json"), encoding="utf-8") as handle:
        payload = json.load(handle)
    assert payload["hook_event_name"] == "StopFailure"
    record = real_records(version, name)[-1]
    assert payload["last_assistant_message"] == transcripts.message_text(record)
    assert payload["error"] == record["error"]
    written = transcripts.record_time(record)
    got = transcripts.classify_wall(payload["last_assistant_message"], written)
    if case["expect"] is None:
        assert got is None
    else:
        assert got[0] == case["expect"] and got[1] == pytest.approx(case["answered"]["reset"], abs=60)


def test_a_332_record_in_an_unknown_wording_is_read_from_its_quota_limits():
    record = real_records("2.1.332", "seven_day_overage_included")[-1]
    record["message"]["content"][0]["text"] = "Fable hit a wall we have never seen the words of"
    written = transcripts.record_time(record)
    assert transcripts.wall_of(record, written) == ("seven_day_fable", written, record["quotaLimits"]["resetsAt"])
    record["apiError"] = None  # without the client's own verdict, an unknown wording is no wall
    assert transcripts.wall_of(record, written) is None


# Wordings read in 2.1.332's bundle that a fake cannot provoke headless (a feature flag, an
# interactive dialog, a plan type): built from the real records' shape.
DERIVED_WALLS = [
    ("You've hit your 5-hour limit · resets 5:40pm (Europe/Madrid) · progress saved", "five_hour", "2026-07-26T15:40:00+00:00"),
    ("You've hit your weekly limit · resets Jul 30, 9am (UTC) · progress saved", "seven_day", "2026-07-30T09:00:00+00:00"),
    ("You've hit your Fable limit · resets Jul 30, 9am (UTC)", "seven_day_fable", "2026-07-30T09:00:00+00:00"),
    ("You've hit your Fable 5 limit · resets Jul 30, 9am (UTC)", "seven_day_fable", "2026-07-30T09:00:00+00:00"),
    ("You've reached your Fable limit for this week. Switch models?", "seven_day_fable", None),
    ("You've hit your usage credit limit · resets Aug 1, 12am (UTC)", "overage", "2026-08-01T00:00:00+00:00"),
    ("You've hit your limit · resets 4pm (UTC) · progress saved", "overage", "2026-07-26T16:00:00+00:00"),
    ("You're out of usage credits · resets 4pm (UTC) · progress saved", "overage", "2026-07-26T16:00:00+00:00"),
    ("You're out of usage credits. Run /usage-credits to keep using Fable 5 or /model to switch models.", "overage", None),
    ("You're out of usage credits. /model to switch models.", "overage", None),
    ("Fable 5 requires usage credits. /model to switch models.", "overage", None),
    ("Opus 5.5 requires usage credits. Run /usage-credits to continue or switch models with /model.", "overage", None),
    ("Claude stopped here because Fable 5 now requires usage credits. /model to switch models.", "overage", None),
    ("You've hit your monthly spend limit. /model to switch models.", "overage", None),
    ("Fable limit reached · continuing on Fable 5 uses usage credits · Claude stopped here · send a message to be asked "
     "again, or switch models", "seven_day_fable", None),
    ("You've hit your 5-hour limit", "five_hour", None),
    ("You've hit your Fable limit", "seven_day_fable", None),
]
DERIVED_NOT_WALLS = [
    "You've used 91% of your 5-hour limit · resets 5:40pm (Europe/Madrid)",
    "You've used 80% of your Fable limit · resets Jul 30, 9am (UTC) · /usage-credits to keep using Claude Code",
    "Over 90% of your usage credit limit used",
    "Approaching Fable limit",
    "You're close to your usage credit limit",
    "You're now using usage credits · Your 5-hour limit resets 5:40pm (Europe/Madrid)",
    "Now using usage credits for Fable · Your Fable limit resets Jul 30, 9am (UTC)",
    "Switched to Opus 5.5 for this session · Fable 5 requires usage credits · /model to change",
    "API Error: 400 Third-party apps now draw from your extra usage, not your plan limits.",
    "API Error: Extra usage is required for long context requests.",
    "Server is temporarily limiting requests (not your usage limit)",
]


@pytest.mark.parametrize("text,bucket,reset", DERIVED_WALLS)
def test_wordings_from_the_bundle_are_walls(text, bucket, reset):
    assert transcripts.classify_wall(text, WRITTEN) == (bucket, None if reset is None else at(reset))
    assert transcripts.wall_of(wall_record(text, WRITTEN), WRITTEN) == (bucket, WRITTEN, None if reset is None else at(reset))


@pytest.mark.parametrize("text", DERIVED_NOT_WALLS)
def test_notices_from_the_bundle_are_not_walls(text):
    assert transcripts.classify_wall(text, WRITTEN) is None
    assert transcripts.wall_of(wall_record(text, WRITTEN), WRITTEN) is None


def test_classify_wall_reads_a_zoneless_reset_in_the_given_zone():
    assert transcripts.classify_wall("You've hit your 5-hour limit · resets 7:45pm", WRITTEN, "Europe/Berlin") == (
        "five_hour", at("2026-07-26T17:45:00+00:00"))


def test_tick_spills_on_a_fable_wall_from_the_newest_client(wired):
    record = real_records("2.1.332", "seven_day_overage_included")[-1]
    now = time.time()
    reset = now + 3 * 86400
    record["timestamp"] = iso(now - 5)
    record["quotaLimits"]["resetsAt"] = int(reset)
    record["message"]["content"][0]["text"] = f"You've hit your Fable limit · resets {reset_text(reset)}"
    write_lines(session_file(wired.claude_dir), chat_records(now - 60) + [record])
    # A per-model wall spills with SPILLOVER_MODEL_WALL=spill (SPILLOVER_WEEKLY governs seven_day only).
    wired.run("tick", check=True, env={"SPILLOVER_SOURCES": "transcripts", "SPILLOVER_MODEL_WALL": "spill"})
    state = wired.state()
    assert state["route"] == "openrouter" and state["hot_bucket"] == "seven_day_fable", state["reason"]
    assert state["buckets"]["seven_day_fable"]["resets_at"] == int(reset)
    wired.run("tick", check=True, env={"SPILLOVER_SOURCES": "transcripts"})  # the spill holds until the wall's reset
    assert wired.state()["hot_bucket"] == "seven_day_fable"
    assert "seven_day_fable" in wired.run("status").stdout
