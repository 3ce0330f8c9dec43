"""Decision v2 (issue 10): spills that end on time, walls that hold, model walls that stay on the
plan, one account per reading. Pure tables first, then the small pure helpers the tick uses."""

import os
from datetime import datetime, timezone

import pytest

from spillover import policy, targets, tick
from spillover.policy import Pin, Policy, Previous, Sample, Signals, TargetHealth, decide, merge
from spillover.sources.oauth import oauth_due, parse_usage
from spillover.sources.transcripts import classify_wall

R = 1_800_000_000.0  # the reset of the window that caused the spill
H = 3600.0
OR_OK = TargetHealth("openrouter", True, "key remaining $24.50", 24.5)
OR_503 = TargetHealth("openrouter", True, "key remaining $24.50 (as of 12 min ago; HTTP 503)", 24.5)

# --- 1. leaving a spill: every hot-bucket kind × source mix × {a fresh reading after the reset, none}

KINDS = {  # bucket -> the policy under which it spills by itself
    "five_hour": Policy(),
    "seven_day": Policy(weekly="spill"),
    "seven_day_fable": Policy(model_wall="spill"),
    "unknown": Policy(),  # a transcript "usage limit" wall: no source measures it
    "overage": Policy(),  # the usage credits' wall
}
# mix -> (source of its readings, can it confirm a reset, are its readings walls from transcripts)
MIXES = {
    "oauth working": ("oauth", True, False),
    "oauth failing": ("oauth", False, False),
    "statusline only": ("statusline", False, False),
    "transcripts only": ("transcript", False, True),
    "meter": ("command", True, False),
}


def run_spill(bucket, mix, fresh):
    """Decide every minute from R-5 min to R+60 min, spilled on `bucket`; return the first minute
    (relative to R, in seconds) the route is back on the plan, or None."""
    source, confirms, transcript = MIXES[mix]
    pol = KINDS[bucket]
    window = policy.window_seconds(bucket)
    hot = Sample(bucket, 100.0, R - 30 * 60, source, R, wall=transcript or bucket in ("unknown", "overage"))
    readings = [hot]
    if bucket != "five_hour":
        readings.append(Sample("five_hour", 30.0, R - 30 * 60, source, R + 2 * H))
    prev = Previous("openrouter", R - 2 * H, bucket, f"{bucket} 100%")
    for minute in range(-5, 61):
        now = R + minute * 60
        got = list(readings)
        if fresh and minute >= 1 and not transcript:
            # The confirming poll (RESET_CUSHION after the reset) or any other reading of the new window.
            # Nothing measures "unknown"/"overage": the fresh reading is of five_hour then.
            measured = bucket if policy.measured(bucket) else "five_hour"
            got.append(Sample(measured, 5.0, R + 60, source, R + (window if measured == bucket else 5 * H)))
        # A confirming source that works reads at R+1 min; one that does not has no working record.
        working = confirms and (fresh or minute < 1)
        signals = Signals(buckets=merge(got), history={}, targets=(OR_OK,), confirmers=(source,) if working else ())
        decision = decide(prev, signals, pol, now)
        if decision.route == "plan":
            return now - R
        assert decision.route == "openrouter", decision.reason
        prev = Previous(decision.route, prev.since, decision.hot_bucket, prev.reason)
    return None


TABLE = [(b, m, f) for b in KINDS for m in MIXES for f in (True, False)]


@pytest.mark.parametrize("bucket,mix,fresh", TABLE, ids=[f"{b}-{m}-{'fresh' if f else 'none'}" for b, m, f in TABLE])
def test_every_spill_ends_within_minutes_of_its_reset(bucket, mix, fresh):
    ended = run_spill(bucket, mix, fresh)
    assert ended is not None, "the spill never ended"
    assert ended >= 0, "the spill ended before the reset"
    source, confirms, transcript = MIXES[mix]
    if fresh and not transcript and policy.measured(bucket):
        assert ended <= 120, f"a fresh reading after the reset ends it at once, not after {ended / 60:.0f} min"
    else:
        assert ended <= 3 * 60, f"the reset (+ grace) ends it, not after {ended / 60:.0f} min"
        assert ended >= policy.RESET_GRACE or (fresh and policy.measured(bucket) and not transcript)


