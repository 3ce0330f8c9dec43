"""Read-only commands never crash on any state.json (issue 14): every field, and the whole file,
filled with arbitrary JSON. "Crash" is a traceback or main()'s last-resort "unexpected" line."""

import contextlib
import io
import json
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spillover import cli
from spillover.state import _TYPES

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
FIELDS = sorted(_TYPES) + ["version", "extra"]
# Fields whose inside the commands read: their usual keys, so values land where they are looked up.
INNER = {
    "buckets": st.dictionaries(st.sampled_from(["five_hour", "seven_day", "seven_day_opus", "x"]),
                               st.dictionaries(st.sampled_from(["percent", "resets_at", "observed_at", "source", "wall"]), JSON) | JSON, max_size=3),
    "pin": st.dictionaries(st.sampled_from(["route", "until", "force", "honoured"]), JSON),
    "details": st.dictionaries(st.sampled_from(["states", "forecasts", "targets", "weekly_walls", "pin", "pin_ignored"]), JSON),
    "sources": st.dictionaries(st.sampled_from(["oauth", "command", "statusline", "transcripts"]),
                               st.dictionaries(st.sampled_from(["ok", "error", "backoff_until", "last_attempt_at", "failures"]), JSON) | JSON),
    "budget": st.dictionaries(st.sampled_from(["key", "credits", "fetched_at", "error"]),
                              st.dictionaries(st.sampled_from(["limit", "limit_remaining", "usage", "label", "total_credits"]), JSON) | JSON),
}
STATE = st.fixed_dictionaries({}, optional={f: INNER.get(f, JSON) | JSON for f in FIELDS}) | JSON
COMMANDS = (["status"], ["status", "--json"], ["check"], ["check", "--json"], ["doctor"], ["history"],
            ["budget"], ["pin", "plan", "--for", "1h"], ["statusline"])


def run(argv, stdin=b""):
    out, err = io.StringIO(), io.StringIO()
    real_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(argv)
    finally:
        sys.stdin = real_stdin
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def box(sandbox, monkeypatch):
    monkeypatch.setenv("SPILLOVER_SOURCES", "statusline")  # no network, no subprocess: the state is what varies
    monkeypatch.setenv("SPILLOVER_TARGETS", "anthropic")
    sandbox.state_dir.mkdir(parents=True, mode=0o700)
    return sandbox


@pytest.mark.parametrize("argv", COMMANDS, ids=" ".join)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(state=STATE)
def test_read_only_commands_never_crash_on_any_state_json(box, argv, state):
    (box.state_dir / "state.json").write_text(json.dumps(state, allow_nan=True))
    (box.state_dir / "pin.json").unlink(missing_ok=True)
    payload = json.dumps({"rate_limits": {"five_hour": {"used_percentage": 50, "resets_at": 4102444000}}}).encode()
    code, out, err = run(argv, payload if argv == ["statusline"] else b"")
    assert "Traceback" not in err and "unexpected" not in err, (argv, err)
    if argv == ["statusline"]:
        assert code == 0 and out.startswith("spillover")
