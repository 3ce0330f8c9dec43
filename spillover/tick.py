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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from spillover import fsutil, paths, policy, publishers, samples, sources, targets
from spillover.fmt import clock
from spillover.fsutil import Busy, Lock  # noqa: F401 (callers catch tick.Busy)
from spillover.sources.base import SourceContext
from spillover.state import State, load_pin, spill_intervals

log = logging.getLogger("spillover")

STORED_KEY_PROBLEM = ("Claude Code has an Anthropic API key stored in {path} (primaryApiKey): it sends it as x-api-key "
                      "even on the openrouter/gateway routes, to that target; remove it (claude /logout, then /login "
                      "with your Claude account)")


def run(cfg, *, now=None, dry_run=False, force_poll=False):
    """One tick. Returns (decision, state.json dict, changed). Raises Busy when another tick runs."""
    now = time.time() if now is None else now
    state_dir = fsutil.ensure_state_dir()
    with Lock(state_dir):
        return _run_locked(cfg, state_dir, now, dry_run, force_poll)


def _run_locked(cfg, state_dir, now, dry_run, force_poll):
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
    fresh = [s for r in local for s in keep(r, r.read(replace(ctx, record=state.source(r.name))))]
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
    with ThreadPoolExecutor(max_workers=4) as pool:
        source_jobs = [(r, pool.submit(r.read, replace(ctx, record=state.source(r.name)))) for r in remote]
        health_jobs = [pool.submit(t.health, cfg, target_ctx[t.name]) for t in chain]
    network = [s for r, job in source_jobs for s in keep(r, job.result())]
    health = tuple(job.result() for job in health_jobs)
    snapshots = {t.record_key: target_ctx[t.name].record for t in chain if t.record_key}

    for source, observed, who in {(s.source, s.observed_at, s.account) for s in network}:
        line = samples.record(observed, source, {s.bucket: (s.percent, s.resets_at) for s in network
                                                 if (s.source, s.observed_at, s.account) == (source, observed, who)}, who)
        if not dry_run:
            samples.append(os.path.join(state_dir, paths.SAMPLES_JSONL), line)
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
    if dry_run:
        return decision, new.to_json(), False

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

    new.notified = notify.dispatch(cfg, state.to_json(), new.to_json(), decision, now)
    new.save(state_dir)
    mark_fresh_until(state_dir, now + new.stale_after)
    if os.path.exists(path := os.path.join(state_dir, paths.SAMPLES_JSONL)) and os.path.getsize(path) > samples.MAX_BYTES:
        samples.compact(path)
    fsutil.remove_orphan_temp_files(state_dir, now)
    return decision, new.to_json(), changed


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
    path = os.path.join(state_dir, paths.FRESH_UNTIL)
    with open(path, "a"):
        pass
    os.utime(path, (until, until))


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
