"""One tick: lock → config → sources → targets → decide → publish → notify → record. Run by cron
every minute.

Nothing here flips the route on its own: `policy.decide` does, from what the sources report. A
source that fails is recorded in state.json (with its redacted error) and its last good data is
kept; the route file is only ever replaced, never deleted.
"""

import logging
import os
import sys
import time
import types
import typing  # noqa: F401 — loaded before the worker threads: see below
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from spillover import fsutil, paths, policy, publishers, redact, samples, sources, targets
from spillover.fmt import clock
from spillover.exitcodes import ExitCode
from spillover.fsutil import Busy, Lock  # noqa: F401 (callers catch tick.Busy)
from spillover.sources.base import SourceContext
from spillover.state import State, load_pin, spill_intervals

log = logging.getLogger("spillover")

STORED_KEY_PROBLEM = ("Claude Code has an Anthropic API key stored in {path} (primaryApiKey): it sends it as x-api-key "
                      "even on the openrouter/gateway routes, to that target; remove it (claude /logout, then /login "
                      "with your Claude account)")


STAGE = ["starting"]  # what the tick is doing: the hard deadline records it


def _stage(name):
    STAGE[0] = name


def deadline_seconds(cfg):
    """The whole tick's hard deadline: three request timeouts (sources and targets run concurrently,
    each request bounded by SPILLOVER_TIMEOUT) plus slack for the local work."""
    return 3 * cfg.timeout + 5


def arm_deadline(seconds, state_dir=None):
    """After `seconds`, record where the tick was in state.json (best effort, one small write) and
    exit non-zero: the process dies, so the lock is released. Main thread only (SIGALRM)."""
    import signal

    def expire(signum, frame):
        signal.signal(signal.SIGALRM, lambda *_: os._exit(ExitCode.ERROR))
        signal.setitimer(signal.ITIMER_REAL, 2.0)  # the record itself must not hang the exit
        stage = STAGE[0]
        try:
            directory = state_dir or paths.state_dir()
            state, _ = State.load(directory)
            state.cut_off = f"{stage} (after {seconds:g} s; SPILLOVER_TIMEOUT bounds each request)"
            state.save(directory)
        except Exception:  # noqa: BLE001 - best effort: the exit matters more
            pass
        try:
            log.error("tick cut off at the hard deadline (%g s) while %s", seconds, stage)
            for handler in logging.getLogger().handlers:
                handler.flush()
        except Exception:  # noqa: BLE001
            pass
        os._exit(ExitCode.ERROR)  # worker threads may be stuck in a read: do not wait for them

    signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)


def disarm_deadline():
    import signal

    signal.setitimer(signal.ITIMER_REAL, 0)


def run(cfg, *, now=None, dry_run=False, force_poll=False, wait=None):
    """One tick. Returns (decision, state.json dict, changed). Raises Busy when another tick runs
    (after waiting up to `wait` seconds for it to end)."""
    now = time.time() if now is None else now
    state_dir = fsutil.ensure_state_dir()
    from spillover import live

    try:
        with Lock(state_dir, wait=wait):
            result = _run_locked(cfg, state_dir, now, dry_run, force_poll)
    except Busy:
        if not dry_run:
            live.mark_pending(state_dir)  # a pushed tick is never lost: the running one runs again
        raise
    for _ in range(2):  # a tick pushed (StopFailure, statusline) while this one ran
        if dry_run or not live.take_pending(state_dir):
            break
        try:
            with Lock(state_dir):
                result = _run_locked(cfg, state_dir, time.time(), dry_run, force_poll)
        except Busy:
            break
    return result


