"""policy.forecast(): the burn-rate estimate, table-tested (pure: no I/O, no clock)."""

import pytest

from spillover import policy
from spillover.policy import Policy, Previous, Sample, Signals, TargetHealth

NOW = 1_800_000_000.0
RESET = NOW + 3 * 3600
POL = Policy(threshold=95.0, resume=50.0, lead_seconds=300.0, fresh_seconds=900.0)


def series(points, resets_at=RESET, source="statusline", bucket="five_hour"):
    """Samples from (seconds before NOW, percent) pairs."""
    return [Sample(bucket, pct, NOW - ago, source, resets_at) for ago, pct in points]


def run(points, pol=POL, now=NOW, **kw):
    history = series(points, **kw)
    newest = max(history, key=lambda s: s.observed_at)
    return policy.forecast("five_hour", newest, history, pol, now)


# (name, points as (seconds ago, percent), rate %/h (None: no forecast), minutes to the threshold ("never": not before the reset))
TABLE = [
    ("steady burn: 1%/min", [(600, 80), (480, 82), (360, 84), (240, 86), (120, 88), (0, 90)], 60.0, 5.0),
    ("steady slow burn: 95% only after the reset", [(1500, 60), (900, 61), (300, 62), (0, 62.5)], 6.0, "never"),
    ("flat", [(900, 70), (600, 70), (300, 70), (0, 70)], None, None),
    ("decreasing (a new window is being read)", [(600, 90), (300, 60), (0, 30)], None, None),
    ("too few points", [(0, 90)], None, None),
    ("points closer than the minimum span", [(50, 80), (0, 90)], None, None),
    ("noisy but rising", [(600, 80), (480, 83), (360, 82), (240, 86), (120, 87), (0, 90)], pytest.approx(54.77, abs=0.01), 5.478),
    ("older than the forecast window are ignored", [(3600, 10), (2400, 30), (600, 80), (0, 86)], 36.0, 15.0),
    ("already past the threshold", [(600, 90), (0, 96)], 36.0, 0.0),
]


@pytest.mark.parametrize("name,points,rate,minutes", TABLE, ids=[t[0] for t in TABLE])
def test_forecast_table(name, points, rate, minutes):
    fc = run(points)
    if rate is None:
        assert fc is None
        return
    assert fc is not None
    assert fc.rate_per_hour == (rate if not isinstance(rate, float) else pytest.approx(rate, abs=0.01))
    if minutes == "never":
        assert fc.threshold_at is None
        return
    assert (fc.threshold_at - NOW) / 60 == pytest.approx(minutes, abs=0.01)


def test_steady_burn_projects_the_wall_too():
    fc = run([(600, 80), (0, 90)])
    assert fc.rate_per_hour == pytest.approx(60.0)
    assert fc.projected == pytest.approx(90.0)
    assert (fc.wall_at - NOW) / 60 == pytest.approx(10.0)
    assert fc.to_json()["rate_per_hour"] == 60.0


def test_projection_moves_with_the_clock():
    fc = run([(600, 80), (0, 90)], now=NOW + 120)  # two minutes after the newest reading
    assert fc.projected == pytest.approx(92.0)
    assert (fc.threshold_at - (NOW + 120)) / 60 == pytest.approx(3.0)


def test_window_change_drops_readings_of_the_previous_window():
    old = series([(900, 97), (600, 99)], resets_at=NOW - 300)  # the window that just reset
    new = series([(240, 2), (120, 4), (0, 6)], resets_at=NOW + 5 * 3600 - 300)
    fc = policy.forecast("five_hour", new[-1], old + new, POL, NOW)
    assert fc.rate_per_hour == pytest.approx(60.0)  # from the new window only, not a fall from 99 to 6
    jitter = series([(240, 2), (120, 4)], resets_at=NOW + 5 * 3600 - 300 + 90)  # resets_at jitter within the slack
    fc = policy.forecast("five_hour", new[-1], jitter + new[-1:], POL, NOW)
    assert fc is not None and fc.rate_per_hour == pytest.approx(60.0)


def test_readings_with_and_without_reset_do_not_mix():
    mixed = series([(600, 10)], resets_at=None) + series([(300, 80), (0, 85)])
    fc = policy.forecast("five_hour", mixed[-1], mixed, POL, NOW)
    assert fc.rate_per_hour == pytest.approx(60.0)


def test_stale_newest_sample_gives_no_forecast():
    assert run([(2000, 80), (1000, 90)]) is None  # newest is 1000 s old, fresh_seconds is 900


def test_wall_samples_and_future_samples_are_not_fitted():
    history = series([(600, 80), (0, 90)]) + [Sample("five_hour", 100.0, NOW - 300, "transcript", RESET, wall=True),
                                               Sample("five_hour", 10.0, NOW + 60, "statusline", RESET)]
    fc = policy.forecast("five_hour", history[1], history, POL, NOW)
    assert fc.rate_per_hour == pytest.approx(60.0)
    wall = Sample("five_hour", 100.0, NOW, "transcript", RESET, wall=True)
    assert policy.forecast("five_hour", wall, history, POL, NOW) is None


def test_threshold_after_the_reset_is_no_threat():
    fc = run([(600, 80), (0, 81)], resets_at=NOW + 1800)  # 6%/h: 95% would come after the reset
    assert fc is not None and fc.threshold_at is None and fc.wall_at is None
    assert run([(600, 80), (0, 81)], resets_at=NOW - 1) is None  # reset already passed


def test_projection_is_capped_at_100():
    fc = run([(600, 50), (0, 99)], now=NOW + 600)
    assert fc.projected == 100.0 and fc.threshold_at == NOW + 600 and fc.wall_at == NOW + 600


# --- the lead time, through decide() --------------------------------------------------------------

TARGETS = (TargetHealth("openrouter", True, "ok"),)


def decide(points, lead_minutes, now=NOW):
    history = series(points)
    pol = Policy(threshold=95.0, resume=50.0, lead_seconds=lead_minutes * 60, fresh_seconds=900.0)
    signals = Signals(buckets=policy.merge(history), history={"five_hour": history}, targets=TARGETS)
    return policy.decide(Previous(), signals, pol, now)


@pytest.mark.parametrize("lead,route", [(6, "openrouter"), (5, "openrouter"), (4.99, "plan"), (0, "plan")])
def test_lead_time_edge(lead, route):
    # 1%/min, at 90% now: the threshold (95%) is exactly 5 minutes away.
    decision = decide([(600, 80), (300, 85), (0, 90)], lead)
    assert decision.route == route
    if route == "openrouter":
        assert "(forecast)" in decision.reason and "in ~5 min" in decision.reason
        assert decision.details["forecasts"]["five_hour"]["threshold_at"] == NOW + 300


def test_forecast_does_not_spill_a_flat_high_bucket():
    assert decide([(600, 90), (300, 90), (0, 90)], 5).route == "plan"


def test_forecast_without_a_healthy_target_blocks_with_the_reason():
    history = series([(600, 80), (0, 92)])
    signals = Signals(buckets=policy.merge(history), history={"five_hour": history},
                      targets=(TargetHealth("openrouter", False, "key remaining $0.10 < $1.00"),))
    decision = policy.decide(Previous(), signals, POL, NOW)
    assert decision.route == "blocked" and "forecast" in decision.reason and "$0.10" in decision.reason
