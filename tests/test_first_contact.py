"""First contact (issue 13, items 4–8): keys checked at load, `tick --poll` inside a backoff,
`uninstall all` leaves nothing spilled, doctor names the real cause (with `check`'s exit code),
and the rough edges a new user meets in the first hour."""

import json
import os
import subprocess

import pytest

from spillover import config, redact
from spillover.errors import ConfigError
from tests import fakes
from tests.conftest import ANT_KEY, OR_KEY
from tests.test_doctor import lines_of
from tests.test_schedule import FakeBin


def load(tmp_path, text):
    path = tmp_path / "config.env"
    path.write_text(text)
    path.chmod(0o600)
    return config.load(environ={}, path=str(path))


def doctor(box, **env):
    proc = box.run("doctor", env=env)
    assert OR_KEY not in proc.stdout + proc.stderr
    return lines_of(proc)


def check(box):
    return box.run("check", "-q").returncode


# --- 4. keys checked at load ------------------------------------------------------------------


@pytest.mark.parametrize("value,cause", [
    ("sk-or-v1-…", "this is the README's placeholder, not a key: replace the placeholder"),
    ("sk-or-v1-...", "replace the placeholder"),
    ("<your key>", "replace the placeholder"),
    ("sk-or-v1-0123456789 abcdef0123456789", "contains a space at character 20"),
    ("sk-or-v1-0123456789\u200babcdef0123456789", "contains a zero-width space at character 20"),
    ("sk-or-v1-0123456789éabcdef0123456789", "contains the non-ASCII character U+00E9 at character 20"),
    ("sk-or-v1-0123", "too short to be a key (13 characters): paste the whole key"),
])
def test_bad_keys_are_refused_at_load(tmp_path, value, cause):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, f"OPENROUTER_API_KEY='{value}'\n")
    assert cause in str(err.value)
    assert "0123456789abcdef" not in str(err.value)


def test_crossed_keys_are_a_warning_naming_both(tmp_path):
    cfg = load(tmp_path, f"OPENROUTER_API_KEY='{ANT_KEY}'\nSPILLOVER_ANTHROPIC_API_KEY='{OR_KEY}'\n")
    assert any(w.startswith("OPENROUTER_API_KEY holds an Anthropic key") and "SPILLOVER_ANTHROPIC_API_KEY" in w for w in cfg.warnings)
    assert any(w.startswith("SPILLOVER_ANTHROPIC_API_KEY holds an OpenRouter key") and "OPENROUTER_API_KEY" in w for w in cfg.warnings)


def test_mask_keeps_the_last_four_characters():
    assert redact.mask(OR_KEY) == "sk-or-v1-…c890"
    assert redact.mask(OR_KEY[:-4] + "d890") == "sk-or-v1-…d890"  # two keys told apart
    assert redact.mask(ANT_KEY) == "sk-ant-api03-…-xyz"
    assert redact.mask("sk-or-v1-short") == "sk-or-v1-…"  # too short to show a tail


def test_readme_placeholder_doctor_names_line_and_check_exits_1(sandbox):
    sandbox.config_file.parent.mkdir(parents=True)
    sandbox.config_file.write_text("SPILLOVER_THRESHOLD=90\nOPENROUTER_API_KEY='sk-or-v1-…'\n")
    sandbox.config_file.chmod(0o600)
    tick = sandbox.run("tick")
    assert tick.returncode == 1 and "replace the placeholder" in tick.stderr and "UnicodeEncodeError" not in tick.stderr
    got = doctor(sandbox)
    mark, text = got["config"][0]
    assert mark == "✖"
    assert text == (f"{sandbox.config_file}:2: OPENROUTER_API_KEY=sk-or-v1-…: this is the README's placeholder, not a key: "
                    f"replace the placeholder with your real key (no `…`, `...` or `<>`); fix: edit line 2 of {sandbox.config_file}")
    assert "/dev/null" not in "".join(t for entries in got.values() for _, t in entries)
    assert got["route"][0][0] == "✖" and "stops at a broken config" in got["route"][0][1]
    assert check(sandbox) == 1
    # the fix, applied, works: a real key, one tick, and check no longer says error
    sandbox.config_file.write_text(f"OPENROUTER_API_KEY='{OR_KEY}'\nSPILLOVER_SOURCES=transcripts\n")
    assert sandbox.run("tick").returncode == 0
    assert check(sandbox) == 0
    assert doctor(sandbox)["config"][0][0] == "✔"


# --- 5. tick --poll inside a backoff --------------------------------------------------------


def test_tick_poll_never_calls_inside_a_backoff(wired):
    wired.usage.set("/api/oauth/usage", fakes.Reply(429, fakes.error_body(429, "rate limited"), headers={"Retry-After": "0"}))
    first = wired.run("tick", "--poll")
    assert first.returncode == 0
    assert len(wired.usage.hits("/api/oauth/usage")) == 1
    for _ in range(3):
        again = wired.run("tick", "--poll")
        assert again.returncode == 0
        assert "the usage endpoint was not called: backing off after" in again.stderr
        assert "the next call is allowed at " in again.stderr
    assert len(wired.usage.hits("/api/oauth/usage")) == 1


# --- 6. uninstall all leaves nothing spilled ------------------------------------------------


def _tree(root):
    found = set()
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            found.add(os.path.join(base, name))
    return found


def _empty(path):
    if os.path.isdir(path):
        return not os.listdir(path)
    text = open(path, encoding="utf-8").read()
    return not text.strip() or text.strip() == "{}"


