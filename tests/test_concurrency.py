"""Concurrency and crash safety of the tick and of the published files (design §2).

- cron may start a tick while the previous one still runs: exactly one works, the rest exit 0;
- a shell sources route.env at any moment: it must never see a half-written file;
- a tick can die at any instruction (SIGKILL, OOM, reboot): what it leaves is the old or the new
  version of each file, and the next tick carries on.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from spillover import config, fsutil, targets
from spillover.publishers import env_files as publish
from tests import fakes
from tests.conftest import OAUTH_TOKEN, OR_KEY, Sandbox, sandbox_env, wire

ROUTES = ("plan", "openrouter")
RECOVER_EVERY = 4


def wired_sandbox(root, usage, openrouter, **extra):
    """What the `wired` fixture builds, for tests that need several sandboxes at once."""
    root.mkdir(parents=True, exist_ok=True)
    home, env = sandbox_env(root)
    return wire(Sandbox(root, home, env), usage, openrouter, **extra)


def tick_cmd():
    return [sys.executable, "-m", "spillover", "tick", "--poll"]


# --- 20 ticks at once -------------------------------------------------------------------------


def test_twenty_simultaneous_ticks_one_works_the_rest_exit_0(wired):
    # The usage endpoint holds its answer until the other 19 ticks have ended, so the tick holding
    # the lock is still at work while all the others start, find the lock taken and leave: however
    # long 20 interpreters take to start on a loaded machine.
    release = threading.Event()
    wired.config_file.write_text(wired.config_file.read_text() + "SPILLOVER_TIMEOUT='70'\n")
    wired.usage.set("/api/oauth/usage", fakes.Reply(json=fakes.usage_body(96.0), until=release))
    env = dict(wired.env)
    started = time.monotonic()
    procs = [subprocess.Popen([sys.executable, "-m", "spillover", "-v", "tick"], env=env, cwd=wired.root,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(20)]
    ended = {}
    try:
        while len(ended) < len(procs) and time.monotonic() - started < 90:
            for i, proc in enumerate(procs):
                if i not in ended and proc.poll() is not None:
                    ended[i] = time.monotonic() - started
            if len(ended) >= len(procs) - 1 or time.monotonic() - started > 45:
                release.set()
            time.sleep(0.02)
    finally:
        release.set()
    finished = [(proc.returncode, ended.get(i, 90.0), proc.communicate(timeout=5)[1]) for i, proc in enumerate(procs)]
    assert [code for code, _, _ in finished] == [0] * 20, [err for _, _, err in finished]
    # Which tick did the work is told by what each said, not by when it ended.
    left = [err for _, _, err in finished if "another tick holds the lock" in err]
    print("exit times", sorted(round(t, 2) for _, t, _ in finished))
    assert len(left) == 19, f"{20 - len(left)} ticks did the work (times {[round(t, 1) for _, t, _ in finished]})"
    worker_time = max(t for _, t, err in finished if "another tick holds the lock" not in err)
    assert worker_time >= max(t for _, t, err in finished if "another tick holds the lock" in err), \
        "the working tick did not wait for the slow usage endpoint"
    assert len(wired.usage.hits("/api/oauth/usage")) == 1
    history = fsutil.read_jsonl(str(wired.state_dir / "history.jsonl"))
    assert [(h["from"], h["route"]) for h in history] == [("plan", "openrouter")]
    assert wired.state()["route"] == "openrouter"


# --- a reader never sees a partial route.env --------------------------------------------------

READER = r"""
out=$1 file=$2 stop=$3 ready=$4
names=(SPILLOVER_ROUTE SPILLOVER_REASON ANTHROPIC_BASE_URL ANTHROPIC_AUTH_TOKEN ANTHROPIC_API_KEY
       ANTHROPIC_DEFAULT_FABLE_MODEL ANTHROPIC_DEFAULT_OPUS_MODEL ANTHROPIC_DEFAULT_SONNET_MODEL ANTHROPIC_DEFAULT_HAIKU_MODEL
       CLAUDE_CODE_SUBAGENT_MODEL)
: >"$ready"
while [[ ! -e $stop ]]; do
  (
    # shellcheck disable=SC1090
    . "$file" 2>/dev/null || { echo BROKEN; exit; }
    line=""
    for n in "${names[@]}"; do
      if [[ -n ${!n+set} ]]; then line+="$n=${!n};"; else line+="$n-;"; fi
    done
    printf '%s\n' "$line"
  ) >>"$out"