def _run_locked(cfg, state_dir, now, dry_run, force_poll):
    _stage("reading state.json")
    state, problem = State.load(state_dir)
    problems = [problem] if problem else []
    prev = state.previous()
    records, info, activity = dict(state.sources), {}, []

    def keep(reader, result):
        if result.info.get("last_activity"):
            activity.append(result.info["last_activity"])
        if result.record is not None:
            if result.samples:
                result.record.last_reading_at = max(s.observed_at for s in result.samples)
            records[reader.name] = result.record.to_json()
        info.update(result.info)
        return result.samples

    # Local signals first: they are free and decide whether the network is needed.
    ctx = SourceContext(cfg, now, state_dir, spilled=state.spilled, force=force_poll, dry_run=dry_run,
                        watch=state.hot_bucket if state.spilled else None)
    if "transcripts" in cfg.sources:
        ctx.spill_intervals = spill_intervals(state_dir)
    enabled = sources.enabled(cfg)
    local, remote = [r for r in enabled if getattr(r, "local", False)], [r for r in enabled if not getattr(r, "local", False)]
    _stage("reading local sources (" + ", ".join(r.name for r in local) + ")")
    fresh = [s for r in local for s in keep(r, _read(r, replace(ctx, record=state.source(r.name))))]
    # One decision, from the primary (first) config dir's account; readings stamped in the future are taken as now.
    account = paths.account(cfg.claude_dirs[0])
    mine, others = policy.for_account(policy.clamp(state.samples() + fresh, now), account)
    ctx.merged = policy.merge(mine)
    ctx.active = bool(activity) and now - max(activity) < cfg.poll_minutes * 60

    # Network sources, the meter command and the targets' health, concurrently: a tick is as slow
    # as its slowest check.
    pin = load_pin(state_dir, now)
    near = any(s.percent >= cfg.resume for s in ctx.merged.values() if s.bucket in policy.HOT)
    need = prev.route != "plan" or pin is not None or near
    chain = [targets.get(name) for name in cfg.targets]
    target_ctx = {t.name: targets.TargetContext(now, need, dict(getattr(state, t.record_key) or {}) if t.record_key else {}) for t in chain}
    # The jobs import lazily; a dataclass defined in one thread while another is still importing
    # `typing` fails ("partially initialized module"), which is why typing is imported above.
    _stage("reading network sources and target health (" + ", ".join([r.name for r in remote] + [t.name for t in chain]) + ")")
    with ThreadPoolExecutor(max_workers=4) as pool:
        source_jobs = [(r, pool.submit(_read, r, replace(ctx, record=state.source(r.name)))) for r in remote]
        health_jobs = [pool.submit(t.health, cfg, target_ctx[t.name]) for t in chain]
    network = [s for r, job in source_jobs for s in keep(r, job.result())]
    health = tuple(job.result() for job in health_jobs)
    failing = info.get("unhealthy_targets") or {}  # a session's StopFailure on a target (sources/stopfailure.py)
    health = tuple(replace(h, healthy=False, reason=f"a session failed there ({failing[h.name]['error']}) at "
                                                      f"{clock(failing[h.name]['at'])}") if h.name in failing else h for h in health)
    if not dry_run and any(not (rec or {}).get("ok", True) for rec in records.values()) and records != state.sources:
        # A failure and its backoff are on disk before anything else can go wrong: a later crash
        # must not make the next tick call a rate-limited endpoint again at once.
        _stage("recording source failures")
        early = State.from_json(state.to_json())[0]
        early.sources = redact.redact_tree(records, redact.known_secrets(cfg))
        early.save(state_dir)
    snapshots = {t.record_key: target_ctx[t.name].record for t in chain if t.record_key}

    for source, observed, who in {(s.source, s.observed_at, s.account) for s in network}:
        line = samples.record(observed, source, {s.bucket: (s.percent, s.resets_at) for s in network
                                                 if (s.source, s.observed_at, s.account) == (source, observed, who)}, who)
        if not dry_run:
            samples.append(os.path.join(state_dir, paths.SAMPLES_JSONL), line)
    _stage("deciding")
    network_mine, network_others = policy.for_account(policy.clamp(network, now), account)
    merged = policy.merge(list(ctx.merged.values()) + network_mine)
    history = {}
    trace, _ = policy.for_account(samples.read(os.path.join(state_dir, paths.SAMPLES_JSONL), since=now - policy.HISTORY_WINDOW), account)
    for s in policy.clamp(trace, now):
        history.setdefault(s.bucket, []).append(s)
    extra = extra_usage(info, state)
    if extra.get("stored_api_key") and any(t.leaks_stored_api_key for t in chain):
        problems.append(STORED_KEY_PROBLEM.format(path=extra.get("path")))

    signals = policy.Signals(buckets=merged, history=history, targets=health, extra_usage_on=extra.get("enabled"), pin=pin,
                             confirmers=confirmers(enabled, records, cfg, now), plan_answered_at=info.get("plan_answered_at"))
    decision = policy.decide(prev, signals, policy.Policy.from_config(cfg), now)
    other = {}
    for s in others + network_others:
        other.setdefault(s.account, []).append(s)
    if other:
        decision.details["other_accounts"] = {who: {b: s.to_json() for b, s in policy.merge(got).items()} for who, got in other.items()}
    decision.details["account"] = account
    decision.details["confirmers"] = list(signals.confirmers)
    blind = blindness(enabled, records, merged)
    if blind:
        decision.details["blind"] = blind

    flipped = decision.route != prev.route
    route_reason = decision.reason if flipped or not prev.reason else prev.reason
    honoured = pin is not None and bool(decision.details.get("pin"))
    pin_text = ""
    if honoured:
        pin_text = pin.route + ("" if pin.until is None else " until " + clock(pin.until))
    shifts = decision.details.get("downshift") if decision.route == "plan" else None
    shift_text = targets.downshift_env(shifts)[1] if shifts else ""
    old_shift = (state.details or {}).get("downshift_text") or ""
    if shift_text:
        decision.details["downshift_text"] = shift_text
    new = State(
        decided_at=now, stale_after=cfg.stale_minutes * 60, route=decision.route, status=decision.status,
        reason=decision.reason, route_reason=route_reason, route_since=now if flipped or prev.since is None else prev.since,
        hot_bucket=decision.hot_bucket,
        pin=None if pin is None else {"route": pin.route, "until": pin.until, "force": pin.force, "honoured": honoured},
        buckets={b: s.to_json() for b, s in merged.items()}, details=decision.details, sources=records,
        budget=snapshots.get("budget", state.budget), extra_usage=extra, problems=problems + list(cfg.warnings),
        notified=state.notified, thresholds={"threshold": cfg.threshold, "resume": cfg.resume},
    )
    # What servers, the meter and files said is stored, logged and shown only redacted and printable.
    secrets = redact.known_secrets(cfg)
    new = State.from_json(redact.redact_tree(new.to_json(), secrets))[0]
    decision = replace(decision, reason=new.reason, details=new.details)
    route_reason = new.route_reason
    if dry_run:
        return decision, new.to_json(), False

    _stage("publishing the route")
    view = publishers.RouteView(decision.route, tuple(targets.route_env(decision.route, cfg, reason=route_reason, pin=pin_text,
                                                                        downshift=shifts)),
                                route_reason, pin_text)
    changed = any(publishers.publish_all(state_dir, view).values())
    if flipped or shift_text != old_shift:
        fsutil.append_jsonl(
            os.path.join(state_dir, paths.HISTORY_JSONL),
            {"at": now, "from": prev.route, "route": decision.route, "reason": decision.reason,
             "hot_bucket": decision.hot_bucket, "openrouter_usage": (new.budget.get("key") or {}).get("usage"),
             **({"downshift": shift_text or None, "downshift_before": old_shift or None} if shift_text != old_shift else {})},
        )
        log.info("route %s -> %s (%s)", prev.route, decision.route, decision.reason)
    _log_source_changes(state.sources, records)
    from spillover import notify

    _stage("notifying")
    new.notified = notify.dispatch(cfg, state.to_json(), new.to_json(), decision, now)
    _stage("saving state.json")
    new.save(state_dir)
    mark_fresh_until(state_dir, now + new.stale_after)
    if os.path.exists(path := os.path.join(state_dir, paths.SAMPLES_JSONL)) and os.path.getsize(path) > samples.MAX_BYTES:
        samples.compact(path)
    fsutil.remove_orphan_temp_files(state_dir, now)
    return decision, new.to_json(), changed


