"""A whole afternoon under libfaketime: a steep burn, the real cron tick, the real statusline.

Every simulated STEP the test runs `spillover statusline` (as Claude Code would on a render) and
then `spillover tick` (as cron would), both as real processes under `faketime` at that simulated
moment. The fake usage endpoint always tells the truth for that moment. The route must flip
before the plan reaches 100% (before the threshold, thanks to the forecast), come back after
the reset, and the usage endpoint must be called no more than 6 times in any simulated hour.

STEP is 2 simulated minutes, not cron's 1, to halve the run time (150 steps, 30-60 s: a tick
process costs ~0.2 s). The polling rules still land on their 10-minute marks.
"""

import json
import subprocess
import sys
import time
from datetime import datetime, timezone

from spillover.sources import oauth
from spillover.policy import Policy, Sample
from tests import fakes
from tests.test_statusline import payload

STEP = 2  # simulated minutes between ticks
HOURS = 5
BURN = 0.55  # percent of the 5-hour bucket per minute while working on the plan
START_PCT = 30.0
RESET_AT_MIN = 200  # the current window resets 200 minutes into the run
STATUSLINE_FROM_MIN = 60  # the user installs the statusline an hour in: before that only OAuth knows

def fake(epoch):
    return "@" + datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def run_at(sandbox, epoch, *args, input=None, env=None):
    env = dict(sandbox.env, TZ="UTC", **(env or {}))
    return subprocess.run(["faketime", "-f", fake(epoch), sys.executable, "-m", "spillover", *args], env=env,
                          cwd=sandbox.root, input=input, capture_output=True, text=True, timeout=60)


def test_flips_before_the_wall_and_polls_at_most_6_times_an_hour(wired):
    t0 = (int(time.time()) // 60 + 1) * 60
    reset_a = t0 + RESET_AT_MIN * 60
    wired.write_credentials(expires_in=t0 - time.time() + (HOURS + 2) * 3600)
    usage = START_PCT
    polls_at, route_at, routes = [], {}, []
    flip_to_spill = flip_back = None
    route = "plan"
    for minute in range(0, HOURS * 60 + 1, STEP):
        now = t0 + minute * 60
        window_reset = reset_a if now < reset_a else reset_a + 5 * 3600
        if now >= reset_a and usage > 50 and minute - STEP < RESET_AT_MIN:
            usage = 0.0  # the window reset
        wired.usage.set("/api/oauth/usage", json=fakes.usage_body(round(usage, 2), resets_in=window_reset - now, now=now))
        if minute >= STATUSLINE_FROM_MIN:
            # Claude Code renders its status line; rate_limits only while it runs on the plan.
            body = payload(round(usage, 2), resets_in=window_reset - now, now=now, rate_limits=route == "plan")
            proc = run_at(wired, now, "statusline", input=body)
            assert proc.returncode == 0 and proc.stdout.startswith("spillover"), proc.stdout + proc.stderr
        before = len(wired.usage.hits("/api/oauth/usage"))
        proc = run_at(wired, now, "tick")
        assert proc.returncode == 0, proc.stderr
        if len(wired.usage.hits("/api/oauth/usage")) > before:
            polls_at.append(minute)
        state = wired.state()
        assert abs(state["decided_at"] - now) < 30  # the tick ran on the fake clock
        if state["route"] != route:
            routes.append((minute, route, state["route"], round(usage, 1), state["reason"]))
            if state["route"] == "openrouter" and flip_to_spill is None:
                flip_to_spill = (minute, usage, state["reason"])
            if state["route"] == "plan" and flip_to_spill is not None and flip_back is None:
                flip_back = minute
        route = state["route"]
        route_at[minute] = route
        assert route != "blocked", state["reason"]
        if route == "plan":
            usage += BURN * STEP  # the user keeps working on the plan
            assert usage < 100, f"minute {minute}: the plan hit the wall before spillover flipped ({routes})"
        if minute == 150:
            assert run_at(wired, now, "check", "-q").returncode == 3

    assert flip_to_spill is not None, routes
    minute, at_pct, reason = flip_to_spill
    assert at_pct < 95.0, f"flipped at {at_pct:.1f}%: the forecast should flip before the threshold ({reason})"
    assert "(forecast)" in reason
    assert flip_back is not None and RESET_AT_MIN <= flip_back <= RESET_AT_MIN + 12, routes
    assert len(routes) == 2, routes  # one spill, one return: no flapping
    # The usage endpoint: never more than 6 calls in any 60 simulated minutes.
    worst = max(sum(1 for p in polls_at if start <= p < start + 60) for start in range(0, HOURS * 60, STEP))
    assert worst <= 6, f"usage endpoint polled at minutes {polls_at}"
    assert polls_at[0] == 0 and len(polls_at) >= 4  # it did poll while it was the only signal
    end = t0 + HOURS * 60 * 60
    assert run_at(wired, end, "check", "-q").returncode == 0
    status = run_at(wired, end, "status").stdout
    assert "statusline" in status and "five_hour" in status
    history = [json.loads(l) for l in (wired.state_dir / "history.jsonl").read_text().splitlines()]
    assert [h["route"] for h in history][-2:] == ["openrouter", "plan"]


def test_a_spilled_plan_is_polled_at_the_poll_interval_until_its_reset():
    now = 1_800_000_000.0
    pol = Policy()
    hot = Sample("five_hour", 97.0, now - 20 * 60, "statusline", now + 3600)
    kw = dict(backoff_until=None, five_hour=hot, policy=pol, poll_seconds=600, spilled=True, active=True)
    assert oauth.oauth_due(now, last_attempt_at=now - 6 * 60, **kw) == (False, "spilled until the reset")
    assert oauth.oauth_due(now, last_attempt_at=now - 10 * 60, **kw) == (True, "spilled until the reset")
    # On the plan the same reading is close to the wall: polled sooner.
    assert oauth.oauth_due(now, last_attempt_at=now - 6 * 60, **dict(kw, spilled=False))[0] is True
