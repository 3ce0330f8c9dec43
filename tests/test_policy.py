"""Table tests of the pure decision: no I/O, no clock."""

import pytest

from spillover.policy import (
    Pin,
    Policy,
    Previous,
    Sample,
    Signals,
    TargetHealth,
    decide,
    merge,
)
from spillover.sources.oauth import backoff_seconds, oauth_due

NOW = 1_800_000_000.0
H = 3600.0
OR_OK = TargetHealth("openrouter", True, "key remaining $24.50", 24.5)
OR_LOW = TargetHealth("openrouter", False, "key remaining $0.50 < floor $1.00", 0.5)
ANT_OK = TargetHealth("anthropic", True, "API key sk-ant-…xyz")
ANT_OFF = TargetHealth("anthropic", False, "SPILLOVER_ANTHROPIC_API_KEY is not set")
POLICY = Policy()


def s(bucket="five_hour", pct=42.0, age=60.0, resets_in=2 * H, source="oauth", wall=False):
    return Sample(bucket, pct, NOW - age, source, None if resets_in is None else NOW + resets_in, wall)


def sig(*samples, targets=(OR_OK,), pin=None, extra=None, history=None):
    return Signals(buckets=merge(samples), history=history or {}, targets=tuple(targets), extra_usage_on=extra, pin=pin)


PLAN = Previous("plan")
SPILLED = Previous("openrouter", NOW - H, "five_hour", "five_hour 96% ≥ 95%")

