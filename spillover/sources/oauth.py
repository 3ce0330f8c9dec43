"""The OAuth usage endpoint (design §4.1): read-only, rarely, never refreshing the token.

Claude Code owns the token: refreshing it here would rotate the refresh token under Claude Code's
feet and log it out. An expired token makes the plan quota "unknown" until Claude Code runs again.
"""

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

from spillover import jsonsafe
from spillover.errors import SourceError
from spillover.policy import Sample
from spillover.sanitize import number as sane
from spillover.sources.base import Source, SourceResult
from spillover.times import parse_time  # noqa: F401 (also used by the command source)

BETA = "oauth-2025-04-20"
FALLBACK_CLIENT_VERSION = "2.1.0"
# The Claude Code versions the tests cover (tests/e2e/package.json pins both; README "Supported
# Claude Code versions" states them): doctor flags an older client and warns on a newer one.
OLDEST_SUPPORTED_CLIENT = "2.1.197"
NEWEST_TESTED_CLIENT = "2.1.332"


def version_key(version):
    """(2, 1, 197) of "2.1.197" (a pre-release suffix ignored), or None."""
    parts = re.match(r"(\d+)\.(\d+)\.(\d+)", str(version or ""))
    return tuple(int(p) for p in parts.groups()) if parts else None
EXPIRY_MARGIN = 300  # seconds; Claude Code itself treats a token this close to expiry as expired
KEYCHAIN_SERVICE = "Claude Code-credentials"
CREDENTIALS_MAX_BYTES = 64 * 1024  # a real .credentials.json is well under 1 KiB
# Flat fields of the answer; codename buckets (seven_day_omelette, seven_day_cowork,
# seven_day_oauth_apps, …) are ignored.
FLAT_BUCKETS = ("five_hour", "seven_day", "seven_day_opus", "seven_day_sonnet")
# limits[] kinds -> bucket; weekly_scoped is named after its model (model_bucket).
LIMIT_KINDS = {"session": "five_hour", "weekly_all": "seven_day"}
MAX_SCOPED = 16  # weekly_scoped entries taken from one answer (a lying server sends thousands)
SEVERITIES = ("normal", "warning", "critical")


def model_bucket(display_name):
    """The bucket of a per-model weekly cap: `seven_day_` + the model's display name, lowercased,
    every run of other characters than a-z0-9 as one `_` ("Fable" -> seven_day_fable); None
    when nothing is left."""
    name = re.sub(r"[^a-z0-9]+", "_", str(display_name or "").lower()).strip("_")[:32].strip("_")
    return f"seven_day_{name}" if name else None


@dataclass(frozen=True)
class Credentials:
    access_token: str
    expires_at: float | None  # epoch seconds
    scopes: tuple
    subscription: str | None
    origin: str  # file path or "macOS keychain"

    def expired(self, now):
        return self.expires_at is not None and now >= self.expires_at - EXPIRY_MARGIN


def _parse_credentials(text, origin):
    try:
        data = jsonsafe.loads(text)
    except ValueError:
        raise SourceError(f"{origin}: not valid JSON", kind="auth") from None
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    if not isinstance(oauth, dict) or not isinstance(oauth.get("accessToken"), str) or not oauth["accessToken"]:
        raise SourceError(f"{origin}: no claudeAiOauth.accessToken (log in with `claude`, then /login)", kind="auth")
    expires = oauth.get("expiresAt")
    scopes = oauth.get("scopes") if isinstance(oauth.get("scopes"), list) else []
    return Credentials(
        access_token=oauth["accessToken"],
        expires_at=float(expires) / 1000 if isinstance(expires, (int, float)) else None,
        scopes=tuple(str(s) for s in scopes),
        subscription=oauth.get("subscriptionType") if isinstance(oauth.get("subscriptionType"), str) else None,
        origin=origin,
    )


def credentials_account(creds, claude_dirs):
    """The account (config dir) whose token made a reading: the dir of its credentials file."""
    from spillover import paths

    if creds.origin.endswith(".credentials.json"):
        return paths.account(os.path.dirname(creds.origin))
    return paths.account(claude_dirs[0]) if claude_dirs else None


def credential_files(claude_dirs):
    return [os.path.join(d, ".credentials.json") for d in claude_dirs]


