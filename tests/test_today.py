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


# --- item 4: the model map from OpenRouter's catalog -----------------------------------------


def todays_catalog(extra=()):
    """/models of today's line-up, older models, and the variants that are never a default."""
    def model(mid, prompt, completion, ctx=1000000):
        return {"id": mid, "canonical_slug": mid, "name": mid, "created": 1790000000,
                "pricing": {"prompt": prompt, "completion": completion}, "context_length": ctx,
                "top_provider": {"context_length": ctx, "max_completion_tokens": 128000, "is_moderated": True}}

    rows = [
        ("anthropic/claude-fable-5.1", "0.00001", "0.00005"), ("anthropic/claude-fable-5", "0.00001", "0.00005"),
        ("anthropic/claude-opus-5.5", "0.000004", "0.00002"), ("anthropic/claude-opus-5.1", "0.000005", "0.000025"),
        ("anthropic/claude-opus-4.8", "0.000005", "0.000025"), ("anthropic/claude-sonnet-5.5", "0.000002", "0.00001"),
        ("anthropic/claude-sonnet-4.6", "0.000003", "0.000015"), ("anthropic/claude-haiku-5.5", "0.0000001", "0.0000005"),
        ("anthropic/claude-haiku-4.5", "0.000001", "0.000005"),
        # never a default: variants, aliases, dated ids
        ("anthropic/claude-opus-6.0:beta", "0.000004", "0.00002"), ("anthropic/claude-sonnet-9:free", "0", "0"),
        ("anthropic/claude-fable-7:thinking", "0.00001", "0.00005"), ("~anthropic/claude-opus-latest", "0.000004", "0.00002"),
        ("anthropic/claude-sonnet-4-20250514", "0.000003", "0.000015"), ("anthropic/claude-haiku-20261001", "0.000001", "0.000005"),
        ("openai/gpt-5", "0.00000125", "0.00001"),
    ] + list(extra)
    return {"data": [model(*row) for row in rows], "links": {"next": None}, "total_count": len(rows)}


SPILL = {"SPILLOVER_POLL_MINUTES": "0", "SPILLOVER_SOURCES": "oauth"}


def spill(wired, env=SPILL):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(97.0))
    wired.run("tick", env=env, check=True)
    return wired.state()


def route_env(wired):
    env = {}
    for line in wired.route_env().splitlines():
        if line.startswith("export "):
            name, _, value = line.removeprefix("export ").partition("=")
            env[name] = value.strip("'\"")
    return env


def test_openrouter_route_maps_all_four_tiers_to_the_newest_plain_slugs(wired):
    wired.openrouter.set("/api/v1/models", json=todays_catalog())
    assert spill(wired)["route"] == "openrouter"
    env = route_env(wired)
    assert env["ANTHROPIC_DEFAULT_FABLE_MODEL"] == "anthropic/claude-fable-5.1"
    assert env["ANTHROPIC_DEFAULT_OPUS_MODEL"] == "anthropic/claude-opus-5.5"
    assert env["ANTHROPIC_DEFAULT_SONNET_MODEL"] == "anthropic/claude-sonnet-5.5"
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "anthropic/claude-haiku-5.5"
    assert env["CLAUDE_CODE_SUBAGENT_MODEL"] == "anthropic/claude-sonnet-5.5"
    catalog_file = wired.state_dir / "catalog.json"
    assert catalog_file.stat().st_mode & 0o777 == 0o600
    assert len(wired.openrouter.hits("/api/v1/models")) == 1
    wired.run("tick", env=SPILL, check=True)
    assert len(wired.openrouter.hits("/api/v1/models")) == 1  # cached for a day
    status = json.loads(wired.run("status", "--json", env=SPILL, check=True).stdout)
    assert status["models"]["source"].startswith("catalog of ")
    # a configured slug always wins
    wired.run("tick", env=dict(SPILL, SPILLOVER_FABLE_MODEL="anthropic/claude-fable-5"), check=True)
    assert route_env(wired)["ANTHROPIC_DEFAULT_FABLE_MODEL"] == "anthropic/claude-fable-5"