CASES = [
    # (id, previous, signals, policy, expected route, expected status, reason fragment)
    ("cool plan stays", PLAN, sig(s(pct=42)), POLICY, "plan", "plan", "42%"),
    ("at threshold spills", PLAN, sig(s(pct=95)), POLICY, "openrouter", "spilled", "five_hour 95% ≥ 95%"),
    ("over threshold spills", PLAN, sig(s(pct=96)), POLICY, "openrouter", "spilled", "96% ≥ 95%"),
    ("just under threshold stays", PLAN, sig(s(pct=94.9)), POLICY, "plan", "plan", "94.9%"),
    ("guard fails -> blocked", PLAN, sig(s(pct=96), targets=(OR_LOW,)), POLICY, "blocked", "blocked", "key remaining $0.50"),
    ("chain: second target", PLAN, sig(s(pct=96), targets=(OR_LOW, ANT_OK)), POLICY, "anthropic", "spilled", "96%"),
    ("chain: none healthy names each", PLAN, sig(s(pct=96), targets=(OR_LOW, ANT_OFF)), POLICY, "blocked", "blocked", "anthropic: SPILLOVER_ANTHROPIC_API_KEY"),
    ("no targets -> blocked", PLAN, sig(s(pct=96), targets=()), POLICY, "blocked", "blocked", "no spill target configured"),
    ("stale high reading never flips", PLAN, sig(s(pct=99, age=20 * 60)), POLICY, "plan", "plan", "stale"),
    ("missing five_hour never flips", PLAN, sig(s("seven_day", 20)), POLICY, "plan", "plan", "no reading"),
    ("nothing at all stays plan", PLAN, sig(), POLICY, "plan", "plan", "no reading"),
    ("reading from before reset is void", PLAN, sig(s(pct=99, age=10 * 60, resets_in=-60)), POLICY, "plan", "plan", "reset passed"),
    # hysteresis
    ("spilled stays in the band", SPILLED, sig(s(pct=70)), POLICY, "openrouter", "spilled", "staying until five_hour reads under 50%"),
    ("spilled resumes under resume", SPILLED, sig(s(pct=10, age=30, resets_in=5 * H)), POLICY, "plan", "plan", "five_hour back to 10%"),
    ("spilled at exactly resume stays", SPILLED, sig(s(pct=50)), POLICY, "openrouter", "spilled", "staying"),
    ("reset passed, no fresh data: stay", SPILLED, sig(s(pct=98, age=3 * H, resets_in=-60)), POLICY, "openrouter", "spilled", "reset passed"),
    ("reset passed and fresh low: back", SPILLED, sig(s(pct=3, age=30, resets_in=5 * H - 60)), POLICY, "plan", "plan", "back to 3%"),
    ("stale low reading does not resume", SPILLED, sig(s(pct=5, age=30 * 60)), POLICY, "openrouter", "spilled", "stale"),
    ("spilled target runs out -> next", SPILLED, sig(s(pct=97), targets=(OR_LOW, ANT_OK)), POLICY, "anthropic", "spilled", "97%"),
    ("spilled, all run out -> blocked", SPILLED, sig(s(pct=97), targets=(OR_LOW, ANT_OFF)), POLICY, "blocked", "blocked", "no healthy target"),
    ("spilled, chain head recovers", Previous("anthropic", NOW - H, "five_hour"), sig(s(pct=97), targets=(OR_OK, ANT_OK)), POLICY, "openrouter", "spilled", "97%"),
    # transcript walls
    ("transcript wall spills", PLAN, sig(s("unknown", 100, age=2 * H, resets_in=H, source="transcript", wall=True)), POLICY, "openrouter", "spilled", "unknown 100%"),
    ("wall newer than oauth wins", PLAN, sig(s(pct=60, age=300), s(pct=100, age=10, source="transcript", wall=True)), POLICY, "openrouter", "spilled", "100%"),
    ("older wall loses to fresh reading", PLAN, sig(s(pct=100, age=600, source="transcript", wall=True), s(pct=5, age=10, resets_in=5 * H)), POLICY, "plan", "plan", "5%"),
    ("expired wall is void", PLAN, sig(s("unknown", 100, age=6 * H, resets_in=-H, source="transcript", wall=True)), POLICY, "plan", "plan", "no reading"),
    # weekly walls
    ("weekly notify -> blocked with pin hint", PLAN, sig(s(pct=30), s("seven_day", 100, resets_in=3 * 86400)), POLICY, "blocked", "blocked", "spillover pin openrouter --until-reset"),
    ("weekly spill -> flips", PLAN, sig(s(pct=30), s("seven_day", 100, resets_in=3 * 86400)), Policy(weekly="spill"), "openrouter", "spilled", "seven_day 100%"),
    ("weekly ignore -> plan", PLAN, sig(s(pct=30), s("seven_day", 100, resets_in=3 * 86400)), Policy(weekly="ignore"), "plan", "plan", "30%"),
    ("weekly opus wall notify", PLAN, sig(s(pct=30), s("seven_day_opus", 97, resets_in=86400)), Policy(model_wall="notify"), "blocked", "blocked", "seven_day_opus 97%"),
    ("opus wall downshifts on the plan", PLAN, sig(s(pct=30), s("seven_day_opus", 97, resets_in=86400)), POLICY, "plan", "plan", "downshifted opus>sonnet"),
    ("weekly under threshold is fine", PLAN, sig(s(pct=30), s("seven_day", 90)), POLICY, "plan", "plan", "30%"),
    # usage credits
    ("credits on + stay -> plan", PLAN, sig(s(pct=99), extra=True), Policy(extra_usage="stay"), "plan", "plan", "usage credits are on"),
    ("credits on + spill -> spills", PLAN, sig(s(pct=99), extra=True), POLICY, "openrouter", "spilled", "99%"),
    ("credits off + stay -> spills", PLAN, sig(s(pct=99), extra=False), Policy(extra_usage="stay"), "openrouter", "spilled", "99%"),
    # blocked -> ?
    ("blocked stays while unknown", Previous("blocked", NOW - H, "five_hour", "five_hour 96% ≥ 95%; no healthy target"), sig(s(pct=96, age=2 * H)), POLICY, "blocked", "blocked", "no fresh reading"),
    ("blocked clears on fresh low", Previous("blocked", NOW - H, "five_hour", "x"), sig(s(pct=20, resets_in=5 * H)), POLICY, "plan", "plan", "20%"),
    ("blocked unblocks when target heals", Previous("blocked", NOW - H, "five_hour", "x"), sig(s(pct=97)), POLICY, "openrouter", "spilled", "97%"),
    # pins
    ("pin to target overrides cool plan", PLAN, sig(s(pct=10), pin=Pin("openrouter", NOW + H)), POLICY, "openrouter", "spilled", "pinned to openrouter"),
    ("pin to plan overrides the wall", PLAN, sig(s(pct=99), pin=Pin("plan", NOW + H)), POLICY, "plan", "plan", "pinned to plan"),
    ("expired pin is ignored", PLAN, sig(s(pct=10), pin=Pin("openrouter", NOW - 1)), POLICY, "plan", "plan", "10%"),
    ("pin to failing target ignored", PLAN, sig(s(pct=10), targets=(OR_LOW,), pin=Pin("openrouter", NOW + H)), POLICY, "plan", "plan", "10%"),
    ("forced pin to failing target", PLAN, sig(s(pct=10), targets=(OR_LOW,), pin=Pin("openrouter", NOW + H, force=True)), POLICY, "openrouter", "spilled", "forced"),
    ("pin to target not in chain ignored", PLAN, sig(s(pct=10), pin=Pin("gateway", NOW + H)), POLICY, "plan", "plan", "10%"),
    ("pinned spill ends with its pin (warm)", Previous("openrouter", NOW - H, None, "pinned", pinned=True), sig(s(pct=62)), POLICY, "plan", "plan", "62%"),
    ("pinned spill ends with its pin (no data)", Previous("openrouter", NOW - H, None, "pinned", pinned=True), sig(), POLICY, "plan", "plan", "no reading"),
    ("pinned spill ends, still hot: spilled", Previous("openrouter", NOW - H, None, "pinned", pinned=True), sig(s(pct=97)), POLICY, "openrouter", "spilled", "97%"),
    # no source can confirm a reset while spilled (statusline and transcripts only)
    ("unconfirmable reset ends the spill", SPILLED, sig(s(pct=97, age=3 * H, resets_in=-180, source="statusline")), Policy(confirm_resets=False), "plan", "plan", "reset passed"),
    ("unconfirmable reset, within the grace: stay", SPILLED, sig(s(pct=97, age=3 * H, resets_in=-60, source="statusline")), Policy(confirm_resets=False), "openrouter", "spilled", "reset passed"),
    ("unconfirmable, before reset: stay", SPILLED, sig(s(pct=97, age=60, source="statusline")), Policy(confirm_resets=False), "openrouter", "spilled", "97%"),
]