def test_a_working_confirmer_waits_for_its_reading():
    """oauth works but its new-window reading is still over resume: stay (it is the new window at 60%)."""
    hot = Sample("five_hour", 100.0, R - 600, "oauth", R, wall=True)
    high = Sample("five_hour", 60.0, R + 60, "oauth", R + 5 * H)
    prev = Previous("openrouter", R - H, "five_hour")
    signals = Signals(buckets=merge([hot, high]), targets=(OR_OK,), confirmers=("oauth",))
    assert decide(prev, signals, Policy(), R + 5 * 60).route == "openrouter"


def test_the_confirming_poll_comes_a_minute_after_the_reset():
    five = Sample("five_hour", 100.0, R - 300, "oauth", R, wall=True)
    args = dict(backoff_until=None, five_hour=five, policy=Policy(), poll_seconds=600, spilled=True, active=False)
    # Polled 4 minutes before the reset: not due at the reset, due one minute after, whatever the spacing.
    assert oauth_due(R + 30, last_attempt_at=R - 240, **args)[0] is False
    assert oauth_due(R + 60, last_attempt_at=R - 240, **args) == (True, "confirming the reset")
    # A statusline reading of the old window moments ago does not delay it.
    fresh = Sample("five_hour", 100.0, R + 50, "statusline", R)
    assert oauth_due(R + 61, last_attempt_at=R - 240, **dict(args, five_hour=fresh))[0] is True
    # The hot bucket is weekly: its reset is what the poll confirms.
    week = Sample("seven_day", 100.0, R - 300, "oauth", R + 86400)
    assert oauth_due(R + 61, last_attempt_at=R + 30, **args, watch=week)[0] is False
    assert oauth_due(R + 86400 + 60, last_attempt_at=R + 86400 - 100, **args, watch=week)[0] is True
    # Backing off (429) still wins.
    assert oauth_due(R + 60, last_attempt_at=R - 240, **dict(args, backoff_until=R + 900))[0] is False


# --- 2. walls hold until their reset


def test_a_wall_is_not_undone_by_a_later_lower_reading_of_its_window():
    wall = Sample("five_hour", 100.0, R - 3600, "transcript", R, wall=True)
    low = Sample("five_hour", 3.0, R - 60, "statusline", R)
    assert merge([wall, low])["five_hour"] is wall
    assert merge([low, wall])["five_hour"] is wall
    d = decide(Previous("plan"), Signals(buckets=merge([wall, low]), targets=(OR_OK,)), Policy(), R - 30)
    assert d.route == "openrouter"


def test_a_wall_is_undone_by_a_newer_reading_of_a_later_window():
    wall = Sample("five_hour", 100.0, R - 3600, "stopfailure", R, wall=True)
    later = Sample("five_hour", 3.0, R - 60, "oauth", R + 5 * H)
    assert merge([wall, later])["five_hour"] is later
    older_later = Sample("five_hour", 3.0, R - 7200, "oauth", R + 5 * H)  # older than the wall: no proof
    assert merge([wall, older_later])["five_hour"] is wall


def test_a_wall_without_a_reset_takes_the_reset_another_reading_knows():
    wall = Sample("seven_day_fable", 100.0, R - 3600, "stopfailure", None, wall=True)
    other = Sample("seven_day_fable", 80.0, R - 7200, "oauth", R + 86400)
    assert merge([wall, other])["seven_day_fable"].resets_at == R + 86400
    # Without one, it holds for its window from when it was written (7 days for a weekly bucket).
    alone = merge([wall])["seven_day_fable"]
    assert policy.bucket_state(alone, Policy(), R + 6 * 86400)[0] == "hot"
    assert policy.bucket_state(alone, Policy(), R + 7 * 86400)[0] == "unknown"


def test_the_usage_endpoint_at_100_is_a_wall():
    got = parse_usage({"five_hour": {"utilization": 100, "resets_at": R}, "seven_day": {"utilization": 40, "resets_at": R + 86400}}, R - 60)
    assert [s.wall for s in got] == [True, False]


def test_usage_credit_walls_are_the_overage_bucket_and_follow_extra_usage():
    bucket, _ = classify_wall("You've hit your usage credit limit · resets 5pm (UTC)", R)
    assert bucket == "overage"
    wall = Sample("overage", 100.0, R - 60, "transcript", R + H, wall=True)
    on = Signals(buckets=merge([wall]), targets=(OR_OK,), extra_usage_on=True)
    assert decide(Previous("plan"), on, Policy(extra_usage="stay"), R).route == "plan"
    assert decide(Previous("plan"), on, Policy(extra_usage="spill"), R).route == "openrouter"