def test_newest_compares_versions_as_numbers():
    from spillover.catalog import newest

    assert newest(["anthropic/claude-opus-5.9", "anthropic/claude-opus-5.10", "anthropic/claude-opus-4.80"]) == {
        "opus": "anthropic/claude-opus-5.10"}
    assert newest(["~anthropic/claude-opus-latest", "anthropic/claude-opus-5.5:beta", "anthropic/claude-opus-4-20250514"]) == {}


def test_catalog_down_gives_the_built_in_line_up_and_status_says_so(wired):
    wired.openrouter.set("/api/v1/models", status=500, json=fakes.error_body(500, "Internal Server Error"))
    assert spill(wired)["route"] == "openrouter"
    env = route_env(wired)
    assert (env["ANTHROPIC_DEFAULT_FABLE_MODEL"], env["ANTHROPIC_DEFAULT_OPUS_MODEL"], env["ANTHROPIC_DEFAULT_SONNET_MODEL"],
            env["ANTHROPIC_DEFAULT_HAIKU_MODEL"]) == ("anthropic/claude-fable-5.1", "anthropic/claude-opus-5.5",
                                                      "anthropic/claude-sonnet-5.5", "anthropic/claude-haiku-4.5")
    status = json.loads(wired.run("status", "--json", env=SPILL, check=True).stdout)
    assert status["models"]["source"].startswith("built-in defaults because OpenRouter /models: HTTP 500")
    text = wired.run("status", env=SPILL, check=True).stdout
    assert "built-in defaults because OpenRouter /models: HTTP 500" in text


def test_a_new_model_in_the_catalog_is_notified_once_and_kept_in_history(wired, tmp_path):
    from tests.test_notify import Recorder

    recorder = Recorder(tmp_path)
    env = recorder.env(wired, **SPILL)
    wired.openrouter.set("/api/v1/models", json=todays_catalog())
    spill(wired, env)
    catalog_file = wired.state_dir / "catalog.json"
    data = json.loads(catalog_file.read_text())
    data["fetched_at"] -= 2 * 86400  # a day later: read again
    catalog_file.write_text(json.dumps(data))
    wired.openrouter.set("/api/v1/models", json=todays_catalog([("anthropic/claude-opus-5.6", "0.000004", "0.00002")]))
    for _ in range(3):
        wired.run("tick", env=env, check=True)
    changed = [e for e in recorder.events() if e["event"] == "models_changed"]
    assert len(changed) == 1
    assert changed[0]["changes"] == ["opus: anthropic/claude-opus-5.5 → anthropic/claude-opus-5.6"]
    history = [json.loads(line) for line in (wired.state_dir / "history.jsonl").read_text().splitlines()]
    assert [h["changes"] for h in history if h.get("event") == "models_changed"] == [changed[0]["changes"]]
    assert route_env(wired)["ANTHROPIC_DEFAULT_OPUS_MODEL"] == "anthropic/claude-opus-5.6"


def test_models_check_flags_a_configured_fable_slug_with_the_closest_match(wired):
    wired.openrouter.set("/api/v1/models", json=todays_catalog())
    proc = wired.run("models", "--check", env={"SPILLOVER_FABLE_MODEL": "anthropic/claude-fable-5-1"})
    assert proc.returncode == 1
    assert "anthropic/claude-fable-5-1 is not in OpenRouter's catalog (did you mean anthropic/claude-fable-5.1?)" in proc.stderr


# --- item 5: a floor that pays one turn ------------------------------------------------------