def load_credentials(claude_dirs):
    """Credentials from the first `.credentials.json`, else (on macOS) the keychain item."""
    for path in credential_files(claude_dirs):
        if os.path.exists(path):
            try:
                return _parse_credentials(jsonsafe.read_file(path, CREDENTIALS_MAX_BYTES), path)
            except OSError as exc:
                reason = exc.strerror or str(exc).removeprefix(f"{path}: ")
                raise SourceError(f"{path}: cannot be read ({reason})", kind="auth") from None
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["/usr/bin/security", "find-generic-password", "-s", KEYCHAIN_SERVICE, "-w"],
                capture_output=True, text=True, timeout=5, check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            out = None
        if out is not None and out.returncode == 0 and out.stdout.strip():
            return _parse_credentials(out.stdout.strip(), "macOS keychain")
    where = " or ".join(credential_files(claude_dirs))
    raise SourceError(f"no Claude Code credentials in {where} (run `claude` and log in)", kind="auth")


def claude_version(cache=None):
    """The installed Claude Code version for the User-Agent (the endpoint throttles other agents).

    `cache` is a dict kept in state.json: the version is re-read only when the binary changes,
    since starting the ~250 MB `claude` binary costs more than the request itself.
    """
    from shutil import which

    # cron's PATH is /usr/bin:/bin: also look where Claude Code's installers put it.
    home = os.path.expanduser("~")
    search = os.pathsep.join([os.environ.get("PATH", ""), os.path.join(home, ".local", "bin"),
                              os.path.join(home, ".claude", "local"), "/usr/local/bin", "/opt/homebrew/bin"])
    exe = which("claude", path=search)
    stamp = None
    if exe:
        try:
            stamp = f"{os.path.realpath(exe)}:{os.stat(exe).st_mtime_ns}"
        except OSError:
            stamp = exe
    if cache is not None and cache.get("stamp") == stamp and cache.get("version"):
        return cache["version"]
    version = _ask_version(exe) if exe else FALLBACK_CLIENT_VERSION
    if cache is not None:
        cache.update(stamp=stamp, version=version)
    return version


def _ask_version(exe):
    if exe:
        try:
            out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=5, check=False)
            word = out.stdout.split()[0] if out.stdout.split() else ""
            if word[:1].isdigit():
                return word
        except (OSError, subprocess.TimeoutExpired):
            pass
    return FALLBACK_CLIENT_VERSION


def percent(value, *, fraction_ok=False):
    """A utilization as percent 0-100 (a bit over 100 is kept: the headers report 1.02).

    The endpoint speaks percent; a lying server that sends a fraction (0.42) is recognised by the
    caller (fraction_ok), see `parse_usage`.
    """
    number = sane(value, strings=True, minimum=0, maximum=1000)
    if number is None:
        return None
    if fraction_ok:
        number *= 100
    return min(number, 150.0)