def test_uninstall_all_while_spilled_leaves_nothing_spilled(wired):
    fake = FakeBin(wired.root, systemd=True)
    env = dict(fake.env(wired), SHELL="/bin/bash")
    before = _tree(wired.home)
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(99.0))
    assert wired.run("install", "all", env=env).returncode == 0
    assert wired.run("tick", "--poll").returncode == 0
    assert check(wired) == 3  # spilled
    assert "ANTHROPIC_AUTH_TOKEN" in wired.route_env()
    # what install and the tick added outside the state dir (which stays, and says so)
    created = {p for p in _tree(wired.home) - before if not p.startswith(str(wired.state_dir) + os.sep)}

    proc = wired.run("uninstall", "all", env=env)
    assert proc.returncode == 0, proc.stderr
    # a shell that had the spilled route and sources route.env afterwards has no ANTHROPIC_* left
    script = (f". {wired.state_dir}/route.env; env | grep '^ANTHROPIC_' || true")
    spilled = {"ANTHROPIC_BASE_URL": "https://openrouter.ai/api", "ANTHROPIC_AUTH_TOKEN": OR_KEY, "ANTHROPIC_API_KEY": ""}
    shell = subprocess.run(["bash", "-c", script], env={"PATH": "/usr/bin:/bin", **spilled}, capture_output=True, text=True)
    assert shell.returncode == 0 and shell.stdout == ""
    assert OR_KEY not in wired.route_env()
    assert check(wired) == 0
    # no file or directory spillover created is left empty
    left = [p for p in created if os.path.exists(p) and _empty(p)]
    assert left == []
    assert not (wired.home / ".bashrc").exists()
    assert not (wired.claude_dir / "settings.json").exists()
    assert not (wired.home / ".config/systemd").exists()
    # the printed list matches what is left
    line = [text for text in proc.stdout.splitlines() if text.startswith("uninstall: left in place: ")]
    assert line == [f"uninstall: left in place: ~/.config/spillover/config.env (config file (your keys)); "
                    f"~/.local/state/spillover (state dir (route files, history, tick.log))"]
    assert "spillover uninstall all --purge" in proc.stdout
    remaining = {p for p in _tree(wired.home) if not p.startswith(str(wired.state_dir) + os.sep)} - before
    assert remaining == {str(wired.state_dir), str(wired.state_dir.parent), str(wired.home / ".local")}
    assert wired.config_file.exists()  # it was there before install: the user's keys

    purge = wired.run("uninstall", "all", "--purge", env=env)
    assert purge.returncode == 0, purge.stderr
    assert not wired.config_file.exists() and not wired.state_dir.exists()


# --- 7. doctor names the real cause -----------------------------------------------------------


def test_dotenv_parse_error_is_reported_with_the_line_not_logged_raw(sandbox):
    sandbox.config_file.parent.mkdir(parents=True)
    sandbox.config_file.write_text("SPILLOVER_SOURCES=transcripts\nOPENROUTER_API_KEY='unterminated\n")
    sandbox.config_file.chmod(0o600)
    tick = sandbox.run("tick")
    assert "python-dotenv could not parse" not in tick.stderr
    assert f"{sandbox.config_file}:2: this line cannot be parsed and is ignored: write it as NAME='value'" in tick.stderr
    got = doctor(sandbox)
    assert ("⚠", f"{sandbox.config_file}:2: this line cannot be parsed and is ignored: write it as NAME='value'") in got["config"]


def test_unreadable_config_says_chmod(sandbox, monkeypatch):
    from spillover import doctor as doctor_module

    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY)
    sandbox.config_file.chmod(0o000)
    if os.geteuid() == 0:  # root reads any file: the check asks os.access, as the user's own process would
        monkeypatch.setattr(doctor_module.os, "access", lambda path, mode: False)
    text, fix = doctor_module._config_cause(str(sandbox.config_file), "config file: cannot be read")
    assert text == f"{sandbox.config_file} cannot be read by you (mode 0000)"
    assert fix == f"chmod 600 {sandbox.config_file}"


def test_state_dir_open_to_others_is_named_with_owner_mode_and_fix(sandbox):
    sandbox.state_dir.mkdir(parents=True)
    sandbox.state_dir.chmod(0o777)
    mark, text = doctor(sandbox)["state"][0]
    assert mark == "✖"
    assert text.startswith(f"state dir {sandbox.state_dir} is not yours alone (owner root, mode 777)") or "owner" in text
    assert text.endswith(f"fix: chmod 700 '{sandbox.state_dir}' once you know nobody else put files in it")
    sandbox.state_dir.chmod(0o700)  # the fix, applied
    assert "state" not in doctor(sandbox)


def test_corrupt_state_json_is_named_and_the_next_tick_rebuilds_it(sandbox):
    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY, SPILLOVER_SOURCES="transcripts")
    assert sandbox.run("tick").returncode == 0
    (sandbox.state_dir / "state.json").write_text("{not json")
    got = doctor(sandbox)
    assert got["state"] == [("⚠", f"{sandbox.state_dir}/state.json is damaged; the next tick rebuilds it; "
                                  "fix: wait a minute, or run `spillover tick`")]
    assert check(sandbox) == 5
    assert sandbox.run("tick").returncode == 0
    assert sandbox.state()["route"] == "plan"
    assert check(sandbox) == 0
    assert "state" not in doctor(sandbox)


def test_blocked_route_is_a_cross_with_the_reason(wired):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.openrouter.set("/api/v1/key", json=fakes.key_body(remaining=0.4))
    assert wired.run("tick", "--poll").returncode == 0
    assert check(wired) == 4
    mark, text = doctor(wired)["route"][0]
    assert mark == "✖"
    assert text.startswith("blocked, decided ") and "key remaining $0.40 (monthly) < floor $1.00" in text
    assert text.endswith("fix: apply the fix on the target lines above (`spillover status` says why each target is skipped)")