# --- 3. model walls downshift on the plan


def fable_wall(pct=100.0):
    return Sample("seven_day_fable", pct, R - 60, "transcript", R + 2 * 86400, wall=True)


def test_a_fable_wall_downshifts_the_fable_alias_to_opus_on_the_plan():
    five = Sample("five_hour", 40.0, R - 60, "statusline", R + 2 * H)
    d = decide(Previous("plan"), Signals(buckets=merge([five, fable_wall()]), targets=(OR_OK,)), Policy(), R)
    assert (d.route, d.status) == ("plan", "plan")
    (shift,) = d.details["downshift"]
    assert shift == {"from": "fable", "to": "opus", "model": "claude-opus-5-5", "bucket": "seven_day_fable",
                     "resets_at": R + 2 * 86400, "variable": "ANTHROPIC_DEFAULT_FABLE_MODEL"}
    env = dict(targets.route_env("plan", None, downshift=d.details["downshift"]))
    assert env["SPILLOVER_ROUTE"] == "plan" and env["SPILLOVER_DOWNSHIFT"] == "fable>opus"
    assert env["ANTHROPIC_DEFAULT_FABLE_MODEL"] == "claude-opus-5-5"
    assert env["ANTHROPIC_BASE_URL"] is None and env["ANTHROPIC_DEFAULT_OPUS_MODEL"] is None
    # At its reset the wall is over: no override.
    d = decide(Previous("plan"), Signals(buckets=merge([fable_wall()]), targets=(OR_OK,)), Policy(), R + 2 * 86400)
    assert "downshift" not in d.details
    assert dict(targets.route_env("plan", None))["ANTHROPIC_DEFAULT_FABLE_MODEL"] is None


def test_the_downshift_skips_a_tier_that_is_walled_too_and_any_model_bucket_is_generic():
    opus = Sample("seven_day_opus", 99.0, R - 60, "oauth", R + 86400)
    d = decide(Previous("plan"), Signals(buckets=merge([fable_wall(), opus]), targets=(OR_OK,)), Policy(), R)
    shifts = {s["from"]: s["to"] for s in d.details["downshift"]}
    assert shifts == {"fable": "sonnet", "opus": "sonnet"}
    # A model bucket of a tier spillover has no alias for blocks with the notification.
    odd = Sample("seven_day_omelette", 100.0, R - 60, "oauth", R + 86400)
    d = decide(Previous("plan"), Signals(buckets=merge([odd]), targets=(OR_OK,)), Policy(), R)
    assert d.route == "blocked" and "SPILLOVER_MODEL_WALL" in d.reason


@pytest.mark.parametrize("mode,route", [("downshift", "plan"), ("spill", "openrouter"), ("notify", "blocked")])
def test_model_wall_modes(mode, route):
    d = decide(Previous("plan"), Signals(buckets=merge([fable_wall()]), targets=(OR_OK,)), Policy(model_wall=mode), R)
    assert d.route == route, d.reason


def test_an_all_model_wall_wins_over_the_downshift():
    five = Sample("five_hour", 97.0, R - 60, "oauth", R + H)
    d = decide(Previous("plan"), Signals(buckets=merge([five, fable_wall()]), targets=(OR_OK,)), Policy(), R)
    assert d.route == "openrouter"
    week = Sample("seven_day", 100.0, R - 60, "oauth", R + 86400)
    d = decide(Previous("plan"), Signals(buckets=merge([week, fable_wall()]), targets=(OR_OK,)), Policy(), R)
    assert d.route == "blocked" and d.hot_bucket == "seven_day" and "SPILLOVER_WEEKLY=notify" in d.reason


def test_weekly_setting_governs_only_the_all_model_bucket():
    d = decide(Previous("plan"), Signals(buckets=merge([fable_wall()]), targets=(OR_OK,)), Policy(weekly="spill"), R)
    assert d.route == "plan" and d.details["downshift"]


# --- 4. readings carry their account and the time they were made


