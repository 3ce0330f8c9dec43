"""Today's client and models (issue 11): per-model weekly buckets, the usage cache in
~/.claude.json, the model map from OpenRouter's catalog, a budget floor that pays one turn, and
doctor's client checks. Every server is a loopback fake (tests/fakes.py)."""

import json
import time

from tests import fakes
from tests.test_oauth_parse import fable_only_limits

POLL = {"SPILLOVER_POLL_MINUTES": "0", "SPILLOVER_SOURCES": "oauth"}


# --- item 2: per-model weekly buckets --------------------------------------------------------


def test_limits_only_answer_gives_per_model_buckets_in_status_json(wired):
    now = time.time()
    wired.usage.set("/api/oauth/usage", json=fable_only_limits(now))
    wired.run("tick", env=POLL, check=True)
    status = json.loads(wired.run("status", "--json", env=POLL, check=True).stdout)
    got = {b["bucket"]: b for b in status["buckets"]}
    assert set(got) == {"five_hour", "seven_day", "seven_day_fable", "seven_day_nimbus_6_beta"}
    assert "seven_day_opus" not in got and "seven_day_omelette" not in got and "seven_day_cowork" not in got
    assert (got["five_hour"]["percent"], got["seven_day"]["percent"], got["seven_day_fable"]["percent"]) == (12, 40, 100)
    assert got["seven_day_fable"]["severity"] == "critical" and got["seven_day_fable"]["source"] == "oauth"
    check = json.loads(wired.run("check", "--json", env=POLL).stdout)
    assert check["buckets"]["seven_day_fable"]["percent"] == 100
    text = wired.run("status", env=POLL, check=True).stdout
    assert "seven_day_fable" in text
    line = wired.run("statusline", input="{}", env=POLL).stdout
    assert "Fable wk 100%" in line
