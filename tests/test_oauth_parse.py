"""Parsing the OAuth usage answer at the edge: shapes, units, times."""

import pytest

from spillover.errors import SourceError
from spillover.policy import Sample
from spillover.sources.oauth import parse_time, parse_usage
from tests import fakes

NOW = 1_800_000_000.0


def by_bucket(samples):
    return {s.bucket: (s.percent, s.resets_at) for s in samples}


def test_flat_shape():
    got = by_bucket(parse_usage(fakes.usage_body(42.0, now=NOW), NOW))
    assert got["five_hour"] == (42.0, pytest.approx(NOW + 3600))
    assert got["seven_day"][0] == 15.0 and got["seven_day_sonnet"][0] == 18.0
    assert "seven_day_opus" not in got  # null bucket: no reading


def test_limits_array_shape_with_scoped_weekly():
    body = fakes.usage_body(11.0, now=NOW, limits=True, seven_day=9.0, sonnet=5.0)
    got = by_bucket(parse_usage(body, NOW))
    assert got["five_hour"][0] == 11.0 and got["seven_day"][0] == 9.0 and got["seven_day_sonnet"][0] == 5.0


def test_fraction_is_recognised_against_an_earlier_reading_of_the_same_window():
    earlier = {"five_hour": Sample("five_hour", 94.0, NOW - 600, "oauth", NOW + 3600 - 30)}
    body = fakes.usage_body(0.96, now=NOW, seven_day=0.15, sonnet=0.18)
    assert by_bucket(parse_usage(body, NOW, previous=earlier))["five_hour"][0] == pytest.approx(96.0)


@pytest.mark.parametrize("previous", [None, {"five_hour": Sample("five_hour", 94.0, NOW - 9000, "oauth", NOW - 5400)}])
def test_low_percent_without_same_window_evidence_is_percent(previous):
    body = fakes.usage_body(0.5, now=NOW, seven_day=1.0, sonnet=0.2)  # the first minutes of a week
    got = by_bucket(parse_usage(body, NOW, previous=previous))
    assert got["five_hour"][0] == 0.5 and got["seven_day"][0] == 1.0  # never a false weekly wall


@pytest.mark.parametrize("body", [[], "x", {"five_hour": {"utilization": "lots", "resets_at": None}}, {"unrelated": 1}])
def test_lying_answers_are_errors(body):
    with pytest.raises(SourceError):
        parse_usage(body, NOW)


@pytest.mark.parametrize(
    "value,expected",
    [("2026-02-22T00:00:00.318160+00:00", 1771718400.31816), ("2026-02-22T00:00:00Z", 1771718400.0),
     (1767312000, 1767312000.0), ("1767312000", 1767312000.0), (1767312000123, 1767312000.123),
     (None, None), ("soon", None), (True, None), (10 ** 400, None), (-5, None)],
)
def test_parse_time(value, expected):
    assert parse_time(value) == (None if expected is None else pytest.approx(expected))


def fable_only_limits(now, fable=100.0, opus_flat=None):
    """A usage answer of today's migrated accounts: every window in limits[], flat weekly fields null."""
    return {
        "five_hour": None, "seven_day": None, "seven_day_sonnet": None,
        "seven_day_opus": opus_flat, "seven_day_omelette": {"utilization": 99.0, "resets_at": fakes.iso(now + 3600)},
        "seven_day_cowork": {"utilization": 97.0, "resets_at": None}, "seven_day_oauth_apps": None,
        "limits": [
            {"kind": "session", "group": "session", "percent": 12, "resets_at": fakes.iso(now + 3600), "scope": None,
             "severity": "normal", "is_active": True},
            {"kind": "weekly_all", "group": "weekly", "percent": 40, "resets_at": fakes.iso(now + 4 * 86400), "scope": None,
             "severity": "normal", "is_active": False},
            {"kind": "weekly_scoped", "group": "weekly", "percent": fable, "resets_at": fakes.iso(now + 2 * 86400),
             "severity": "critical", "scope": {"model": {"id": None, "display_name": "Fable"}, "surface": None}, "is_active": True},
            {"kind": "weekly_scoped", "group": "weekly", "percent": 3, "resets_at": fakes.iso(now + 2 * 86400),
             "severity": "normal", "scope": {"model": {"id": None, "display_name": "Nimbus 6 (beta)"}, "surface": None}},
            {"kind": "monthly_something_new", "percent": 50},
        ],
    }


def test_every_weekly_scoped_entry_is_a_bucket_named_after_its_model():
    got = by_bucket(parse_usage(fable_only_limits(NOW), NOW))
    assert set(got) == {"five_hour", "seven_day", "seven_day_fable", "seven_day_nimbus_6_beta"}  # codenames ignored
    assert got["seven_day_fable"] == (100.0, pytest.approx(NOW + 2 * 86400))
    from spillover.sources.oauth import severities

    assert severities(fable_only_limits(NOW))["seven_day_fable"] == "critical"


def test_flat_field_and_limits_entry_of_one_bucket_count_once_and_limits_win():
    body = fable_only_limits(NOW)
    body["seven_day"] = {"utilization": 10.0, "resets_at": fakes.iso(NOW + 86400)}  # the flat copy, older
    body["seven_day_opus"] = {"utilization": 70.0, "resets_at": fakes.iso(NOW + 86400)}  # only flat: kept
    samples = parse_usage(body, NOW)
    assert [s.bucket for s in samples].count("seven_day") == 1
    got = by_bucket(samples)
    assert got["seven_day"][0] == 40.0 and got["seven_day_opus"][0] == 70.0
    body["limits"][1]["percent"] = None  # a null limits entry: the flat field stands
    assert by_bucket(parse_usage(body, NOW))["seven_day"][0] == 10.0


@pytest.mark.parametrize("name, bucket", [("Fable", "seven_day_fable"), ("Opus", "seven_day_opus"),
                                          ("Sonnet 5.5", "seven_day_sonnet_5_5"), ("  ", None), ("Ünïcode!", "seven_day_n_code")])
def test_model_bucket_names(name, bucket):
    from spillover.sources.oauth import model_bucket

    assert model_bucket(name) == bucket


def test_trace_accepts_any_per_model_weekly_bucket_and_the_fable_claim_name():
    from spillover import samples

    line = {"t": NOW, "source": "oauth", "seven_day_fable": {"percent": 99, "resets_at": NOW + 60},
            "seven_day_overage_included": {"percent": 98, "resets_at": None},
            "seven_day_zephyr_7": {"percent": 5, "resets_at": None}, "seven_day_../x": {"percent": 5}, "bogus": {"percent": 1}}
    got = sorted((s.bucket, s.percent) for s in samples.to_samples(line))
    assert got == [("seven_day_fable", 98.0), ("seven_day_fable", 99.0), ("seven_day_zephyr_7", 5.0)]