def test_guard_refuses_a_key_that_cannot_pay_one_fable_turn():
    from spillover import catalog, config
    from spillover.targets import openrouter

    cfg = config.load({"OPENROUTER_API_KEY": "sk-or-v1-" + "a" * 64, "SPILLOVER_CONFIG": "/nonexistent"})
    key = openrouter.parse_key(fakes.key_body(remaining=1.20))
    models = catalog.model_map({}, {"fetched_at": 1790000000.0, "models": catalog.compact(
        [{"id": m["id"], "prompt": float(m["pricing"]["prompt"]), "completion": float(m["pricing"]["completion"]),
          "context_length": m["context_length"]} for m in todays_catalog()["data"]])}).to_json()
    health = openrouter.guard(cfg, key, None, models=models)
    assert not health.healthy
    assert health.reason == ("key remaining $1.20 (monthly) < floor $3.60 = one Fable turn (anthropic/claude-fable-5.1): "
                             "200k in × $10/M + 32k out × $50/M = $3.60")
    assert health.details["floor"] == 3.6
    # without the prices, SPILLOVER_MIN_BALANCE alone: $1.20 passes (the old blind spot)
    assert openrouter.guard(cfg, key, None).healthy
    # configurable token counts
    small = config.load({"OPENROUTER_API_KEY": "sk-or-v1-" + "a" * 64, "SPILLOVER_CONFIG": "/nonexistent",
                         "SPILLOVER_TURN_CONTEXT_TOKENS": "50000", "SPILLOVER_TURN_OUTPUT_TOKENS": "8000"})
    assert openrouter.guard(small, key, None, models=models).healthy  # 50k × $10/M + 8k × $50/M = $0.90


def test_a_key_with_1_20_left_is_not_spilled_to_and_status_and_budget_show_the_floor(wired):
    wired.openrouter.set("/api/v1/models", json=todays_catalog())
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=1.20))
    state = spill(wired)
    assert state["route"] == "blocked"
    status = json.loads(wired.run("status", "--json", env=SPILL, check=True).stdout)
    [target] = [t for t in status["targets"] if t["name"] == "openrouter"]
    assert not target["healthy"] and "< floor $3.60 = one Fable turn" in target["reason"]
    assert status["floor"] == 3.6
    assert "openrouter floor $3.60 = one Fable turn (anthropic/claude-fable-5.1): 200k in × $10/M + 32k out × $50/M" in \
        wired.run("status", env=SPILL).stdout
    out = wired.run("budget").stdout
    assert "floor            $3.60 = one Fable turn" in out and "spill guard      ✖" in out


# --- item 3: cachedUsageUtilization in ~/.claude.json ----------------------------------------

ACCOUNT = "5c0ffee0-1234-4abc-9def-0123456789ab"


def write_usage_cache(wired, fetched_at, body, **extra):
    path = wired.claude_dir / ".claude.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict({"numStartups": 3, "cachedUsageUtilization": {
        "fetchedAtMs": int(fetched_at * 1000), "accountUuid": ACCOUNT, "utilization": body}}, **extra)))


LOCAL = {"SPILLOVER_SOURCES": "statusline"}  # no oauth: only the local copy


def test_usage_cache_is_used_while_its_window_is_open_and_aged_by_its_fetch_time(wired):
    now = time.time()
    fetched = now - 1800
    write_usage_cache(wired, fetched, fable_only_limits(fetched))
    wired.run("tick", env=LOCAL, check=True)
    state = wired.state()
    buckets = state["buckets"]
    assert buckets["seven_day_fable"]["percent"] == 100 and buckets["seven_day_fable"]["source"] == "claude_json"
    assert buckets["five_hour"]["observed_at"] == int(fetched * 1000) / 1000  # as old as its fetch, never newer
    record = state["sources"]["claude_json"]
    assert record["account"] == ACCOUNT and record["last_reading_at"] == int(fetched * 1000) / 1000
    assert record["severity"]["seven_day_fable"] == "critical"
    assert wired.usage.hits("/api/oauth/usage") == []


def test_usage_cache_is_ignored_after_its_window_closed(wired):
    now = time.time()
    fetched = now - 3 * 3600  # its five-hour window ended an hour ago (resets_at = fetched + 3600)
    write_usage_cache(wired, fetched, fable_only_limits(fetched))
    wired.run("tick", env=LOCAL, check=True)
    buckets = wired.state()["buckets"]
    assert "five_hour" not in buckets  # a reading of a window that has closed says nothing now
    assert buckets["seven_day_fable"]["observed_at"] == int(fetched * 1000) / 1000  # the weekly one is still open