def test_future_stamps_are_clamped_to_now():
    future = Sample("five_hour", 5.0, R + 6 * H, "statusline", R + 8 * H)
    now_reading = Sample("five_hour", 97.0, R - 30, "oauth", R + H)
    (clamped,) = policy.clamp([future], R)
    assert clamped.observed_at == R
    assert policy.clamp([now_reading], R) == [now_reading]


def test_re_renders_are_not_forecast_points():
    """A 12%/h burn with old values re-rendered later is still ~12%/h (it read 94%/h before)."""
    sample = Sample("five_hour", 62.0, R, "oauth", R + 2 * H)
    history = [Sample("five_hour", 60.0, R - 600, "oauth", R + 2 * H),
               Sample("five_hour", 56.0, R - 300, "statusline", R + 2 * H),  # an old value shown again
               Sample("five_hour", 56.0, R - 240, "statusline", R + 2 * H)]
    fc = policy.forecast("five_hour", sample, history, Policy(), R)
    assert fc.rate_per_hour == pytest.approx(12.0)


def test_one_decision_from_the_primary_account():
    mine = Sample("five_hour", 30.0, R - 60, "statusline", R + H, account="/home/u/.claude")
    theirs = Sample("five_hour", 99.0, R - 30, "statusline", R + 2 * H, account="/home/u/.claude-work")
    unknown = Sample("seven_day", 20.0, R - 30, "command", R + 86400)
    kept, others = policy.for_account([mine, theirs, unknown], "/home/u/.claude")
    assert kept == [mine, unknown] and others == [theirs]
    d = decide(Previous("plan"), Signals(buckets=merge(kept), targets=(OR_OK,)), Policy(), R)
    assert d.route == "plan"


# --- 5. the small lies


def test_an_ignored_pin_is_not_recorded_as_followed():
    low = TargetHealth("openrouter", False, "key remaining $0.50 < floor $1.00", 0.5)
    five = Sample("five_hour", 20.0, R - 60, "oauth", R + H)
    d = decide(Previous("plan"), Signals(buckets=merge([five]), targets=(low,), pin=Pin("openrouter", R + H)), Policy(), R)
    assert d.route == "plan" and "pin" not in d.details and "pin_ignored" in d.details


def test_a_weekly_wall_during_a_five_hour_spill_is_one_flip():
    hot = Sample("five_hour", 100.0, R - 3 * H, "oauth", R, wall=True)
    week = Sample("seven_day", 100.0, R - 600, "oauth", R + 86400, wall=True)
    new = Sample("five_hour", 2.0, R + 60, "oauth", R + 5 * H)
    prev = Previous("openrouter", R - H, "five_hour", "five_hour 100%")
    routes = []
    for minute in range(-2, 5):
        got = [hot, week] + ([new] if minute >= 1 else [])
        d = decide(prev, Signals(buckets=merge(got), targets=(OR_OK,), confirmers=("oauth",)), Policy(), R + minute * 60)
        routes.append(d.route)
        prev = Previous(d.route, prev.since if d.route == prev.route else R + minute * 60, d.hot_bucket, d.reason)
    assert routes == ["openrouter"] * 3 + ["blocked"] * 4  # never plan in between


def test_one_pin_suggestion_everywhere():
    week = Sample("seven_day", 100.0, R - 60, "oauth", R + 86400)
    low = TargetHealth("openrouter", False, "low", 0.2)
    ant = TargetHealth("anthropic", True, "ok")
    d = decide(Previous("plan"), Signals(buckets=merge([week]), targets=(low, ant)), Policy(), R)
    assert d.details["pin_command"] == "spillover pin anthropic --until-reset"
    assert "`spillover pin anthropic --until-reset`" in d.reason
    from spillover import notify

    class Cfg:
        targets = ("openrouter", "anthropic")

    assert notify._pin_command(Cfg, {"details": d.details}) == d.details["pin_command"]


def test_a_budget_outage_keeps_the_spill():
    five = Sample("five_hour", 99.0, R - 60, "oauth", R + H)
    prev = Previous("openrouter", R - H, "five_hour")
    d = decide(prev, Signals(buckets=merge([five]), targets=(OR_503,)), Policy(), R)
    assert d.route == "openrouter"


