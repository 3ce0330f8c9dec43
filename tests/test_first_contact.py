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
from tests.conftest import ANT_KEY, OR_KEY, readable_pythonpath
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


def test_readme_placeholder_doctor_names_line_and_check_exits_1(wired):
    sandbox, good = wired, wired.config_file.read_text()
    sandbox.config_file.write_text("SPILLOVER_THRESHOLD=90\nOPENROUTER_API_KEY='sk-or-v1-…'\n")
    tick = sandbox.run("tick")
    assert tick.returncode == 1 and "replace the placeholder" in tick.stderr and "UnicodeEncodeError" not in tick.stderr
    again = sandbox.run("tick")  # as the scheduler runs it, every minute: the same error is not logged again
    assert again.returncode == 1 and again.stderr == ""
    got = doctor(sandbox)
    mark, text = got["config"][0]
    assert mark == "✖"
    assert text == (f"{sandbox.config_file}:2: OPENROUTER_API_KEY=sk-or-v1-…: this is the README's placeholder, not a key: "
                    f"replace the placeholder with your real key (no `…`, `...` or `<>`); fix: edit line 2 of {sandbox.config_file}")
    assert "/dev/null" not in "".join(t for entries in got.values() for _, t in entries)
    assert got["route"][0][0] == "✖" and "stops at a broken config" in got["route"][0][1]
    assert check(sandbox) == 1
    # the fix, applied, works: a real key, one tick, and check no longer says error
    sandbox.config_file.write_text(good)
    assert sandbox.run("tick").returncode == 0
    assert check(sandbox) == 0
    assert doctor(sandbox)["config"][0][0] == "✔"


# --- 5. tick --poll inside a backoff --------------------------------------------------------


def test_tick_poll_never_calls_inside_a_backoff(wired):
    wired.usage.set("/api/oauth/usage", fakes.Reply(429, fakes.error_body(429, "rate limited"), headers={"Retry-After": "0"}))
    first = wired.run("tick", "--poll")
    assert first.returncode == 0 and "not called" not in first.stderr  # it was called (and answered 429)
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


def _as_user_who_cannot_read(argv, home, env):
    """Run spillover with `argv` as someone a mode-0000 file stops: this user, or `nobody` when
    the tests run as root (root reads any file)."""
    if os.geteuid() != 0:
        return subprocess.run([os.sys.executable, "-m", "spillover", *argv], env=env, capture_output=True, text=True, timeout=60)
    import pwd

    nobody = pwd.getpwnam("nobody")
    for base, dirs, files in os.walk(home):
        for name in [base] + [os.path.join(base, n) for n in dirs + files]:
            os.chown(name, nobody.pw_uid, nobody.pw_gid)
    parent = home.parent
    while str(parent) != "/":  # the pytest tmp dirs are 0700: let nobody through to its HOME
        os.chmod(parent, os.stat(parent).st_mode | 0o111)
        parent = parent.parent
    env = dict(env, PYTHONPATH=readable_pythonpath())
    return subprocess.run(["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups", "--",
                           "/usr/bin/python3", "-m", "spillover", *argv], env=env, capture_output=True, text=True, timeout=60,
                          cwd="/")


def test_unreadable_config_says_chmod_and_the_fix_works(sandbox):
    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY, SPILLOVER_SOURCES="transcripts")
    sandbox.config_file.chmod(0o000)
    env = dict(sandbox.env, PATH="/usr/bin:/bin")
    proc = _as_user_who_cannot_read(["doctor"], sandbox.home, env)
    got = lines_of(proc)
    assert got["config"][0] == ("✖", f"{sandbox.config_file} cannot be read by you (mode 0000); fix: chmod 600 {sandbox.config_file}")
    os.chmod(sandbox.config_file, 0o600)  # the fix, applied (by root here, as the owner would)
    got = lines_of(_as_user_who_cannot_read(["doctor"], sandbox.home, env))
    assert got["config"][0][0] == "✔", got["config"]


def test_state_dir_open_to_others_is_named_with_owner_mode_and_fix(sandbox):
    sandbox.state_dir.mkdir(parents=True)
    sandbox.state_dir.chmod(0o777)
    mark, text = doctor(sandbox)["state"][0]
    assert mark == "✖"
    assert text.startswith(f"state dir {sandbox.state_dir} is not yours alone (owner root, mode 777)") or "owner" in text
    assert text.endswith(f"fix: chmod 700 '{sandbox.state_dir}' once you know nobody else put files in it")
    sandbox.state_dir.chmod(0o700)  # the fix, applied
    assert "state" not in doctor(sandbox)


def test_corrupt_state_json_is_named_and_the_next_tick_rebuilds_it(wired):
    sandbox = wired
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
    assert text.startswith("blocked, decided ") and "key remaining $0.40 (monthly) < floor $3.60 = one Fable turn" in text
    assert text.endswith("fix: apply the fix on the target lines above (`spillover status` says why each target is skipped)")


# --- 8. rough edges ---------------------------------------------------------------------------


