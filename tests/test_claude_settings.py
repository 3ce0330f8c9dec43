"""The settings.json publisher: what it writes for each route, and how it writes (issue 12 item 1)."""

import json
import os
import subprocess
import sys
import time

import pytest

from spillover.publishers import claude_settings as cs
from tests.conftest import OR_KEY

BASE = "https://openrouter.ai/api"
HELPER = "/opt/spillover/bin/spillover credential --target openrouter"
PAIRS = [("SPILLOVER_ROUTE", "openrouter"), ("SPILLOVER_REASON", "five_hour at 96%"), ("SPILLOVER_PIN", None),
         ("ANTHROPIC_BASE_URL", BASE), ("ANTHROPIC_AUTH_TOKEN", OR_KEY), ("ANTHROPIC_API_KEY", ""),
         ("ANTHROPIC_DEFAULT_OPUS_MODEL", "anthropic/claude-opus-5.5"), ("ANTHROPIC_DEFAULT_SONNET_MODEL", "anthropic/claude-sonnet-5.5"),
         ("ANTHROPIC_DEFAULT_HAIKU_MODEL", "anthropic/claude-haiku-4.5"), ("CLAUDE_CODE_SUBAGENT_MODEL", "anthropic/claude-sonnet-5.5"),
         ("ANTHROPIC_DEFAULT_FABLE_MODEL", "anthropic/claude-fable-5.1")]
USER = {"permissions": {"allow": ["Bash(ls:*)"]}, "statusLine": {"type": "command", "command": "x"}, "model": "opus",
        "env": {"MY_VAR": "1", "ANTHROPIC_DEFAULT_OPUS_MODEL": "my/opus"}}


def spill(credential="helper"):
    return cs.managed_block("openrouter", PAIRS, HELPER, credential=credential)


def plan(phase=1):
    return cs.managed_block("plan", [], HELPER, phase=phase)


@pytest.fixture
def box(tmp_path):
    claude = tmp_path / "claude"
    claude.mkdir()
    path = claude / "settings.json"
    path.write_text(json.dumps(USER, indent=2) + "\n")
    path.chmod(0o644)
    state_dir = tmp_path / "state"
    return path, cs.private_state_path(str(state_dir), str(path))


def load(path):
    return json.loads(path.read_text())


def test_spill_block_has_every_managed_variable_and_no_secret():
    block = spill()
    assert block["apiKeyHelper"] == HELPER
    env = block["env"]
    assert set(env) == set(cs.MANAGED_ENV)
    assert env["ANTHROPIC_BASE_URL"] == BASE and env["SPILLOVER_ROUTE"] == "openrouter"
    assert env["ANTHROPIC_AUTH_TOKEN"] == "" and env["ANTHROPIC_API_KEY"] == ""
    assert env["ANTHROPIC_DEFAULT_FABLE_MODEL"] == "anthropic/claude-fable-5.1"
    assert OR_KEY not in json.dumps(block)
    with pytest.raises(ValueError):
        cs.managed_block("openrouter", PAIRS, "spillover credential --target openrouter")  # not absolute


def test_plan_blocks_empty_then_remove():
    one = plan(1)
    assert one["apiKeyHelper"] is None and one["keep_helper"]
    assert all(v == "" for k, v in one["env"].items() if k != "SPILLOVER_ROUTE") and one["env"]["SPILLOVER_ROUTE"] == "plan"
    two = plan(2)
    assert two["phase"] == 2 and all(v is None for v in two["env"].values())


def test_spill_keeps_every_other_key_the_mode_and_no_secret(box):
    path, state = box
    result = cs.apply(str(path), spill(), now=1000, state=state)
    assert result.status == "written" and result.changed
    data = load(path)
    for key in ("permissions", "statusLine", "model"):
        assert data[key] == USER[key]
    assert data["env"]["MY_VAR"] == "1"
    assert data["env"]["ANTHROPIC_DEFAULT_OPUS_MODEL"] == "anthropic/claude-opus-5.5"
    assert data["apiKeyHelper"] == HELPER
    assert path.stat().st_mode & 0o777 == 0o644
    for name in os.listdir(path.parent):  # nothing left beside it, and no key anywhere there
        assert OR_KEY not in (path.parent / name).read_text()
    assert sorted(os.listdir(path.parent)) == ["settings.json"]
    assert os.stat(state).st_mode & 0o777 == 0o600
    again = cs.apply(str(path), spill(), now=1001, state=state)
    assert again.status == "unchanged" and not again.changed