@pytest.mark.parametrize("prev,signals,policy,route,status,fragment", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide_table(prev, signals, policy, route, status, fragment):
    decision = decide(prev, signals, policy, NOW)
    assert (decision.route, decision.status) == (route, status), decision.reason
    assert fragment in decision.reason


def test_pin_ignored_is_explained():
    decision = decide(PLAN, sig(s(pct=10), targets=(OR_LOW,), pin=Pin("openrouter", NOW + H)), POLICY, NOW)
    assert decision.details["pin_ignored"] == OR_LOW.reason


def test_weekly_walls_reported_even_when_spilled_for_five_hour():
    decision = decide(PLAN, sig(s(pct=99), s("seven_day", 100, resets_in=86400)), POLICY, NOW)
    assert decision.route == "openrouter"
    assert decision.details["weekly_walls"] == ["seven_day"]


def test_hot_bucket_recorded():
    decision = decide(PLAN, sig(s(pct=99)), POLICY, NOW)
    assert decision.hot_bucket == "five_hour"


def test_decide_is_pure():
    signals = sig(s(pct=99))
    assert decide(PLAN, signals, POLICY, NOW) == decide(PLAN, signals, POLICY, NOW)


def test_merge_never_lowers_a_bucket_within_its_window():
    high = s(pct=96, age=300, resets_in=2 * H)
    stale_rerender = s(pct=40, age=10, resets_in=2 * H + 30, source="statusline")
    assert merge([high, stale_rerender])["five_hour"] is high
    assert merge([stale_rerender, high])["five_hour"] is high
    rising = s(pct=97, age=10, resets_in=2 * H, source="statusline")
    assert merge([high, rising])["five_hour"] is rising
    next_window = s(pct=3, age=10, resets_in=7 * H)
    assert merge([high, next_window])["five_hour"] is next_window
    # so a spill is not undone by an old number shown again
    assert decide(SPILLED, sig(high, stale_rerender), POLICY, NOW).route == "openrouter"


def test_merge_newest_wins_and_wall_wins_a_tie():
    old, new = s(pct=10, age=100), s(pct=20, age=50, source="statusline")
    assert merge([new, old])["five_hour"] is new
    tie_wall = s(pct=100, age=50, source="transcript", wall=True)
    assert merge([new, tie_wall])["five_hour"] is tie_wall


@pytest.mark.parametrize(
    "step,kind,retry_after,expected",
    [
        (0, "rate_limited", None, 75),
        (1, "rate_limited", None, 180),
        (5, "rate_limited", None, 1800),
        (99, "rate_limited", None, 1800),
        (0, "rate_limited", 0, 300),  # Retry-After: 0 still gets the cushion
        (0, "rate_limited", 3600, 3900),
        (0, "error", None, 60),
        (9, "error", None, 600),
    ],
)
def test_backoff_ladder(step, kind, retry_after, expected):
    assert backoff_seconds(step, kind, retry_after) == expected


def due(**kw):
    args = dict(last_attempt_at=NOW - 11 * 60, backoff_until=None, five_hour=s(pct=60, age=11 * 60), policy=POLICY,
                poll_seconds=600, spilled=False, active=True)
    args.update(kw)
    return oauth_due(NOW, **args)[0]


@pytest.mark.parametrize(
    "kw,expected",
    [
        ({}, True),
        ({"last_attempt_at": None}, True),
        ({"last_attempt_at": NOW - 5 * 60}, False),
        ({"backoff_until": NOW + 60}, False),
        ({"last_attempt_at": None, "backoff_until": NOW + 60}, False),
        ({"five_hour": s(pct=60, age=30, source="statusline")}, False),  # a fresher free signal
        ({"five_hour": s(pct=88, age=6 * 60), "last_attempt_at": NOW - 6 * 60}, True),  # close to the wall: sooner
        ({"five_hour": s(pct=88, age=2 * 60), "last_attempt_at": NOW - 2 * 60}, False),  # …but not every tick
        ({"five_hour": s(pct=60, age=5 * 60), "last_attempt_at": NOW - 5 * 60}, False),  # near: every poll_seconds
        ({"five_hour": s(pct=97, age=6 * 60), "spilled": True, "last_attempt_at": NOW - 6 * 60}, False),  # spilled: no hurry
        ({"five_hour": s(pct=20, age=11 * 60), "active": False}, False),  # idle and low: rarely
        ({"five_hour": s(pct=20, age=31 * 60), "active": False, "last_attempt_at": NOW - 31 * 60}, True),
        ({"five_hour": s(pct=99, age=3 * H, resets_in=-60), "spilled": True, "last_attempt_at": NOW - 301}, True),
    ],
)
def test_oauth_due(kw, expected):
    assert due(**kw) is expected