done
"""


def route_pairs(route, cfg, reason):
    return targets.route_env(route, cfg, reason=reason)


def expected_line(pairs):
    shown = dict(pairs)
    names = ("SPILLOVER_ROUTE", "SPILLOVER_REASON") + targets.ROUTING_VARS + targets.MODEL_VARS
    return "".join(f"{n}={shown[n]};" if shown.get(n) is not None else f"{n}-;" for n in names)


def race_reader_against(tmp_path, write, until, writes=1000, bound=60):
    """Run the bash reader while `write(route, pairs, reason)` is called: from the moment the
    reader runs, at least `writes` times, then on until `until(lines read so far, the expected lines)` holds or
    `bound` seconds have passed (a loaded machine gives the reader fewer turns, not a weaker test)."""
    cfg = config.load(environ={"OPENROUTER_API_KEY": OR_KEY, "SPILLOVER_OPENROUTER_BASE_URL": "https://openrouter.ai/api"},
                      path=str(tmp_path / "none.env"))
    # A long reason puts a big comment before the exports: a torn file would miss them.
    reasons = {"plan": "five_hour back to 10% < 50% " + "p" * 8000, "openrouter": "five_hour 96% ≥ 95% " + "o" * 8000}
    versions = {r: route_pairs(r, cfg, reasons[r]) for r in ROUTES}
    expected = {expected_line(pairs) for pairs in versions.values()}
    # On tmpfs when there is one: fsync is free there, and the race is about rename, not disks.
    shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    state_dir = Path(tempfile.mkdtemp(prefix="spillover-race-", dir=shm or tmp_path))
    write("plan", versions["plan"], reasons["plan"], str(state_dir))
    out, stop, ready = tmp_path / "seen.txt", tmp_path / "stop", tmp_path / "ready"
    reader = subprocess.Popen(["bash", "-c", READER, "reader", str(out), str(state_dir / "route.env"), str(stop), str(ready)])

    def whole_lines():
        return out.read_text().splitlines()[:-1] if out.exists() else []  # the last may be half appended

    try:
        deadline = time.monotonic() + bound
        while not ready.exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert ready.exists(), "the reader never started"
        i = 0
        while i < writes or not (i % 100 or until(whole_lines(), expected) or time.monotonic() > deadline):
            route = ROUTES[(i + 1) % 2]
            write(route, versions[route], reasons[route], str(state_dir))
            i += 1
    finally:
        stop.touch()
        reader.wait(timeout=30)
        shutil.rmtree(state_dir, ignore_errors=True)
    seen = out.read_text().splitlines() if out.exists() else []
    return seen, expected


def test_reader_never_sees_a_partial_route_env(tmp_path):
    seen, expected = race_reader_against(
        tmp_path, lambda route, pairs, reason, state_dir: publish.publish_route(state_dir, route, pairs, reason),
        until=lambda lines, expected: len(lines) >= 200 and expected <= set(lines))
    print(f"{len(seen)} reads during 1000 writes")
    assert len(seen) >= 50, f"the reader only read {len(seen)} times: the race was not exercised"
    torn = [line for line in seen if line not in expected]
    assert not torn, f"{len(torn)} of {len(seen)} reads saw a partial route.env, e.g. {torn[0][:300]}"
    assert {line for line in seen} == expected, "the reader should have seen both routes"


def test_the_reader_catches_a_writer_that_is_not_atomic(tmp_path):
    """The harness above can fail: an in-place writer is caught tearing the file."""

    def naive(route, pairs, reason, state_dir):
        text = publish.render_sh(pairs, route, reason)
        with open(os.path.join(state_dir, "route.env"), "w", encoding="utf-8") as handle:
            for i in range(0, len(text), 4096):  # as a buffered writer flushes it
                handle.write(text[i:i + 4096])
                handle.flush()

    seen, expected = race_reader_against(tmp_path, naive,
                                         until=lambda lines, expected: any(line not in expected for line in lines))
    assert any(line not in expected for line in seen), "an in-place writer went unnoticed"


# --- SIGKILL at random points ----------------------------------------------------------------


def assert_complete_route_env(text, cfg_values):
    """One whole rendering: header, exports, and the final `unset` line; values exact."""
    assert text.endswith("\n") and text.startswith(publish.HEADER), text[:200]
    route = next(line[len("# route: "):] for line in text.splitlines() if line.startswith("# route: "))
    assert route in ROUTES, route
    cfg = config.load(environ=cfg_values, path="/nonexistent/config.env")
    reason = next((line[len("# reason: "):] for line in text.splitlines() if line.startswith("# reason: ")), "")
    assert text == publish.render_sh(targets.route_env(route, cfg, reason=reason), route, reason)
    return route


def assert_complete_state(text):
    state = json.loads(text)
    assert state["version"] == 1 and state["route"] in ROUTES
    for key in ("decided_at", "status", "reason", "route_reason", "route_since", "buckets", "details", "sources", "budget"):
        assert key in state, key
    assert state["status"] == ("plan" if state["route"] == "plan" else "spilled")
    return state


def kill_worker(root, index, kills, seed):
    """One sandbox, `kills` ticks each killed after a random delay up to a little more than a
    whole tick takes under the current load (so the kill lands anywhere: imports, network,
    decision, publishing); a full tick after every RECOVER_EVERY-th kill and at the end must recover."""
    rng = random.Random(seed)
    usage, openrouter = fakes.FakeServer(), fakes.FakeServer()
    openrouter.set("/api/v1/key", json=fakes.key_body())
    try:
        box = wired_sandbox(root / f"w{index}", usage, openrouter)
        env = dict(box.env, SPILLOVER_POLL_MINUTES="0")
        usage.set("/api/oauth/usage", json=fakes.usage_body(10.0))
        started = time.monotonic()
        subprocess.run(tick_cmd(), env=env, cwd=box.root, check=True, capture_output=True, timeout=60)
        longest = 1.2 * (time.monotonic() - started)
        cfg_values = {"OPENROUTER_API_KEY": OR_KEY, "SPILLOVER_OPENROUTER_BASE_URL": f"{openrouter.url}/api"}
        stats = {"killed": 0, "finished_first": 0, "killed_after_publishing": 0, "routes": set(), "tmp_left": 0}
        for i in range(kills):
            # Alternate the quota across the wall so every tick has a new decision to publish; each
            # reading is of a new window (within one, utilization never falls).
            usage.set("/api/oauth/usage", json=fakes.usage_body(96.0 if i % 2 == 0 else 10.0, resets_in=3600 + 600 * i))
            before = {name: _read(box.state_dir / name) for name in ("route.env", "state.json")}
            proc = subprocess.Popen(tick_cmd(), env=env, cwd=box.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, longest))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                stats["killed"] += 1
            else:
                stats["finished_first"] += 1
                assert proc.returncode == 0, "a tick after a killed one failed"
            proc.wait()
            after = {name: _read(box.state_dir / name) for name in ("route.env", "state.json")}
            if proc.returncode == -signal.SIGKILL and after["state.json"] != before["state.json"]:
                stats["killed_after_publishing"] += 1
            if after["route.env"] is not None:
                assert_complete_route_env(after["route.env"], cfg_values)
            else:
                assert before["route.env"] is None, "route.env disappeared"
            if after["state.json"] is not None:
                assert_complete_state(after["state.json"])
            else:
                assert before["state.json"] is None, "state.json disappeared"
            if i % RECOVER_EVERY and i != kills - 1:
                continue
            # The next tick recovers: exit 0, valid files, the route the quota calls for.
            started = time.monotonic()
            done = subprocess.run(tick_cmd(), env=env, cwd=box.root, capture_output=True, text=True, timeout=60)
            longest = 1.2 * (time.monotonic() - started)  # follow the machine's load
            assert done.returncode == 0, done.stderr
            assert "Traceback" not in done.stderr
            state = assert_complete_state(_read(box.state_dir / "state.json"))
            route = assert_complete_route_env(_read(box.state_dir / "route.env"), cfg_values)
            assert state["route"] == route == ("openrouter" if i % 2 == 0 else "plan"), state["reason"]
            stats["routes"].add(route)
        stats["longest"] = longest
        stats["tmp_left"] = len([n for n in os.listdir(box.state_dir) if n.startswith(".tmp-")])
        return stats
    finally:
        usage.close()
        openrouter.close()


def _read(path):
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


def test_sigkill_at_random_points_leaves_whole_files_and_the_next_tick_recovers(tmp_path):
    kills, workers = 200, 3
    seed = int(os.environ.get("SPILLOVER_TEST_SEED", time.time()))
    print(f"seed {seed} (SPILLOVER_TEST_SEED to replay)")
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda i: kill_worker(tmp_path, i, kills // workers + (i < kills % workers), seed + i), range(workers)))
    killed = sum(r["killed"] for r in results)
    total = {k: sum(r[k] for r in results) for k in ("finished_first", "killed_after_publishing", "tmp_left")}
    longest = max(r["longest"] for r in results)
    print(f"delays up to ~{longest * 1000:.0f} ms: killed {killed} (of which after state.json was replaced: "
          f"{total['killed_after_publishing']}), finished before the kill {total['finished_first']}, "
          f"temp files left behind {total['tmp_left']}")
    assert killed >= kills // 2, "too few ticks were actually killed mid-run: the delays are too long"
    # The kills reached the end of the tick too, where the files are replaced.
    assert total["killed_after_publishing"] + total["finished_first"] >= 5, total
    assert set().union(*(r["routes"] for r in results)) == set(ROUTES)


@pytest.mark.parametrize("damage", ["empty", "truncated", "garbage"])
def test_a_damaged_state_json_is_rebuilt_by_the_next_tick(wired, damage):
    wired.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
    wired.run("tick", check=True)
    path = wired.state_dir / "state.json"
    text = path.read_text()
    path.write_text({"empty": "", "truncated": text[: len(text) // 2], "garbage": "\x00\xff{]"}[damage])
    assert wired.run("check").returncode == 5  # unknown, not a crash
    proc = wired.run("tick", "--poll", check=True)
    assert "Traceback" not in proc.stderr
    state = assert_complete_state(path.read_text())
    assert state["route"] == "openrouter"
    assert OAUTH_TOKEN not in proc.stderr


# --- a commit that checks what it displaced (fsutil.replace_if_current) ---------------------------


def _version(path):
    return fsutil.file_key(os.lstat(path))


def test_exchange_swaps_two_names(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.write_text("A")
    b.write_text("B")
    fsutil.exchange(str(a), str(b))
    assert (a.read_text(), b.read_text()) == ("B", "A")
    with pytest.raises(FileNotFoundError):
        fsutil.exchange(str(a), str(tmp_path / "missing"))


def test_replace_if_current_replaces_the_version_it_was_given(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text("old")
    path.chmod(0o644)
    replaced, others = fsutil.replace_if_current(str(path), "new", mode=0o644, expected=_version(path))
    assert (replaced, others) == (True, []) and path.read_text() == "new"
    assert path.stat().st_mode & 0o777 == 0o644 and os.listdir(tmp_path) == ["settings.json"]


@pytest.mark.parametrize("writer", ["rename", "in place"])
def test_a_version_that_lands_after_the_last_look_is_put_back(tmp_path, writer):
    """Another writer's version lands between the caller's last look and the commit (by temp and
    rename, or by truncating and writing the same inode): it is what the file holds afterwards, and
    its bytes come back to the caller."""
    path = tmp_path / "settings.json"
    path.write_text('{"a": 1}')
    expected = _version(path)

    def theirs_lands_after_the_last_look():
        if writer == "rename":
            (tmp_path / "theirs").write_text('{"a": 1, "b": 2}')
            os.replace(tmp_path / "theirs", path)
        else:
            time.sleep(0.01)  # a new mtime even on a coarse clock
            path.write_text('{"a": 1, "b": 2}')
        return True

    replaced, others = fsutil.replace_if_current(str(path), '{"a": 1, "ours": 1}', mode=0o600, expected=expected,
                                                 only_if=theirs_lands_after_the_last_look)
    assert replaced is False
    assert path.read_text() == '{"a": 1, "b": 2}' and others == [b'{"a": 1, "b": 2}']
    assert os.listdir(tmp_path) == ["settings.json"]


def test_without_an_exchange_call_the_commit_is_a_rename(tmp_path, monkeypatch):
    """Where the system or the file system cannot swap two names (EINVAL on some file systems,
    no renameat2/renamex_np): a plain rename after the last look, as before."""

    def unsupported(a, b):
        raise NotImplementedError("EINVAL")

    monkeypatch.setattr(fsutil, "exchange", unsupported)
    path = tmp_path / "settings.json"
    path.write_text("old")
    replaced, others = fsutil.replace_if_current(str(path), "new", mode=0o600, expected=_version(path))
    assert (replaced, others) == (True, []) and path.read_text() == "new"


def test_a_file_created_after_the_last_look_is_not_replaced(tmp_path):
    path = tmp_path / "settings.json"

    def created_meanwhile():
        path.write_text("theirs")
        return True

    replaced, _ = fsutil.replace_if_current(str(path), "ours", mode=0o600, expected=None, only_if=created_meanwhile)
    assert replaced is False and path.read_text() == "theirs" and os.listdir(tmp_path) == ["settings.json"]
    replaced, _ = fsutil.replace_if_current(str(tmp_path / "new.json"), "ours", mode=0o600, expected=None)
    assert replaced is True and (tmp_path / "new.json").read_text() == "ours"