def test_plan_phases_restore_the_users_own_values(box):
    path, state = box
    cs.apply(str(path), spill(), now=1000, state=state)
    assert cs.plan_phase(state, 1001) == 1
    assert cs.apply(str(path), plan(1), now=1100, state=state).status == "written"
    data = load(path)
    # The helper stays until phase 2 (it refuses on the plan route): see managed_block.
    assert data["apiKeyHelper"] == HELPER and data["env"]["ANTHROPIC_BASE_URL"] == "" and data["env"]["SPILLOVER_ROUTE"] == "plan"
    assert data["env"]["ANTHROPIC_DEFAULT_OPUS_MODEL"] == ""
    assert cs.plan_phase(state, 1100 + 2) == 1
    assert cs.plan_phase(state, 1100 + 2, sessions_on_plan=True) == 2
    assert cs.plan_phase(state, 1100 + cs.SETTLE_SECONDS) == 2
    assert cs.apply(str(path), plan(2), now=1107, state=state).status == "written"
    assert load(path) == USER  # the user's own ANTHROPIC_DEFAULT_OPUS_MODEL is back, nothing of ours left
    assert cs.apply(str(path), plan(1), now=1200, state=state).status == "unchanged"
    assert load(path) == USER


def test_between_spills_the_file_is_not_touched(box):
    path, state = box
    before = path.stat().st_mtime_ns
    assert cs.apply(str(path), plan(1), now=1000, state=state).status == "unchanged"
    assert path.stat().st_mtime_ns == before and load(path) == USER


def test_env_created_by_spillover_goes_away(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text('{"theme": "dark"}\n')
    state = str(tmp_path / "state" / "live.json")
    cs.apply(str(path), spill(), now=1, state=state)
    cs.apply(str(path), plan(1), now=2, state=state)
    cs.apply(str(path), plan(2), now=9, state=state)
    assert load(path) == {"theme": "dark"}


def test_missing_file_is_created_private(tmp_path):
    path = tmp_path / "settings.json"
    state = str(tmp_path / "state" / "live.json")
    assert cs.apply(str(path), spill(), now=1, state=state).status == "written"
    assert path.stat().st_mode & 0o777 == 0o600


def test_symlinked_file_keeps_its_link(tmp_path):
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "settings.json"
    real.write_text(json.dumps(USER))
    real.chmod(0o640)
    claude = tmp_path / "claude"
    claude.mkdir()
    link = claude / "settings.json"
    link.symlink_to(real)
    state = str(tmp_path / "state" / "live.json")
    assert cs.apply(str(link), spill(), now=1, state=state).status == "written"
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert load(real)["apiKeyHelper"] == HELPER
    assert real.stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(dotfiles)) == ["settings.json"] and sorted(os.listdir(claude)) == ["settings.json"]
    assert OR_KEY not in real.read_text()


def test_the_file_as_it_is_is_repaired(box):
    path, state = box
    cs.apply(str(path), spill(), now=1, state=state)
    # An editor (or the client) writes back an older copy: without spillover's keys.
    path.write_text(json.dumps(dict(USER, theme="light")))
    result = cs.apply(str(path), spill(), now=2, state=state)
    assert result.status == "written"
    data = load(path)
    assert data["theme"] == "light" and data["env"]["SPILLOVER_ROUTE"] == "openrouter" and data["apiKeyHelper"] == HELPER


