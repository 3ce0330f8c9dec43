"""`make bench`: one table, every figure a ratio against a baseline measured in the same run.

    .venv/bin/python bench/run.py [--quick]

What is measured (medians of several runs; every run in a sandboxed HOME/XDG):
- `spillover check` and `spillover statusline` (a realistic Claude Code payload on stdin), as the
  installed console script and as `python -m spillover`, against `python -c pass` of the same
  interpreter: what the hot-path commands cost on top of starting Python at all;
- a direnv reload of a directory whose .envrc says `use spillover` against one with an empty
  .envrc (`direnv exec DIR true`);
- the prompt hook when nothing changed against an empty function (N calls in one shell, timed
  with $EPOCHREALTIME), in bash and zsh;
- a tick whose three endpoints (usage, /key, /credits) each answer after 0.5 s against a tick
  where only the usage endpoint is slow: ~1 means the sources are read concurrently;
- a second transcript scan of a large file (200 MB, generated once into .bench/) against the
  first: the incremental read only stats the file;
- reaction times (absolute seconds, aim < 5 s), with `spillover install live`: from a wall (the
  StopFailure hook run with a real payload) to the flip written into settings.json, and from a
  statusline reading that crosses the threshold to the flip. A running Claude Code session
  applies a settings change about 1-1.5 s later; and the whole path with the real interactive
  client (both pinned versions, through the e2e wall test): wall → the session's next prompt at
  the target.
Aims are printed next to the figures; a miss is reported, never fatal.
"""

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from spillover.fsutil import Lock  # noqa: E402
from tests import fakes  # noqa: E402  (the fake servers the test suite uses)
from tests.conftest import MGMT_KEY, OR_KEY, Sandbox, sandbox_env  # noqa: E402

PY = sys.executable
CONSOLE = Path(PY).parent / "spillover"
CACHE = REPO / ".bench"
BIG_TRANSCRIPT_MB = 200


