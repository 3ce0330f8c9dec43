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