def test_a_foreign_manager_is_not_fought(box):
    path, state = box
    cs.apply(str(path), spill(), now=1, state=state)
    data = load(path)
    del data["env"]["SPILLOVER_ROUTE"]
    data["env"]["ANTHROPIC_BASE_URL"] = "http://127.0.0.1:3456"  # claude-code-router
    data["env"]["ANTHROPIC_AUTH_TOKEN"] = "ccr-token"
    path.write_text(json.dumps(data))
    text = path.read_text()
    for block in (spill(), plan(1)):
        result = cs.apply(str(path), block, now=2, state=state)
        assert result.status == "foreign" and "ANTHROPIC_BASE_URL" in result.reason and not result.changed
        assert path.read_text() == text
    assert "foreign" in cs.load_state(state)


def test_a_file_routed_elsewhere_from_the_start_is_foreign(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"env": {"ANTHROPIC_BASE_URL": "https://api.z.ai/api/anthropic", "ANTHROPIC_AUTH_TOKEN": "zz"}}))
    text = path.read_text()
    result = cs.apply(str(path), spill(), now=1, state=str(tmp_path / "s.json"))
    assert result.status == "foreign" and path.read_text() == text


def test_the_users_own_helper_is_left_alone(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"apiKeyHelper": "~/bin/get-key.sh"}))
    text = path.read_text()
    for block in (spill(), plan(1)):
        result = cs.apply(str(path), block, now=1, state=str(tmp_path / "s.json"))
        assert result.status == "user-helper" and "get-key.sh" in result.reason
    assert path.read_text() == text