def test_history_right_after_install_counts_from_the_first_tick(sandbox):
    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY, SPILLOVER_SOURCES="transcripts")
    assert sandbox.run("tick").returncode == 0
    data = json.loads(sandbox.run("history", "--json").stdout)
    assert data["since_first_tick"] is True
    assert data["time_on_route"]["plan"] < 120  # not a week on the plan
    text = sandbox.run("history").stdout
    assert text.startswith("since the first tick, ") and "you asked for 7d" in text


def test_status_after_a_good_poll_does_not_say_backing_off(wired):
    wired.usage.set("/api/oauth/usage", fakes.Reply(429, fakes.error_body(429, "rate limited"), headers={"Retry-After": "0"}))
    assert wired.run("tick", "--poll").returncode == 0
    state = json.loads((wired.state_dir / "state.json").read_text())
    state["sources"]["oauth"]["backoff_until"] = 1.0  # the backoff is over
    (wired.state_dir / "state.json").write_text(json.dumps(state))
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(42.0))
    assert wired.run("tick", "--poll").returncode == 0
    assert len(wired.usage.hits("/api/oauth/usage")) == 2
    out = wired.run("status").stdout
    assert "backing off" not in out and "oauth       ✔ ok, last read" in out
    # a record an older version left (a forced poll inside a backoff saved due="backing off")
    state = json.loads((wired.state_dir / "state.json").read_text())
    state["sources"]["oauth"]["due"] = "backing off"
    (wired.state_dir / "state.json").write_text(json.dumps(state))
    assert "backing off" not in wired.run("status").stdout


@pytest.mark.parametrize("name,hint", [("SPILOVER_THRESHOLD", "SPILLOVER_THRESHOLD"), ("spillover_threshold", "SPILLOVER_THRESHOLD"),
                                       ("SPILLOVR_RESUME", "SPILLOVER_RESUME")])
def test_typo_warnings_catch_one_l_and_lowercase(tmp_path, name, hint):
    cfg = load(tmp_path, f"{name}=90\n")
    assert cfg.threshold == 95
    assert any(f"unknown key {name} (did you mean {hint}?)" in w for w in cfg.warnings), cfg.warnings


def test_threshold_under_the_default_resume_says_resume_is_the_default(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, "SPILLOVER_THRESHOLD=40\n")
    assert str(err.value) == ("SPILLOVER_THRESHOLD=40 is not above SPILLOVER_RESUME=50 (the default): raise SPILLOVER_THRESHOLD, "
                              "or also set SPILLOVER_RESUME under 40 (e.g. SPILLOVER_RESUME=20)")
    assert load(tmp_path, "SPILLOVER_THRESHOLD=40\nSPILLOVER_RESUME=20\n").resume == 20  # the fix works


@pytest.mark.parametrize("args,message", [
    (("pin", "plan", "--for", "0m"), "duration '0m': must be longer than zero (to end a pin now: spillover unpin)"),
    (("history", "--since", "7"), "duration '7': add a unit: 7d, 7h, 7m"),
])
def test_durations_refused(sandbox, args, message):
    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY, SPILLOVER_SOURCES="transcripts")
    proc = sandbox.run(*args)
    assert proc.returncode == 2 and proc.stderr.strip() == f"spillover: error: {message}"


def test_json_errors_are_json(sandbox):
    proc = sandbox.run("history", "--since", "7", "--json")
    assert proc.returncode == 2
    assert json.loads(proc.stdout) == {"error": "duration '7': add a unit: 7d, 7h, 7m", "exit": 2}
    sandbox.write_config(SPILLOVER_THRESHOLD="40")
    proc = sandbox.run("budget", "--json")
    assert proc.returncode == 1 and proc.stderr == ""
    assert json.loads(proc.stdout)["error"].startswith("SPILLOVER_THRESHOLD=40 is not above SPILLOVER_RESUME=50 (the default)")


def test_tick_log_rotates_and_a_warning_is_logged_once(sandbox):
    sandbox.write_config(OPENROUTER_API_KEY=OR_KEY, SPILLOVER_SOURCES="transcripts")
    with open(sandbox.config_file, "a") as handle:
        handle.write("SPILOVER_THRESHOLD=90\n")
    sandbox.state_dir.mkdir(parents=True)
    log = sandbox.state_dir / "tick.log"
    log.write_text("x" * (512 * 1024 + 1))
    outputs = [sandbox.run("tick") for _ in range(3)]  # stderr is not a terminal, as under cron
    assert (sandbox.state_dir / "tick.log.1").stat().st_size == 512 * 1024 + 1
    assert not log.exists()  # the scheduler's next `>>` starts a fresh one
    warned = [p for p in outputs if "unknown key SPILOVER_THRESHOLD" in p.stderr]
    assert len(warned) == 1 and warned[0] is outputs[0]
    with open(sandbox.config_file, "a") as handle:
        handle.write("SPILLOVER_TRESHOLD=90\n")  # a new warning: said once more
    again = sandbox.run("tick")
    assert "unknown key SPILLOVER_TRESHOLD" in again.stderr and "unknown key SPILOVER_THRESHOLD" not in again.stderr