def _read(reader, ctx):
    """A source's SourceResult; an unexpected exception is that source's failure, not the tick's."""
    from spillover.errors import SourceError
    from spillover.sources.base import SourceResult

    try:
        return reader.read(ctx)
    except Exception as exc:  # noqa: BLE001 - one source's bug must not stop the route decision
        log.debug("%s failed", reader.name, exc_info=True)
        rec = ctx.record
        return SourceResult([], rec.failed(ctx.now, SourceError(f"unexpected {exc.__class__.__name__}: {exc}")) if rec else None)


CONFIRM_RECENT_POLLS = 3  # a confirming source is working when it produced a reading within this many poll intervals


def confirmers(enabled, records, cfg, now):
    """Names of the enabled sources that can read the plan while spilled and are working: their
    last read worked and produced a reading recently. Not which are enabled: an expired token
    confirms nothing."""
    recent = CONFIRM_RECENT_POLLS * cfg.poll_minutes * 60 + 300
    out = []
    for reader in enabled:
        rec = records.get(reader.name) or {}
        last = rec.get("last_reading_at")
        if getattr(reader, "can_confirm_reset", False) and rec.get("ok") is True and isinstance(last, (int, float)) \
                and now - last <= recent:
            out.append(reader.name)
    return tuple(out)