def test_invalid_json_is_not_written(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{not json")
    result = cs.apply(str(path), spill(), now=1, state=str(tmp_path / "s.json"))
    assert result.status == "invalid" and path.read_text() == "{not json"


# --- SPILLOVER_LIVE_CREDENTIAL=env -------------------------------------------------------------


def test_env_mode_writes_the_token_only_into_a_private_file(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("{}")
    path.chmod(0o600)
    result = cs.apply(str(path), spill("env"), now=1, state=str(tmp_path / "s.json"))
    assert result.status == "written"
    data = load(path)
    assert data["env"]["ANTHROPIC_AUTH_TOKEN"] == OR_KEY and "apiKeyHelper" not in data
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize("case", ["group-readable", "symlink", "git"])
def test_env_mode_is_refused_with_the_reason(tmp_path, case):
    target = tmp_path / "claude" / "settings.json"
    target.parent.mkdir()
    target.write_text("{}")
    target.chmod(0o600)
    path, word = target, ""
    if case == "group-readable":
        target.chmod(0o640)
        word = "chmod 600"
    elif case == "symlink":
        real = tmp_path / "dotfiles" / "settings.json"
        real.parent.mkdir()
        real.write_text("{}")
        real.chmod(0o600)
        target.unlink()
        target.symlink_to(real)
        word = "symlink"
    else:
        (tmp_path / ".git").mkdir()
        word = "git work tree"
    before = os.path.realpath(path)
    text = open(before).read()
    result = cs.apply(str(path), spill("env"), now=1, state=str(tmp_path / "state" / "s.json"))
    assert result.status == "refused" and word in result.reason, result
    assert open(before).read() == text
    assert OR_KEY not in result.reason


# --- a concurrent writer -----------------------------------------------------------------------

WRITER = r"""
import json, os, random, sys, tempfile, time
path, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(path) as f:
        data = json.load(f)
    data["k%d" % i] = i
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path))
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)
    # A pause between writes, as every real writer has (the client writes on /model, /config and
    # permission answers): a writer that reads again within microseconds of its own rename can lose
    # its key to any writer without a lock it honours (the client takes none), spillover included.
    time.sleep(random.uniform(0.0005, 0.003))
"""


def test_a_concurrent_writer_loses_nothing(box):
    """The client rewrites settings.json (temp + rename) while spillover writes it: every key the
    other writer added survives spillover's writes."""
    path, state = box
    n = 400
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(n)])
    blocks = [spill(), plan(1)]
    writes = 0
    try:
        i = 0
        while writer.poll() is None:
            result = cs.apply(str(path), blocks[i % 2], now=time.time(), state=state)
            assert result.status in ("written", "unchanged", "busy"), result
            writes += result.changed
            i += 1
    finally:
        writer.wait(timeout=60)
    assert writer.returncode == 0
    assert writes > 5
    data = load(path)
    missing = [i for i in range(n) if f"k{i}" not in data]
    assert missing == [], f"spillover's writes lost {len(missing)} of the other writer's keys"
    for key in ("permissions", "statusLine", "model"):
        assert data[key] == USER[key]


def test_helper_command_is_recognised_as_spillovers():
    from spillover.credential import helper_target

    command = cs.helper_command(["/home/me/.local/bin/spillover"], "gateway", config="/home/me/.config/spillover/config.env",
                                state_dir="/home/me/.local/state/spillover")
    assert command.startswith("'/home/me/.local/bin/spillover' credential --target gateway --config ")
    assert helper_target(command) == "gateway"
    assert cs.managed_block("gateway", [], command)["apiKeyHelper"] == command


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_settings_file_that_is_not_a_regular_file_is_refused_not_read(box, kind):
    """A FIFO would hang the tick until its hard deadline; /dev/zero would fill memory."""
    path, state = box
    path.unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    started = time.monotonic()
    with pytest.raises(OSError, match="not a regular file"):
        cs.apply(str(path), spill(), now=1000, state=state)
    assert time.monotonic() - started < 5


FABLE = "ANTHROPIC_DEFAULT_FABLE_MODEL"
SHIFT = {FABLE: "claude-opus-5-5"}


def shifted(phase=1):
    """The plan route with a Fable downshift (targets.route_env on the plan with a downshift)."""
    return cs.managed_block("plan", [("SPILLOVER_ROUTE", "plan"), ("SPILLOVER_DOWNSHIFT", "fable>opus"), (FABLE, "claude-opus-5-5")],
                            HELPER, phase=phase)


def test_a_downshift_on_the_plan_reaches_running_sessions_and_ends_through_empty_values(box):
    """The walled tier's alias goes into settings.json (a running session resolves aliases per
    request); at its end the alias is first written "" (a removed key keeps its old value in a
    running process), then removed, whatever the sessions report."""
    path, state = box
    assert cs.plan_phase(state, 1000, shift=SHIFT) == 1
    # From a file with nothing of spillover's: only the alias goes in, at once (phase 2); a "" for
    # the base URL and the other aliases would override the user's own shell values for nothing.
    result = cs.apply(str(path), shifted(1), now=1000, state=state)
    assert (result.status, result.phase) == ("written", 2)
    data = load(path)
    assert data["env"] == {**USER["env"], FABLE: "claude-opus-5-5", "SPILLOVER_ROUTE": "plan"}  # the user's own opus is back
    assert {k: v for k, v in data.items() if k != "env"} == {k: v for k, v in USER.items() if k != "env"}
    # It holds: every later tick finds it as it is.
    assert cs.plan_phase(state, 5000, shift=SHIFT) == 2
    assert cs.apply(str(path), shifted(2), now=5000, state=state).status == "unchanged"
    # Its end: "" first, even when every session already reports the plan (they always do).
    assert cs.plan_phase(state, 9000, shift=None) == 1
    assert cs.plan_phase(state, 9000, shift=None, sessions_on_plan=True) == 1
    assert cs.apply(str(path), plan(1), now=9000, state=state).status == "written"
    # Only the moved alias is "": the base URL and the other aliases stay the user's own.
    assert load(path)["env"] == {**USER["env"], FABLE: "", "SPILLOVER_ROUTE": "plan"}
    assert cs.plan_phase(state, 9002, shift=None, sessions_on_plan=True) == 1
    assert cs.plan_phase(state, 9000 + cs.SETTLE_SECONDS, shift=None) == 2
    assert cs.apply(str(path), plan(2), now=9007, state=state).status == "written"
    assert load(path) == USER
    assert cs.load_state(state) == {}


def test_a_spill_that_ends_in_a_downshift_drops_the_helper_only_in_phase_two(box):
    path, state = box
    cs.apply(str(path), spill(), now=1000, state=state)
    assert cs.plan_phase(state, 2000, shift=SHIFT) == 1
    cs.apply(str(path), shifted(1), now=2000, state=state)
    data = load(path)
    assert data["apiKeyHelper"] == HELPER and data["env"]["ANTHROPIC_BASE_URL"] == "" and data["env"][FABLE] == "claude-opus-5-5"
    assert data["env"]["ANTHROPIC_DEFAULT_OPUS_MODEL"] == ""
    cs.apply(str(path), shifted(2), now=2000 + cs.SETTLE_SECONDS, state=state)
    assert load(path) == {**USER, "env": {**USER["env"], FABLE: "claude-opus-5-5", "SPILLOVER_ROUTE": "plan"}}
    # And a spill from the downshift, and back to the plan without one, restore the user's file.
    cs.apply(str(path), spill(), now=3000, state=state)
    assert load(path)["env"][FABLE] == "anthropic/claude-fable-5.1"
    cs.apply(str(path), plan(1), now=4000, state=state)
    cs.apply(str(path), plan(2), now=4000 + cs.SETTLE_SECONDS, state=state)
    assert load(path) == USER


def test_a_users_own_value_of_the_shifted_alias_comes_back(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"env": {FABLE: "my-fable"}}))
    state = cs.private_state_path(str(tmp_path / "state"), str(path))
    cs.apply(str(path), shifted(1), now=1000, state=state)
    assert load(path)["env"][FABLE] == "claude-opus-5-5"
    assert cs.apply(str(path), shifted(2), now=1007, state=state).status == "unchanged"
    cs.apply(str(path), plan(1), now=2000, state=state)
    cs.apply(str(path), plan(2), now=2007, state=state)
    assert load(path) == {"env": {FABLE: "my-fable"}}