def test_usage_cache_fetched_in_the_future_is_clamped_to_now():
    from spillover.sources.claude_json import usage_cache

    now = 1_800_000_000.0
    data = {"cachedUsageUtilization": {"fetchedAtMs": (now + 86400) * 1000, "accountUuid": "x" * 200,
                                        "utilization": fable_only_limits(now)}}
    samples, fetched_at, account, _ = usage_cache(data, now)
    assert fetched_at == now and {s.observed_at for s in samples} == {now}
    assert account is None  # not an account id: not recorded
    assert usage_cache({"cachedUsageUtilization": {"utilization": {}}}, now) == ([], None, None, {})


def test_usage_cache_cannot_confirm_a_reset_by_itself():
    from spillover.sources import claude_json

    assert claude_json.READER.can_confirm_reset is False


# --- item 6: doctor for today's client -------------------------------------------------------


def test_doctor_flags_an_old_client_and_warns_on_a_newer_one(wired):
    from tests.test_doctor import doctor, fake_claude

    proc, got = doctor(wired, **fake_claude(wired, "2.1.150"))
    mark, text = got["claude"][-1]
    assert mark == "✖" and "Claude Code 2.1.150" in text and "older than the oldest supported 2.1.197" in text
    assert "claude update" in proc.stdout and proc.returncode == 1
    _, got = doctor(wired, **fake_claude(wired, "2.1.400"))
    assert got["claude"][-1][0] == "⚠" and "newer than tested (newest tested 2.1.332)" in got["claude"][-1][1]
    _, got = doctor(wired, **fake_claude(wired, "2.1.332"))
    assert got["claude"][-1][0] == "✔"


def test_doctor_flags_an_anthropic_key_claude_code_rejected(wired):
    from tests.conftest import ANT_KEY
    from tests.test_doctor import doctor, fake_claude

    path = wired.claude_dir / ".claude.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"customApiKeyResponses": {"approved": [], "rejected": ["someotherkeysuffix12", ANT_KEY[-20:]]}}))
    env = dict(fake_claude(wired), SPILLOVER_TARGETS="openrouter,anthropic", SPILLOVER_ANTHROPIC_API_KEY=ANT_KEY)
    proc, got = doctor(wired, **env)
    mark, text = got["anthropic"][-1]
    assert mark == "✖" and "customApiKeyResponses.rejected" in text and "Not logged in" in text
    assert ANT_KEY not in proc.stdout and ANT_KEY[-20:] not in proc.stdout
    assert proc.returncode == 1
    path.write_text(json.dumps({"customApiKeyResponses": {"approved": [ANT_KEY[-20:]], "rejected": []}}))
    _, got = doctor(wired, **env)
    assert all("rejected" not in text for _, text in got.get("anthropic", []))


def test_readme_states_the_versions_doctor_checks():
    from pathlib import Path

    from spillover.sources import oauth

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"| oldest supported | {oauth.OLDEST_SUPPORTED_CLIENT} |" in readme
    assert f"| newest tested | {oauth.NEWEST_TESTED_CLIENT} |" in readme


def test_simulate_replays_a_trace_of_per_model_weekly_buckets(sandbox):
    trace = sandbox.root / "trace.jsonl"
    t0 = 1_800_000_000
    lines = [{"t": t0 + 60 * i, "source": "oauth", "five_hour": {"percent": 10 + i, "resets_at": t0 + 3600},
              "seven_day_fable": {"percent": 90 + i, "resets_at": t0 + 86400}} for i in range(10)]
    lines.append({"t": t0 + 700, "seven_day_fable": {"percent": 100, "resets_at": t0 + 86400}})  # alone on a line
    trace.write_text("".join(json.dumps(line) + "\n" for line in lines))
    from spillover import simulate

    loaded = simulate.load_trace(str(trace))
    assert {s.bucket for s in loaded} == {"five_hour", "seven_day_fable"} and len(loaded) == 21
    proc = sandbox.run("simulate", str(trace))
    assert proc.returncode == 0, proc.stderr