def test_a_10_minute_503_outage_of_key_keeps_the_target_healthy():
    from spillover import config
    from spillover.targets.openrouter import budget_health

    cfg = config.load(environ={"OPENROUTER_API_KEY": "sk-or-v1-" + "a" * 64}, path="/nonexistent.env")
    budget = {"fetched_at": R - 900, "key": {"label": "k", "limit": 50.0, "limit_remaining": 24.5, "usage": 25.5,
                                              "limit_reset": None, "usage_daily": 1.0, "usage_weekly": 2.0, "usage_monthly": 3.0,
                                              "is_free_tier": False, "is_management_key": False, "expires_at": None},
              "credits": None, "error": "key endpoint: HTTP 503", "error_kind": "unavailable", "error_status": 503}
    health = budget_health(cfg, budget, R)
    assert health.healthy and "as of 15 min ago" in health.reason, health.reason
    refused = dict(budget, error="key endpoint: HTTP 401", error_kind="auth", error_status=401)
    assert not budget_health(cfg, refused, R).healthy


class _Reader:
    def __init__(self, name, confirm=False):
        self.name, self.can_confirm_reset = name, confirm


class _Cfg:
    poll_minutes = 10


def test_confirmers_are_the_working_sources_not_the_enabled_ones():
    enabled = [_Reader("oauth", True), _Reader("statusline"), _Reader("command", True)]
    records = {"oauth": {"ok": False, "error": "token expired", "last_reading_at": R - 300},
               "command": {"ok": True, "last_reading_at": R - 120}}
    assert tick.confirmers(enabled, records, _Cfg, R) == ("command",)
    records["command"]["last_reading_at"] = R - 3 * 3600
    assert tick.confirmers(enabled, records, _Cfg, R) == ()


def test_blind_only_when_nothing_can_see():
    enabled = [_Reader("oauth", True), _Reader("transcripts")]
    failing = {"oauth": {"ok": False, "error": "HTTP 401"}, "transcripts": {"ok": False, "error": "unreadable"}}
    assert "every enabled source is failing" in tick.blindness(enabled, failing, {})
    never = {"oauth": {"ok": False, "error": "expired"}, "transcripts": {"ok": True, "last_activity": None}}
    assert "no source has produced a reading" in tick.blindness(enabled, never, {})
    # Idle: nothing new, but readings exist (or transcripts are being read): not blind.
    idle = {"oauth": {"ok": True, "last_reading_at": R - 5 * H}, "transcripts": {"ok": True, "last_activity": R - 9 * H}}
    assert tick.blindness(enabled, idle, {"five_hour": object()}) is None
    assert tick.blindness(enabled, dict(never, transcripts={"ok": True, "last_activity": R - H}), {}) is None


def test_dst_fall_back_resolves_to_the_earliest_future_instant():
    # 2026-11-01, America/New_York falls back at 2:00 EDT -> 1:00 EST: 1:30 happens twice.
    ny_0150_edt = datetime(2026, 11, 1, 5, 50, tzinfo=timezone.utc).timestamp()
    _, reset = classify_wall("You've hit your 5-hour limit · resets 1:30am (America/New_York)", ny_0150_edt)
    assert reset == datetime(2026, 11, 1, 6, 30, tzinfo=timezone.utc).timestamp()  # 1:30 EST, 40 min later
    ny_0110_edt = datetime(2026, 11, 1, 5, 10, tzinfo=timezone.utc).timestamp()
    _, reset = classify_wall("You've hit your 5-hour limit · resets 1:30am (America/New_York)", ny_0110_edt)
    assert reset == datetime(2026, 11, 1, 5, 30, tzinfo=timezone.utc).timestamp()  # 1:30 EDT, the first one
    # Spring forward: 2:30 does not exist on 2026-03-08; it resolves to an instant after the write, the same day.
    before = datetime(2026, 3, 8, 6, 0, tzinfo=timezone.utc).timestamp()  # 1:00 EST
    _, reset = classify_wall("You've hit your 5-hour limit · resets 2:30am (America/New_York)", before)
    assert before < reset < before + 3 * H


def test_proof_that_the_plan_answers_again_ends_an_all_model_wall_only():
    wall = Sample("unknown", 100.0, R - 600, "transcript", R + H, wall=True)
    fable = Sample("seven_day_fable", 100.0, R - 600, "transcript", R + 86400, wall=True)
    blocked = Previous("blocked", R - 600, "unknown", "unknown 100%; no healthy target")
    signals = Signals(buckets=merge([wall, fable]), targets=(OR_OK,), plan_answered_at=R - 60)
    d = decide(blocked, signals, Policy(), R)
    assert d.route == "plan" and d.details["downshift"][0]["bucket"] == "seven_day_fable"
    # An answer older than the wall proves nothing.
    d = decide(Previous("plan"), Signals(buckets=merge([wall]), targets=(OR_OK,), plan_answered_at=R - 900), Policy(), R)
    assert d.route == "openrouter"