def test_a_second_phase_one_write_on_the_way_out_of_a_downshift_keeps_only_the_alias(box):
    """Within SETTLE_SECONDS of the "" for the alias, a tick, a heal or the statusline's phase 2
    writes phase 1 again: still "" for the alias alone. The full phase-1 block would put "" over
    the user's own ANTHROPIC_BASE_URL (a shell value or a gateway), and a running session keeps
    that "" after phase 2 removes the key: its next prompt would go to api.anthropic.com."""
    path, state = box
    cs.apply(str(path), shifted(1), now=1000, state=state)
    cs.apply(str(path), plan(1), now=9000, state=state)
    leaving = {**USER["env"], FABLE: "", "SPILLOVER_ROUTE": "plan"}
    assert load(path)["env"] == leaving
    assert cs.plan_phase(state, 9002, shift=None, sessions_on_plan=True) == 1
    assert cs.apply(str(path), plan(1), now=9002, state=state).status == "unchanged"
    assert load(path)["env"] == leaving
    # A new downshift meanwhile (Opus walled too: fable on sonnet) keeps to the aliases as well.
    fable_on_sonnet = cs.managed_block("plan", [("SPILLOVER_ROUTE", "plan"), (FABLE, "claude-sonnet-5-5")], HELPER, phase=1)
    cs.apply(str(path), fable_on_sonnet, now=9003, state=state)
    assert load(path)["env"] == {**USER["env"], FABLE: "claude-sonnet-5-5", "SPILLOVER_ROUTE": "plan"}
    cs.apply(str(path), plan(1), now=9004, state=state)
    assert load(path)["env"] == leaving
    cs.apply(str(path), plan(2), now=9004 + cs.SETTLE_SECONDS, state=state)
    assert load(path) == USER


# --- the moment between spillover's last look and its commit -----------------------------------


def _foreign_write(path, key, replace):
    """What the client does: read settings.json, add a key, temp + rename (never spillover's temp)."""
    data = json.loads(path.read_text())
    data[key] = True
    tmp = path.parent / f"client-{key}.tmp"
    tmp.write_text(json.dumps(data))
    replace(str(tmp), str(path))