def _fractional(raw, previous):
    """Whether an answer gives fractions (0.96) where percent (96) is the contract.

    Only provable against an earlier reading of the same window: utilization never falls within
    a window, so every value ≤ 1 after a reading above 1 can only be a fraction. Without such a
    reading, low values are taken as the percent they claim to be (they flip nothing).
    """
    from spillover.policy import SAME_WINDOW_SLACK

    numbers = [v for _, v, _ in raw if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers or not all(0 <= v <= 1 for v in numbers) or not any(0 < v < 1 for v in numbers):
        return False
    for bucket, _, resets in raw:
        before, resets_at = (previous or {}).get(bucket), parse_time(resets)
        if before is not None and before.resets_at is not None and resets_at is not None \
                and abs(before.resets_at - resets_at) <= SAME_WINDOW_SLACK and before.percent > 1:
            return True
    return False


def usage_entries(data):
    """[(bucket, utilization, resets_at, severity)] of a usage answer: the `limits[]` entries, and
    each flat field whose bucket limits[] does not give (the same bucket is never counted twice:
    a non-null limits[] entry wins over the flat field)."""
    found = {}
    limits = data.get("limits")
    scoped = 0
    for entry in limits if isinstance(limits, list) else ():
        if not isinstance(entry, dict):
            continue
        kind = entry.get("kind")
        bucket = LIMIT_KINDS.get(kind) if isinstance(kind, str) else None
        if kind == "weekly_scoped" and scoped < MAX_SCOPED:
            scoped += 1
            scope = entry.get("scope") if isinstance(entry.get("scope"), dict) else {}
            model = scope.get("model") if isinstance(scope.get("model"), dict) else {}
            bucket = model_bucket(model.get("display_name") or model.get("id"))
        value = entry.get("percent", entry.get("utilization"))
        if bucket and value is not None and bucket not in found:
            severity = entry.get("severity") if entry.get("severity") in SEVERITIES else None
            found[bucket] = (bucket, value, entry.get("resets_at"), severity)
    for bucket in FLAT_BUCKETS:
        entry = data.get(bucket)
        if bucket not in found and isinstance(entry, dict) and entry.get("utilization") is not None:
            found[bucket] = (bucket, entry.get("utilization"), entry.get("resets_at"), None)
    return list(found.values())


def severities(data):
    """{bucket: severity} of the limits[] entries that carry one (normal, warning, critical)."""
    if not isinstance(data, dict):
        return {}
    return {bucket: sev for bucket, _, _, sev in usage_entries(data) if sev}


def parse_usage(data, observed_at, source="oauth", previous=None, account=None):
    """Samples from a usage answer: the flat buckets and the newer `limits[]` array.

    Raises SourceError when the answer has no recognisable bucket at all (a lying server).
    """
    if not isinstance(data, dict):
        raise SourceError("usage endpoint: answer is not a JSON object")
    raw = [(bucket, value, resets) for bucket, value, resets, _ in usage_entries(data)]
    fraction = _fractional(raw, previous)
    samples, problems = [], []
    for bucket, value, resets in raw:
        pct = percent(value, fraction_ok=fraction)
        if pct is None:
            problems.append(f"{bucket}.utilization={value!r} is not a number")
            continue
        # At 100% the usage endpoint reports a wall: it holds until its reset (policy.merge).
        samples.append(Sample(bucket, pct, observed_at, source, parse_time(resets), wall=pct >= 100.0, account=account))
    if not samples:
        if problems:
            raise SourceError("usage endpoint: " + "; ".join(problems))
        if not any(k in data for k in FLAT_BUCKETS + ("limits",)):
            raise SourceError("usage endpoint: answer has none of five_hour, seven_day, limits")
    return samples


def fetch(cfg, now=None, version_cache=None, previous=None):
    """Read the usage endpoint once. Returns (samples, extra_usage dict or None, credentials,
    {bucket: severity})."""
    from spillover import http

    now = time.time() if now is None else now
    creds = load_credentials(cfg.claude_dirs)
    if creds.expired(now):
        raise SourceError(
            "Claude Code's OAuth token expired; spillover never refreshes it: run `claude` once to renew it",
            kind="expired",
        )
    if creds.scopes and "user:profile" not in creds.scopes:
        raise SourceError("the OAuth token lacks the user:profile scope needed to read usage (run `claude` and /login)", kind="auth")
    headers = {
        "Authorization": f"Bearer {creds.access_token}",
        "anthropic-beta": BETA,
        "User-Agent": f"claude-code/{claude_version(version_cache)}",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    _, _, data = http.get_json(
        cfg.usage_url, headers=headers, timeout=cfg.timeout, secrets=(creds.access_token,) + cfg.secrets, name="usage endpoint"
    )
    samples = parse_usage(data, now, previous=previous, account=credentials_account(creds, cfg.claude_dirs))
    extra = data.get("extra_usage") if isinstance(data, dict) and isinstance(data.get("extra_usage"), dict) else None
    return samples, extra, creds, severities(data)


# --- when to poll (pure, table-tested) -------------------------------------------------------

RATE_LIMIT_LADDER = (75, 180, 300, 600, 1200, 1800)  # seconds; claude-meter's observed-safe ladder
ERROR_LADDER = (60, 120, 300, 600)
RETRY_AFTER_CUSHION = 300  # retrying exactly at Retry-After earned peers another hour of 429s
RESET_CUSHION = 60  # the confirming poll comes this long after a reset: the server has rolled the window


def backoff_seconds(step, kind, retry_after=None):
    """Delay after the `step`-th consecutive failure (0-based) of the usage endpoint."""
    ladder = RATE_LIMIT_LADDER if kind == "rate_limited" else ERROR_LADDER
    delay = ladder[min(step, len(ladder) - 1)]
    if retry_after is not None:
        delay = max(delay, retry_after + RETRY_AFTER_CUSHION)
    return delay


def oauth_due(now, *, last_attempt_at, backoff_until, five_hour, policy, poll_seconds, spilled, active, watch=None):
    """Whether the tick should call the usage endpoint now, and why (a pure function).

    five_hour is the merged five_hour sample (any source) or None; active says Claude Code was
    used recently (transcripts or statusline moved); watch is the merged sample of the bucket that
    caused the spill (None: five_hour). While spilled, the confirming poll comes RESET_CUSHION
    after that bucket's reset, whatever the spacing, so the route is back within ~2 minutes.
    """
    if backoff_until is not None and now < backoff_until:
        return False, "backing off"
    since = None if last_attempt_at is None else now - last_attempt_at
    if since is None:
        return True, "first poll"
    watched = watch if watch is not None else five_hour
    confirm_at = None
    if spilled and watched is not None and watched.resets_at is not None:
        confirm_at = watched.resets_at + min(RESET_CUSHION, poll_seconds)  # POLL_MINUTES=0: every tick
        if now >= confirm_at:
            if last_attempt_at < confirm_at:
                return True, "confirming the reset"
            return since >= min(poll_seconds, 300), "confirming the reset"
        if now >= watched.resets_at:
            return False, "waiting for the server to roll the window"
    if five_hour is not None and five_hour.source != "oauth" and now - five_hour.observed_at < poll_seconds / 2:
        return False, f"fresher signal from {five_hour.source}"
    reset_passed = five_hour is not None and five_hour.resets_at is not None and now >= five_hour.resets_at
    if spilled and reset_passed:
        return since >= min(poll_seconds, 300), "confirming the reset"
    if spilled and five_hour is not None and five_hour.resets_at is not None:
        # A spilled plan cannot cool down before its reset: polling sooner learns nothing, and a
        # poll within one spacing of the confirming poll would spend the hour's budget twice.
        room = float("inf") if confirm_at is None else confirm_at - now
        return since >= poll_seconds and room >= poll_seconds, "spilled until the reset"
    if five_hour is not None and five_hour.percent >= policy.threshold - 10 and not reset_passed:
        return since >= poll_seconds / 2, "close to the wall"
    near = five_hour is not None and five_hour.percent >= policy.resume
    if near or active:
        return since >= poll_seconds, "near a wall" if near else "Claude Code is active"
    return since >= 3 * poll_seconds, "idle"


# --- the source -------------------------------------------------------------------------------


class OAuthSource(Source):
    """The usage endpoint, read with Claude Code's own OAuth token, on the `oauth_due` schedule."""

    name = "oauth"
    can_confirm_reset = True

    def read(self, ctx):
        from spillover.policy import FIVE_HOUR, Policy

        cfg, now, rec = ctx.cfg, ctx.now, ctx.record
        due, why = oauth_due(
            now,
            last_attempt_at=rec.last_attempt_at,
            backoff_until=rec.backoff_until,
            five_hour=ctx.merged.get(FIVE_HOUR),
            policy=Policy.from_config(cfg),
            poll_seconds=cfg.poll_minutes * 60,
            spilled=ctx.spilled,
            active=ctx.active,
            watch=ctx.merged.get(ctx.watch) if ctx.watch else None,
        )
        if rec.kind == "expired" and not ctx.force:
            # An expired token stays expired until Claude Code renews the credentials file.
            files = [p for p in credential_files(cfg.claude_dirs) if os.path.exists(p)]
            mtime = max((os.path.getmtime(p) for p in files), default=None)
            # No file (macOS keychain): nothing to watch, so the usual schedule decides.
            if mtime is not None and mtime <= (rec.last_attempt_at or 0):
                rec.due = "waiting for Claude Code to renew its token"
                return SourceResult([], rec)
            due = due or mtime is not None
        # --poll asks for a read now, but never inside a backoff: the endpoint rate-limits hard.
        if not due and (not ctx.force or why == "backing off"):
            rec.due = why
            return SourceResult([], rec)
        try:
            version_cache = dict(rec.extra.get("client") or {})
            got, extra, _, severity = fetch(cfg, now, version_cache, previous=ctx.merged)
            rec.extra["client"] = version_cache
        except SourceError as exc:
            step = int(rec.failures or 0)
            rec.failed(now, exc, status=exc.status)
            if exc.kind in ("expired", "auth"):
                rec.backoff_until = None
            else:
                kind = "rate_limited" if exc.status == 429 else "error"
                rec.backoff_until = now + backoff_seconds(step, kind, exc.retry_after)
            rec.due = why
            return SourceResult([], rec)
        rec.succeeded(now, status=200, severity=severity)
        rec.backoff_until, rec.due = None, why
        return SourceResult(got, rec, {"oauth_extra_usage": extra})


READER = OAuthSource()