def test_transcripts_report_a_real_answer_after_a_wall(tmp_path):
    import json as _json

    from spillover.sources.transcripts import answered_after

    path = tmp_path / "s.jsonl"
    iso = lambda t: datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")  # noqa: E731
    records = [
        {"type": "assistant", "timestamp": iso(R - 900), "message": {"model": "claude-opus-4-8", "content": []}},
        {"type": "assistant", "timestamp": iso(R - 600), "isApiErrorMessage": True, "message": {"model": "<synthetic>"}},
        {"type": "assistant", "timestamp": iso(R - 60), "message": {"model": "claude-opus-4-8", "content": []}},
    ]
    path.write_text("".join(_json.dumps(r) + "\n" for r in records))
    assert answered_after(str(path), R - 600, ()) == R - 60
    assert answered_after(str(path), R - 600, [(R - 120, None)]) is None  # sent while spilled: not the plan
    assert answered_after(str(path), R - 30, ()) is None


def test_check_exits_5_when_blind_and_says_why(sandbox):
    # Only the usage endpoint, and no credentials: nothing can see the plan.
    sandbox.run("tick", check=True, env={"SPILLOVER_SOURCES": "oauth"})
    proc = sandbox.run("check", env={"SPILLOVER_SOURCES": "oauth"})
    assert proc.returncode == 5 and proc.stdout.startswith("blind: ") and "route plan kept" in proc.stdout, proc.stdout
    summary = __import__("json").loads(sandbox.run("check", "--json").stdout)
    assert summary["blind"] is True and summary["route"] == "plan"


def test_an_ignored_pin_is_not_exported(wired):
    from tests import fakes

    wired.run("pin", "openrouter", "--for", "30m", check=True)
    assert "export SPILLOVER_PIN=" in wired.route_env()
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=0.2))  # the guard fails: the pin is not followed
    wired.run("tick", check=True)
    state = wired.state()
    assert state["route"] == "plan" and state["pin"]["honoured"] is False
    assert "export SPILLOVER_PIN" not in wired.route_env()


@pytest.mark.parametrize("jitter", [0.0, 0.2, 0.5, 0.9])
@pytest.mark.parametrize("spill_at_min", [-60, -45, -25, -12, -3])
def test_the_confirming_poll_fits_in_the_hourly_budget(jitter, spill_at_min):
    """Polls while spilled leave room for the confirming one: at most 6 in any 60 minutes.

    A tick every minute (each a little late, as cron and a loaded machine make it) from the spill
    to the confirming poll; the plan's reading says 100% until then.
    """
    args = dict(backoff_until=None, policy=Policy(), poll_seconds=600, spilled=True, active=True)
    polls = [R + spill_at_min * 60 - 1]  # the poll that saw the wall, just before the flip
    for minute in range(spill_at_min, 21):
        now = R + minute * 60 + jitter * (minute % 2)
        five = Sample("five_hour", 100.0, polls[-1], "oauth", R)
        if oauth_due(now, last_attempt_at=polls[-1], five_hour=five, **args)[0]:
            polls.append(now)
            if now >= R:
                break
    assert any(R + 60 <= p <= R + 120 for p in polls), [round((p - R) / 60, 1) for p in polls]
    worst = max(sum(1 for p in polls if start <= p < start + 3600) for start in polls)
    assert worst <= 6, [round((p - R) / 60, 1) for p in polls]


def test_the_answer_search_never_waits_on_a_fifo(tmp_path):
    """A transcript swapped for a FIFO between the scan and the read: no answer, and no hang (a
    plain open() would wait for a writer forever; the thread's join bounds the test, not a speed)."""
    import threading

    from spillover.sources.transcripts import answered_after

    fifo = tmp_path / "s.jsonl"
    os.mkfifo(fifo)
    result = []
    reader = threading.Thread(target=lambda: result.append(answered_after(str(fifo), R - 600, ())), daemon=True)
    reader.start()
    reader.join(20)
    assert result == [None]