def _race_at_commit(monkeypatch, path, keys):
    """Each commit of `path` (os.replace, os.link, fsutil.exchange) is preceded by one foreign write
    of the next key in `keys`: the client writes after spillover's last check, before its rename."""
    from spillover import fsutil

    real_replace = os.replace
    pending = list(keys)

    def racing(original):
        def commit(src, dst, *args, **kwargs):
            if os.path.realpath(dst) == os.path.realpath(path) and pending and not os.path.basename(src).startswith("client-"):
                _foreign_write(path, pending.pop(0), real_replace)
            return original(src, dst, *args, **kwargs)
        return commit

    monkeypatch.setattr(os, "replace", racing(os.replace))
    monkeypatch.setattr(os, "link", racing(os.link))
    if hasattr(fsutil, "exchange"):
        monkeypatch.setattr(fsutil, "exchange", racing(fsutil.exchange))
    return pending


@pytest.mark.parametrize("keys", [["k0"], ["k0", "k1"], ["k0", "k1", "k2", "k3"]])
def test_a_write_between_the_last_check_and_the_rename_is_kept(box, monkeypatch, keys):
    """The client renames its settings.json after spillover's last look and before its commit (a
    preempted tick; CI lost k0 and k1 so): the client's keys survive and spillover's block lands."""
    path, state = box
    pending = _race_at_commit(monkeypatch, path, keys)
    result = cs.apply(str(path), spill(), now=1000, state=state)
    monkeypatch.undo()
    assert pending == []
    assert result.status == "written", result
    data = load(path)
    assert [k for k in keys if k not in data] == [], "spillover's write lost the client's keys"
    assert data["env"]["SPILLOVER_ROUTE"] == "openrouter" and data["apiKeyHelper"] == HELPER
    assert [name for name in os.listdir(path.parent) if name != "settings.json"] == []


def test_a_file_created_between_the_last_check_and_the_commit_is_kept(tmp_path, monkeypatch):
    """No settings.json when spillover looked; the client creates one just before spillover's
    commit: the client's file is not replaced blindly."""
    path = tmp_path / "claude" / "settings.json"
    path.parent.mkdir()
    state = cs.private_state_path(str(tmp_path / "state"), str(path))

    real_replace, real_link, fired = os.replace, os.link, []

    def create_first(original):
        def commit(src, dst, *args, **kwargs):
            if os.path.realpath(dst) == os.path.realpath(path) and not fired and "client" not in src:
                fired.append(1)
                tmp = path.parent / "client.tmp"
                tmp.write_text(json.dumps({"model": "opus"}))
                real_replace(str(tmp), str(path))
            return original(src, dst, *args, **kwargs)
        return commit

    monkeypatch.setattr(os, "replace", create_first(real_replace))
    monkeypatch.setattr(os, "link", create_first(real_link))
    result = cs.apply(str(path), spill(), now=1000, state=state)
    monkeypatch.undo()
    assert fired and result.status == "written", result
    data = load(path)
    assert data["model"] == "opus" and data["env"]["SPILLOVER_ROUTE"] == "openrouter"


@pytest.mark.parametrize("read, base, theirs, expected", [
    # their key goes onto a read that lacks it
    ({"a": 1}, {"a": 1}, {"a": 1, "k": 1}, {"a": 1, "k": 1}),
    # their removal too, and their change of a value
    ({"a": 1, "b": 2}, {"a": 1, "b": 2}, {"a": 3}, {"a": 3}),
    # a key the newer read changed itself keeps the read's value
    ({"a": 5}, {"a": 1}, {"a": 3}, {"a": 5}),
    # nested objects (env, hooks) merge per key
    ({"env": {"X": "1", "SPILLOVER_ROUTE": "openrouter"}}, {"env": {"X": "1"}}, {"env": {"X": "1", "Y": "2"}},
     {"env": {"X": "1", "Y": "2", "SPILLOVER_ROUTE": "openrouter"}}),
    ({}, {}, {"env": {"Y": "2"}}, {"env": {"Y": "2"}}),
])
def test_a_displaced_version_is_carried_onto_the_next_read(read, base, theirs, expected):
    assert cs._carry(read, [(base, theirs)]) == expected
