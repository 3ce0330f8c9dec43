"""`spillover history [--since 7d] [--json]` (issue 5): flips, time on each route, OpenRouter spend."""

import json
import time

import pytest

from tests import fakes
from tests.conftest import OR_KEY

POLL = {"SPILLOVER_POLL_MINUTES": "0"}


def run_at(sandbox, offset, *args):
    return sandbox.run(*args, env=POLL, at=offset, check=True)


def test_spill_recorded_by_real_ticks(wired):
    """Out at 96% with the key at $133.25, back 40 minutes later with the key at $140.50: $7.25 spent."""
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.run("tick", env=POLL, check=True)
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(usage=140.5))
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(10.0, resets_in=5 * 3600))  # after the reset
    run_at(wired, "+40m", "tick")
    assert wired.state()["route"] == "plan"

    data = json.loads(run_at(wired, "+41m", "history", "--json").stdout)
    assert [(f["from"], f["to"]) for f in data["flips"]] == [("plan", "openrouter"), ("openrouter", "plan")]
    assert data["flips"][0]["reason"] == "five_hour 96% ≥ 95%"
    assert data["flips"][1]["reason"].startswith("five_hour back to 10%")
    [spill] = data["spills"]
    assert spill["route"] == "openrouter" and not spill["running"]
    assert spill["spend"] == pytest.approx(7.25)
    assert abs(spill["seconds"] - 40 * 60) < 30
    assert abs(data["time_on_route"]["openrouter"] - 40 * 60) < 30
    assert data["openrouter_spend"] == pytest.approx(7.25) and data["openrouter_spend_complete"] is True

    text = run_at(wired, "+41m", "history").stdout
    assert "plan → openrouter: five_hour 96% ≥ 95%" in text
    assert "spent $7.25" in text and "OpenRouter spend during spills: $7.25" in text
    assert OR_KEY not in text


def test_running_spill_uses_the_current_key_usage(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.run("tick", env=POLL, check=True)
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(usage=150.0))
    wired.run("tick", env=POLL, check=True)
    data = json.loads(wired.run("history", "--json", check=True).stdout)
    [spill] = data["spills"]
    assert spill["running"] is True and spill["end"] is None
    assert spill["spend"] == pytest.approx(16.75)
    assert "now (running)" in wired.run("history").stdout


def write_history(sandbox, now, records, state=None):
    sandbox.state_dir.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(dict(r, at=now + r["at"])) for r in records]
    lines.insert(2, '{"at": 12, "rou')  # a line torn by a crash: skipped
    (sandbox.state_dir / "history.jsonl").write_text("\n".join(lines) + "\n")
    if state is not None:
        (sandbox.state_dir / "state.json").write_text(json.dumps(state))


def flip(at, frm, to, usage=None, reason="r"):
    return {"at": at, "from": frm, "route": to, "reason": reason, "hot_bucket": "five_hour", "openrouter_usage": usage}


def test_window_time_on_route_and_spend(sandbox):
    now = time.time()
    m = 60
    write_history(sandbox, now, [
        flip(-180 * m, "plan", "openrouter", 10.0),
        flip(-90 * m, "openrouter", "plan", 12.5, reason="five_hour back to 20%"),
        flip(-60 * m, "plan", "anthropic"),
        flip(-30 * m, "anthropic", "plan"),
        flip(-20 * m, "plan", "openrouter", 20.0, reason=f"leaky {OR_KEY}"),
    ], state={"route": "openrouter", "budget": {"key": {"usage": 21.0}}})
    data = json.loads(sandbox.run("history", "--since", "2h", "--json", check=True).stdout)
    assert [(f["from"], f["to"]) for f in data["flips"]] == [("openrouter", "plan"), ("plan", "anthropic"),
                                                             ("anthropic", "plan"), ("plan", "openrouter")]
    minutes = {route: round(seconds / 60) for route, seconds in data["time_on_route"].items()}
    assert minutes == {"openrouter": 50, "plan": 40, "anthropic": 30}
    spills = [(s["route"], s["spend"], s["running"]) for s in data["spills"]]
    assert spills == [("openrouter", 2.5, False), ("anthropic", None, False), ("openrouter", 1.0, True)]
    assert data["openrouter_spend"] == pytest.approx(3.5) and data["openrouter_spend_complete"] is True
    assert OR_KEY not in json.dumps(data)

    narrow = json.loads(sandbox.run("history", "--since", "25m", "--json", check=True).stdout)
    assert [f["to"] for f in narrow["flips"]] == ["openrouter"]
    assert [s["route"] for s in narrow["spills"]] == ["openrouter"]
    assert {r: round(s / 60) for r, s in narrow["time_on_route"].items()} == {"openrouter": 20, "plan": 5}


def test_missing_usage_reading_is_said(sandbox):
    now = time.time()
    write_history(sandbox, now, [flip(-600, "plan", "openrouter", None), flip(-300, "openrouter", "plan", 5.0), flip(-200, "plan", "plan")])
    data = json.loads(sandbox.run("history", "--json", check=True).stdout)
    assert data["spills"][0]["spend"] is None and data["openrouter_spend_complete"] is False
    assert "some spills have no usage reading" in sandbox.run("history", check=True).stdout


def test_no_history_yet(sandbox):
    proc = sandbox.run("history", check=True)
    assert "no flips recorded yet" in proc.stdout and "(none in this window)" in proc.stdout
    assert json.loads(sandbox.run("history", "--json", check=True).stdout)["flips"] == []


def test_bad_since_is_a_usage_error(sandbox):
    proc = sandbox.run("history", "--since", "last week")
    assert proc.returncode == 2 and "duration 'last week'" in proc.stderr


def test_history_chart_draws_a_model_wall_downshift(sandbox):
    """A downshift keeps the route on the plan; the timeline still shows it as its own segment."""
    now = time.time()
    write_history(sandbox, now, [
        flip(-4 * 3600, "plan", "plan", reason="seven_day_fable 100%"),
        flip(-3 * 3600, "plan", "plan", reason="seven_day_fable reset"),
    ])
    lines = (sandbox.state_dir / "history.jsonl").read_text().splitlines()
    marked = [json.loads(lines[0]) | {"downshift": "fable>opus"},
              json.loads(lines[1]) | {"downshift": None, "downshift_before": "fable>opus"}]
    (sandbox.state_dir / "history.jsonl").write_text("".join(json.dumps(r) + "\n" for r in marked))
    data = json.loads(sandbox.run("history", "--json", "--since", "1d", check=True).stdout)
    assert [f.get("downshift") for f in data["flips"]] == ["fable>opus", None]
    text = sandbox.run("history", "--chart", "--since", "1d", check=True).stdout
    strips = [line for line in text.splitlines() if "▄" * 3 in line or "d" * 3 in line]  # UTF-8 or ASCII mark
    assert len(strips) == 1 and "downshift" in text, text