def median_seconds(argv, runs, env, stdin=None, cwd=None):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(argv, env=env, input=stdin, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        times.append(time.perf_counter() - started)
        if proc.returncode not in (0, 3, 4, 5):
            raise SystemExit(f"bench: {' '.join(map(str, argv))} failed ({proc.returncode}): {proc.stderr.decode()[:500]}")
    return statistics.median(times)


def interleaved(a, b, runs):
    """Medians of two measurements taken in alternation, so machine noise hits both alike."""
    ta, tb = [], []
    for _ in range(runs):
        ta.append(a())
        tb.append(b())
    return statistics.median(ta), statistics.median(tb)


def once(argv, env, stdin=None, cwd=None):
    return lambda: median_seconds(argv, 1, env, stdin, cwd)


# --- the sandbox -------------------------------------------------------------------------------


class Bench:
    def __init__(self, root, runs):
        self.root = root
        self.runs = runs
        self.notes = []  # absolute figures printed under the table
        home, env = sandbox_env(root)
        self.box = Sandbox(root, home, env)
        self.env = env
        self.usage = fakes.FakeServer()
        self.openrouter = fakes.FakeServer()
        self.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
        self.openrouter.set("/api/v1/key", json=fakes.key_body())
        self.openrouter.set("/api/v1/credits", json=fakes.credits_body())
        self.box.write_credentials()
        self.box.write_config(
            SPILLOVER_CLAUDE_USAGE_URL=f"{self.usage.url}/api/oauth/usage",
            OPENROUTER_API_URL=f"{self.openrouter.url}/api/v1",
            SPILLOVER_OPENROUTER_BASE_URL="https://openrouter.ai/api",
            OPENROUTER_API_KEY=OR_KEY,
            OPENROUTER_MANAGEMENT_KEY=MGMT_KEY,
            SPILLOVER_TIMEOUT="5",
            SPILLOVER_SOURCES="oauth,statusline",
        )
        self.box.run("tick", "--poll", check=True)  # a fresh state: check has something to read

    def close(self):
        self.usage.close()
        self.openrouter.close()


def statusline_payload(root):
    now = int(time.time())
    return json.dumps({
        "hook_event_name": "Status",
        "session_id": str(uuid.uuid4()),
        "transcript_path": str(root / "home/.claude/projects/-home-me-project/session.jsonl"),
        "cwd": "/home/me/project",
        "model": {"id": "claude-opus-4-8", "display_name": "Opus"},
        "workspace": {"current_dir": "/home/me/project", "project_dir": "/home/me/project"},
        "version": "2.1.197",
        "output_style": {"name": "default"},
        "cost": {"total_cost_usd": 0.0123, "total_duration_ms": 45000, "total_api_duration_ms": 2300,
                 "total_lines_added": 156, "total_lines_removed": 23},
        "exceeds_200k_tokens": False,
        "rate_limits": {"five_hour": {"used_percentage": 87, "resets_at": now + 3600},
                        "seven_day": {"used_percentage": 41, "resets_at": now + 4 * 86400}},
    }).encode()


# --- the measurements --------------------------------------------------------------------------


def bench_cli(b):
    rows = []
    env = b.env
    baseline = [PY, "-c", "pass"]
    payload = statusline_payload(b.root)
    commands = [("check", ["check"], None), ("statusline", ["statusline"], payload)]
    for name, args, stdin in commands:
        for how, prefix in (("console script", [str(CONSOLE)]), ("python -m", [PY, "-m", "spillover"])):
            if how == "console script" and not CONSOLE.exists():
                continue
            cmd, base = interleaved(once(prefix + args, env, stdin), once(baseline, env), b.runs)
            rows.append((f"spillover {name} ({how})", "python3 -c pass", cmd / base, 2.0 if name == "check" else 2.5))
    return rows


def bench_direnv(b):
    direnv = shutil.which("direnv")
    if direnv is None:
        return [("use spillover reload (direnv exec)", "empty .envrc", None, 1.10)]
    b.box.run("install", "direnv", check=True)
    dirs = {}
    route = b.box.state_dir / "route.env"
    for name, text in (("with", "use spillover\n"), ("empty", "\n"), ("watch", f"watch_file '{route}'\n")):
        d = b.root / f"envrc-{name}"
        d.mkdir()
        (d / ".envrc").write_text(text)
        subprocess.run([direnv, "allow", str(d)], env=b.env, check=True, capture_output=True)
        dirs[name] = d
    runs = max(b.runs, 15)
    with_, empty = interleaved(once([direnv, "exec", str(dirs["with"]), "true"], b.env, cwd=dirs["with"]),
                               once([direnv, "exec", str(dirs["empty"]), "true"], b.env, cwd=dirs["empty"]), runs)
    # Watching a file costs a `direnv watch` process of its own: the floor for any watching library.
    with2, watch = interleaved(once([direnv, "exec", str(dirs["with"]), "true"], b.env, cwd=dirs["with"]),
                               once([direnv, "exec", str(dirs["watch"]), "true"], b.env, cwd=dirs["watch"]), runs)
    return [("use spillover reload (direnv exec)", "empty .envrc", with_ / empty, 1.10),
            ("use spillover reload (direnv exec)", ".envrc with only watch_file", with2 / watch, 1.10)]


HOOK_LOOP = r"""
%(prelude)s
eval "$(%(spillover)s hook %(shell)s)"
_spillover_hook   # the first prompt applies the route; the loop measures "nothing changed"
_bench_empty() { :; }
for _round in 1 2 3 4 5; do
  t0=$EPOCHREALTIME; for ((i = 0; i < %(n)d; i++)); do _spillover_hook; done; t1=$EPOCHREALTIME
  for ((i = 0; i < %(n)d; i++)); do _bench_empty; done; t2=$EPOCHREALTIME
  echo "${t0/,/.} ${t1/,/.} ${t2/,/.}"
done
"""
HOOK_PRELUDE = {"bash": "", "zsh": "zmodload zsh/datetime"}  # zsh's $EPOCHREALTIME is a module


def bench_hook(b, n=20000):
    rows = []
    wrapper = b.root / "bin" / "spillover"
    wrapper.parent.mkdir(exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec {PY} -m spillover "$@"\n')
    wrapper.chmod(0o755)
    for shell, prelude in HOOK_PRELUDE.items():
        exe = shutil.which(shell)
        if exe is None:
            rows.append((f"prompt hook, nothing changed ({shell})", "empty function", None, 2.0))
            continue
        argv = [exe, "--norc", "--noprofile", "-c"] if shell == "bash" else [exe, "-f", "-c"]
        out = subprocess.run(argv + [HOOK_LOOP % {"prelude": prelude, "spillover": wrapper, "shell": shell, "n": n}], env=b.env, capture_output=True, text=True, check=True)
        ratios = []
        for line in out.stdout.split("\n"):
            if line.strip():
                t0, t1, t2 = map(float, line.split())
                ratios.append((t1 - t0) / (t2 - t1))
        rows.append((f"prompt hook function call, nothing changed ({shell})", "empty function call", statistics.median(ratios), 2.0))
    return rows


PROMPT_RC = {
    "bash": ("{hook}\n", "_bench_empty() {{ :; }}\nPROMPT_COMMAND=_bench_empty\n"),
    "zsh": ("{hook}\n", "_bench_empty() {{ :; }}\nprecmd_functions+=(_bench_empty)\n"),
}


def bench_prompt_cycle(b, prompts=3000):
    """What a user feels: an interactive shell showing `prompts` prompts (each running the
    PROMPT_COMMAND / precmd hook) with spillover's hook against the same with an empty function."""
    rows = []
    for shell, (with_rc, empty_rc) in PROMPT_RC.items():
        exe = shutil.which(shell)
        name = f"prompt cycle, nothing changed (interactive {shell}, {prompts} prompts)"
        if exe is None:
            rows.append((name, "empty prompt function", None, 2.0))
            continue
        hook = subprocess.run([PY, "-m", "spillover", "hook", shell], env=b.env, capture_output=True, text=True, check=True).stdout
        home = b.root / f"prompt-{shell}"
        home.mkdir(exist_ok=True)
        lines = (":\n" * prompts).encode()
        argvs = {}
        for kind, rc in (("with", with_rc.format(hook=hook)), ("empty", empty_rc)):
            if shell == "bash":
                path = home / f"{kind}.bashrc"
                path.write_text(rc)
                argvs[kind] = ([exe, "--noprofile", "--rcfile", str(path), "-i"], b.env)
            else:
                zdot = home / kind
                zdot.mkdir(exist_ok=True)
                (zdot / ".zshrc").write_text(rc)
                argvs[kind] = ([exe, "-i"], dict(b.env, ZDOTDIR=str(zdot)))
        once = lambda kind: lambda: median_seconds(argvs[kind][0], 1, argvs[kind][1], stdin=lines)
        with_, empty = interleaved(once("with"), once("empty"), max(5, b.runs // 2))
        rows.append((name, "empty prompt function", with_ / empty, 2.0))
    return rows


def bench_tick(b):
    env = dict(b.env, SPILLOVER_POLL_MINUTES="0")
    argv = [PY, "-m", "spillover", "tick", "--poll"]
    delay = 0.5

    def slow(endpoints):
        def run():
            b.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0), delay=delay)
            b.openrouter.set("/api/v1/key", json=fakes.key_body(), delay=delay if endpoints == 3 else 0)
            b.openrouter.set("/api/v1/credits", json=fakes.credits_body(), delay=delay if endpoints == 3 else 0)
            return median_seconds(argv, 1, env)
        return run

    three, one = interleaved(slow(3), slow(1), max(3, b.runs // 3))
    state = json.loads((b.box.state_dir / "state.json").read_text())
    assert state["route"] == "openrouter" and state["budget"]["credits"], "the tick did not read all three endpoints"
    return [("tick, 3 slow endpoints (0.5 s each)", "1 slow endpoint", three / one, 1.2)]


def _settings_route(box):
    try:
        return (json.loads((box.claude_dir / "settings.json").read_text()).get("env") or {}).get("SPILLOVER_ROUTE")
    except (OSError, ValueError):
        return None


def _until_flipped(box, t0, timeout=20.0):
    while time.time() - t0 < timeout:
        if _settings_route(box) == "openrouter":
            return time.time() - t0
        time.sleep(0.02)
    return None


def bench_reaction(b, runs=3):
    """Reaction times: wall (StopFailure) → flip, and threshold-crossing statusline reading → flip."""
    box = b.box
    box.run("install", "live", check=True)
    payload = (REPO / "tests/fixtures/stopfailure/2.1.332/five_hour.json").read_bytes()
    walls, crossings = [], []
    for _ in range(runs):
        for measure in ("wall", "crossing"):
            b.usage.set("/api/oauth/usage", json=fakes.usage_body(10.0, resets_in=5 * 3600))
            # The last run's pushed tick is detached and may still be saving its state: wait for it.
            with Lock(str(box.state_dir), wait=30):
                pass
            # A fresh start each run: a wall, or a 96% reading, holds until its window's reset (a
            # lower reading of the same window does not end it), so the last run's would hold.
            for name in ("walls.jsonl", "push.stamp", "tick.pending", "state.json", "samples.jsonl"):
                try:
                    (box.state_dir / name).unlink()
                except FileNotFoundError:
                    pass
            box.run("tick", "--poll", check=True)
            assert _settings_route(box) in ("plan", None), (_settings_route(box), box.state().get("reason"))
            if measure == "wall":
                t0 = time.time()
                subprocess.run([str(CONSOLE), "hook", "stop-failure"], input=payload, env=b.env, capture_output=True, timeout=30)
                walls.append(_until_flipped(box, t0))
            else:
                b.usage.set("/api/oauth/usage", json=fakes.usage_body(96.0))
                reading = statusline_payload(b.root).replace(b'"used_percentage": 87', b'"used_percentage": 96')
                t0 = time.time()
                subprocess.run([str(CONSOLE), "statusline"], input=reading, env=b.env, capture_output=True, timeout=30)
                crossings.append(_until_flipped(box, t0))
    box.run("uninstall", "live", check=True)
    rows = []
    for name, got in (("reaction: wall (StopFailure) → flip in settings.json", walls),
                      ("reaction: statusline reading ≥ threshold → flip", crossings)):
        ok = [g for g in got if g is not None]
        seconds = statistics.median(ok) if len(ok) == len(got) else None
        b.notes.append(f"{name}: " + (f"{seconds:.2f} s (median of {len(got)}; aim < 5 s)" if seconds is not None
                                      else f"no flip in {sum(g is None for g in got)} of {len(got)} runs"))
        rows.append((name, "aim 5 s", None if seconds is None else seconds / 5.0, 1.0))
    return rows


def bench_live_reaction(b):
    """Wall → the session's next prompt at the target, with the real interactive client: the e2e
    wall test (tests/e2e/test_live.py) on both pinned clients, its figures read back from the file
    BENCH_REACTION_OUT names. The test types that prompt 1 s after the flip reached
    settings.json (the client applies a change about a second after it is written)."""
    if not (REPO / "tests/e2e/node_modules").exists():
        b.notes.append("reaction with the real client: not measured (`make e2e` installs the pinned clients)")
        return []
    out = b.root / "reaction.jsonl"
    env = dict(os.environ, BENCH_REACTION_OUT=str(out))
    proc = subprocess.run([PY, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/e2e/test_live.py", "-k", "wall_flips"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    found = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    if proc.returncode != 0 or not found:
        b.notes.append("reaction with the real client: the e2e wall test failed; see `make e2e`")
        return []
    rows = []
    for got in found:
        name = f"reaction: wall → next prompt at the target (Claude Code {got['version']})"
        b.notes.append(f"{name}: {got['seconds']:.2f} s; the pushed tick flipped {got['flipped']:.2f} s after the wall, "
                       "the prompt was typed 1 s after the flip reached settings.json")
        rows.append((name, "aim 5 s", got["seconds"] / 5.0, 1.0))
    return rows


def big_transcript(mb):
    """A Claude Code transcript of about `mb` MB (cached): ordinary turns and a few walls."""
    path = CACHE / f"transcript-{mb}mb.jsonl"
    if path.exists() and path.stat().st_size >= mb * 1024 * 1024:
        return path
    CACHE.mkdir(exist_ok=True)
    rng = random.Random(7)
    session = str(uuid.uuid4())
    filler = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz     ") for _ in range(1500))
    tmp = path.with_suffix(".tmp")
    written, limit = 0, mb * 1024 * 1024
    with open(tmp, "w", encoding="utf-8") as handle:
        i = 0
        while written < limit:
            i += 1
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() - 86400 + i))
            if i % 20000 == 0:
                record = {"type": "assistant", "timestamp": stamp, "sessionId": session, "isApiErrorMessage": True,
                          "error": "rate_limit", "apiErrorStatus": 429,
                          "message": {"model": "<synthetic>", "role": "assistant", "content": [
                              {"type": "text", "text": "API Error: Request rejected (429) · This request would exceed your account's rate limit."}]}}
            else:
                role = "user" if i % 2 else "assistant"
                record = {"type": role, "timestamp": stamp, "sessionId": session, "uuid": str(uuid.UUID(int=rng.getrandbits(128))),
                          "message": {"role": role, "model": "claude-opus-4-8", "content": [{"type": "text", "text": filler[i % 700:]}]}}
            line = json.dumps(record) + "\n"
            handle.write(line)
            written += len(line)
    os.replace(tmp, path)
    return path


def scan_twice(b, claude_dir, runs=3):
    """Medians of (the first scan of `claude_dir`, the second one right after it), each pair with
    a fresh state dir."""
    from spillover.sources import transcripts

    firsts, seconds = [], []
    for _ in range(runs):
        state = Path(tempfile.mkdtemp(dir=b.root))
        for times in (firsts, seconds):
            started = time.perf_counter()
            transcripts.scan([str(claude_dir)], str(state), time.time())
            times.append(time.perf_counter() - started)
    return statistics.median(firsts), statistics.median(seconds)


def bench_transcripts(b):
    source = big_transcript(BIG_TRANSCRIPT_MB)
    claude_dir = b.root / "claude"
    project = claude_dir / "projects" / "-home-me-project"
    project.mkdir(parents=True)
    os.link(source, project / "session.jsonl") if _same_fs(source, project) else shutil.copy(source, project / "session.jsonl")
    first, second = scan_twice(b, claude_dir)
    small = big_transcript(BIG_TRANSCRIPT_MB // 10)
    small_dir = b.root / "claude-small"
    (small_dir / "projects" / "p").mkdir(parents=True)
    shutil.copy(small, small_dir / "projects" / "p" / "session.jsonl")
    _, small_second = scan_twice(b, small_dir)
    b.notes.append(f"transcript scan, absolute: first {first * 1000:.0f} ms, second {second * 1000:.2f} ms for {BIG_TRANSCRIPT_MB} MB; "
                   f"second {small_second * 1000:.2f} ms for {BIG_TRANSCRIPT_MB // 10} MB")
    return [(f"second transcript scan ({BIG_TRANSCRIPT_MB} MB file)", "first scan", second / first, 0.01),
            (f"second transcript scan ({BIG_TRANSCRIPT_MB} MB file)", f"second scan ({BIG_TRANSCRIPT_MB // 10} MB file)", second / small_second, 2.0)]


KEPT_TRANSCRIPTS = 2000


def bench_many_transcripts(b):
    """The steady scan over 2,000 kept transcript files, none changed since the last scan: no file
    is opened again (size and mtime unchanged), so it costs a directory walk and a stat per file."""
    claude_dir = b.root / "claude-many"
    line = json.dumps({"type": "assistant", "timestamp": "2026-01-01T00:00:00Z",
                       "message": {"role": "assistant", "content": [{"type": "text", "text": "ok " * 40}]}}) + "\n"
    for i in range(KEPT_TRANSCRIPTS):
        project = claude_dir / "projects" / f"-home-me-p{i % 40}"
        project.mkdir(parents=True, exist_ok=True)
        (project / f"s{i}.jsonl").write_text(line * 20)
    first, steady = scan_twice(b, claude_dir)
    b.notes.append(f"transcript scan over {KEPT_TRANSCRIPTS:,} kept files, absolute: first {first * 1000:.0f} ms, "
                   f"unchanged {steady * 1000:.0f} ms")
    return [(f"unchanged transcript scan ({KEPT_TRANSCRIPTS:,} kept files)", "first scan of them", steady / first, 0.8)]


def _same_fs(a, b):
    return os.stat(a).st_dev == os.stat(b).st_dev


# --- the table ---------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (a smoke test of the bench itself)")
    args = parser.parse_args(argv)
    runs = 5 if args.quick else 21
    started = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix="spillover-bench-"))
    rows = []
    bench = Bench(root, runs)
    try:
        for part in (bench_cli, bench_direnv, bench_hook, bench_prompt_cycle, bench_tick, bench_transcripts, bench_many_transcripts,
                     bench_reaction, bench_live_reaction):
            rows += part(bench)
    finally:
        bench.close()
        shutil.rmtree(root, ignore_errors=True)
    width = max(len(r[0]) for r in rows)
    base_width = max(len(r[1]) for r in rows)
    print(f"spillover bench: Python {platform.python_version()} ({sys.executable}), {platform.system()} {platform.machine()}, "
          f"{os.cpu_count()} CPUs; medians of {runs} runs")
    print(f"{'measure':<{width}}  {'baseline':<{base_width}}  {'ratio':>7}  {'aim':>7}  result")
    misses = 0
    for name, baseline, ratio, aim in rows:
        if ratio is None:
            print(f"{name:<{width}}  {baseline:<{base_width}}  {'-':>7}  {'≤ ' + format(aim, 'g'):>7}  not measured (tool missing)")
            continue
        ok = ratio <= aim
        misses += not ok
        shown = f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.4f}x"
        print(f"{name:<{width}}  {baseline:<{base_width}}  {shown:>7}  {'≤ ' + format(aim, 'g'):>7}  {'ok' if ok else 'MISS'}")
    for note in bench.notes:
        print(note)
    print(f"({misses} miss{'es' if misses != 1 else ''}; took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
