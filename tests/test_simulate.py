"""`spillover simulate`: replay a trace through the real decision and report the cost of a policy."""

import json
import time

import pytest

from spillover import policy, samples, simulate
from spillover.policy import Policy

T0 = 1_800_000_000.0


def burn_trace(path, minutes=300, start=40.0, rate=0.5, every=60, reset_min=180, source="statusline"):
    """A trace like the statusline records: a steady burn, a wall at 100%, the reset, a quiet start."""
    lines, pct = [], start
    for m in range(0, minutes, every // 60 or 1):
        t = T0 + m * 60
        if m == reset_min:
            pct = 0.0
        resets = T0 + reset_min * 60 if m < reset_min else T0 + (reset_min + 300) * 60
        lines.append(samples.record(t, source, {"five_hour": (min(pct, 100.0), resets), "seven_day": (30.0, T0 + 5 * 86400)}))
        pct += rate
    path.write_text("".join(json.dumps(l) + "\n" for l in lines))
    return path


def test_replay_counts_wall_spill_flips_and_cost(tmp_path):
    trace = simulate.load_trace(str(burn_trace(tmp_path / "t.jsonl")))
    # Threshold 100 without a forecast, deciding every minute: spilled the minute it read 100%.
    report = simulate.replay(trace, Policy(threshold=100.0, resume=50.0, lead_seconds=0), 60, 12.0)
    assert report["minutes_at_wall_on_plan"] == 0.0
    # Deciding every 7 minutes: the wall (minute 120) is seen only at minute 126.
    late = simulate.replay(trace, Policy(threshold=100.0, resume=50.0, lead_seconds=0), 420, 12.0)
    assert late["minutes_at_wall_on_plan"] == 6.0
    # Threshold 95 with a 5-minute lead: spills at ~92.5%, never at the wall, back after the reset.
    report = simulate.replay(trace, Policy(threshold=95.0, resume=50.0, lead_seconds=300), 60, 12.0)
    assert report["minutes_at_wall_on_plan"] == 0.0
    assert report["flips"] == 2
    spill, back = report["events"]
    assert (spill["to"], back["to"]) == ("openrouter", "plan")
    assert spill["five_hour"] < 95.0 and "(forecast)" in spill["reason"]
    assert back["at"] == T0 + 180 * 60
    minutes = (back["at"] - spill["at"]) / 60
    assert report["minutes_spilled"] == pytest.approx(minutes)
    assert report["spill_cost_usd"] == pytest.approx(round(minutes / 60 * 12.0, 2))


def test_a_lower_threshold_spills_longer(tmp_path):
    trace = simulate.load_trace(str(burn_trace(tmp_path / "t.jsonl")))
    high = simulate.replay(trace, Policy(threshold=95.0, resume=50.0, lead_seconds=0), 60, 10.0)
    low = simulate.replay(trace, Policy(threshold=80.0, resume=50.0, lead_seconds=0), 60, 10.0)
    assert low["minutes_spilled"] > high["minutes_spilled"] and low["spill_cost_usd"] > high["spill_cost_usd"]
    assert high["minutes_at_wall_on_plan"] == low["minutes_at_wall_on_plan"] == 0.0


def test_sparse_readings_still_flip_before_the_wall_with_a_forecast(tmp_path):
    # Readings every 15 minutes only (OAuth polls, no statusline): 6% per reading.
    trace = simulate.load_trace(str(burn_trace(tmp_path / "t.jsonl", every=900, rate=6.0, source="oauth")))
    report = simulate.replay(trace, Policy(threshold=95.0, resume=50.0, lead_seconds=300), 60, 10.0)
    spill = report["events"][0]
    # Between readings the forecast extrapolates: 88% read at minute 120 is ~93% by minute 133.
    assert spill["to"] == "openrouter" and spill["five_hour"] == 88.0 and "(forecast)" in spill["reason"]
    assert T0 + 130 * 60 <= spill["at"] < T0 + 135 * 60
    assert report["minutes_at_wall_on_plan"] == 0.0
    # Without a lead time it spills when the projection crosses 95%: 94% read at 135, 95% by ~137.5.
    report = simulate.replay(trace, Policy(threshold=95.0, resume=50.0, lead_seconds=0), 60, 10.0)
    assert report["events"][0]["five_hour"] == 94.0 and report["events"][0]["at"] == T0 + 138 * 60


def test_cli_text_and_json(sandbox, tmp_path):
    path = burn_trace(tmp_path / "trace.jsonl")
    proc = sandbox.run("simulate", str(path), "--threshold", "95", "--lead", "5", "--cost-per-hour", "12")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "threshold 95%, resume 50%, lead 5 min" in out
    assert "on the plan at the wall  0 min" in out
    assert "flips                    2" in out
    assert "over-spill after reset   0 min" in out  # the oauth-confirmed return came on the reset
    assert "spill cost estimate" in out and "(at $12/h)" in out
    assert "plan → openrouter at five_hour" in out and "openrouter → plan" in out
    proc = sandbox.run("simulate", str(path), "--json", "--threshold", "0.9", "--resume", "40", "--step", "120")
    report = json.loads(proc.stdout)
    assert report["threshold"] == 90.0 and report["resume"] == 40.0 and report["step_seconds"] == 120.0
    assert report["lead_minutes"] == 5.0  # the default SPILLOVER_LEAD_MINUTES
    assert set(report) >= {"minutes_at_wall_on_plan", "minutes_spilled", "minutes_spilled_after_reset", "flips", "spill_cost_usd", "events"}


def test_cli_uses_the_users_config(sandbox, tmp_path):
    path = burn_trace(tmp_path / "trace.jsonl")
    sandbox.write_config(SPILLOVER_THRESHOLD="85", SPILLOVER_LEAD_MINUTES="0")
    report = json.loads(sandbox.run("simulate", str(path), "--json").stdout)
    assert (report["threshold"], report["lead_minutes"]) == (85.0, 0.0)
    assert report["events"][0]["five_hour"] == 85.0


def test_from_history_replays_what_spillover_recorded(sandbox):
    now = time.time()
    for i, pct in enumerate((60, 70, 80, 90, 97)):
        body = json.dumps({"session_id": "s", "rate_limits": {"five_hour": {"used_percentage": pct, "resets_at": int(now + 7200)}}})
        sandbox.run("statusline", input=body, check=True)
    report = json.loads(sandbox.run("simulate", "--from-history", "--json", "--step", "1").stdout)
    assert report["samples"] == 5 and report["trace"].endswith("samples.jsonl")


@pytest.mark.parametrize("args,message", [
    ((), "give a TRACE file"),
    (("missing.jsonl",), "no such trace file"),
    (("t.jsonl", "--from-history"), "not both"),
    (("t.jsonl", "--step", "0"), "--step must be"),
    (("t.jsonl", "--threshold", "40", "--resume", "60"), "must be under threshold"),
    (("t.jsonl", "--threshold", "140"), "between 0 and 100"),
    (("empty.jsonl",), "no samples in it"),
])
def test_cli_usage_errors(sandbox, args, message):
    burn_trace(sandbox.root / "t.jsonl", minutes=10)
    (sandbox.root / "empty.jsonl").write_text("not json\n{}\n")
    proc = sandbox.run("simulate", *args)
    assert proc.returncode in (1, 2) and message in proc.stderr, proc.stderr
    assert proc.stdout == ""


def test_replay_uses_the_real_decision(tmp_path, monkeypatch):
    calls = []
    real = policy.decide
    monkeypatch.setattr(policy, "decide", lambda *a: calls.append(a) or real(*a))
    trace = simulate.load_trace(str(burn_trace(tmp_path / "t.jsonl", minutes=30)))
    simulate.replay(trace, Policy(), 60, 1.0)
    assert len(calls) == 30
    prev, signals, pol, now = calls[-1]
    assert [t.name for t in signals.targets] == ["openrouter"] and signals.targets[0].healthy
    assert all(s.observed_at <= now for s in signals.history["five_hour"])  # never a sample from the future


@pytest.mark.parametrize("name,over", [("afternoon", 1.0), ("afternoon-no-oauth", 2.0)])
def test_over_spill_on_the_readme_sample_traces(sandbox, name, over):
    """The README's tuning section shows this command's real output."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    proc = sandbox.run("simulate", str(root / "tests" / "fixtures" / "simulate" / f"{name}.jsonl"), env={"TZ": "UTC"})
    assert proc.returncode == 0, proc.stderr
    assert f"over-spill after reset   {over:g} min" in proc.stdout
    assert proc.stdout.rstrip("\n") in (root / "README.md").read_text()
    # Over-spill is what a reset that nothing confirms would cost without the reset rule.
    trace = simulate.load_trace(str(root / "tests" / "fixtures" / "simulate" / f"{name}.jsonl"))
    report = simulate.replay(trace, Policy(), 60, 10.0)
    assert report["minutes_spilled_after_reset"] == over
    assert 0 < report["minutes_spilled_after_reset"] < report["minutes_spilled"]