def blindness(enabled, records, merged):
    """Why spillover cannot see the plan at all, or None: every enabled source failing, or none
    ever produced a reading. Sources that merely have nothing new (Claude Code idle) are not blind."""
    if not enabled:
        return "no quota source is enabled (SPILLOVER_SOURCES is empty)"
    failing = [r.name for r in enabled if (records.get(r.name) or {}).get("ok") is False]
    if len(failing) == len(enabled):
        return "every enabled source is failing: " + "; ".join(f"{n}: {(records.get(n) or {}).get('error')}" for n in failing)
    # A transcript scan that read Claude Code's transcripts and found no wall is a reading too.
    watching = any((records.get(r.name) or {}).get("ok") and (records.get(r.name) or {}).get("last_activity") for r in enabled)
    if not merged and not watching and not any(isinstance((records.get(r.name) or {}).get("last_reading_at"), (int, float))
                                               for r in enabled):
        return "no source has produced a reading yet (" + ", ".join(r.name for r in enabled) + ")"
    return None


def extra_usage(info, state):
    """Whether Anthropic's own usage credits carry the plan past a wall (enabled None: unknown):
    the usage endpoint's answer, else ~/.claude.json, else what the last tick knew."""
    found = dict(info.get("extra_usage") or {})
    answer = info.get("oauth_extra_usage")
    if isinstance(answer, dict) and isinstance(answer.get("is_enabled"), bool):
        enabled = answer["is_enabled"]
        found.update(enabled=enabled, source="oauth",
                     reason=None if enabled else "extra usage is disabled (usage endpoint: extra_usage.is_enabled false)")
    elif found.get("enabled") is None and state.extra_usage:
        return state.extra_usage
    return found


def mark_fresh_until(state_dir, until):
    """Set fresh-until's mtime to when this decision goes stale (a shell compares it with `-ot`)."""
    fsutil.touch(os.path.join(state_dir, paths.FRESH_UNTIL), until)


def record_config_error(message):
    """A broken config stops the tick; keep the route, and record why for status and doctor.
    Returns whether the message is new (the tick logs it only then)."""
    state_dir = fsutil.ensure_state_dir()
    try:
        with Lock(state_dir):
            state, _ = State.load(state_dir)
            if state.config_error != message:
                state.config_error = message
                state.save(state_dir)
                return True
    except Busy:
        pass
    return False


def _log_source_changes(old, new):
    """One log line when a source starts failing, changes its error, or recovers: not one per tick."""
    for name, rec in new.items():
        before = (old.get(name) or {}).get("error")
        after = rec.get("error")
        if after and after != before:
            log.warning("%s: %s", name, after)
        elif before and not after and rec.get("ok"):
            log.warning("%s: recovered", name)


class _Module(types.ModuleType):
    """`spillover.tick(cfg, …)` is `spillover.tick.run(cfg, …)`: the package's public API."""

    def __call__(self, cfg, **kwargs):
        return run(cfg, **kwargs)


sys.modules[__name__].__class__ = _Module
