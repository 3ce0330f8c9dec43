"""OpenRouter (design §5): the key's budget (`GET /key`), the account balance (`GET /credits`,
management key only), the model catalog (`GET /models`) and capped key creation (`POST /keys`).

Every function returns plain data; `guard()` is the pure budget check the decision relies on.
"""

import re
from dataclasses import asdict, dataclass
from datetime import datetime

from spillover.errors import SourceError
from spillover.policy import TargetHealth
from spillover.redact import printable
from spillover.sanitize import number as finite
from spillover.targets.base import Target, bearer_env
from spillover.times import parse_time


@dataclass(frozen=True)
class KeyInfo:
    label: str
    limit: float | None
    limit_remaining: float | None
    limit_reset: str | None
    usage: float | None
    usage_daily: float | None
    usage_weekly: float | None
    usage_monthly: float | None
    is_free_tier: bool
    is_management_key: bool
    expires_at: float | None
    disabled: bool = False

    def to_json(self):
        return asdict(self)


@dataclass(frozen=True)
class Credits:
    total_credits: float
    total_usage: float

    @property
    def balance(self):
        return self.total_credits - self.total_usage


def _bad(endpoint, name, value):
    shown = repr(value)
    return SourceError(f"OpenRouter {endpoint}: field {name}={shown[:40] + '…' if len(shown) > 40 else shown} is not a number")


def _number(data, name, *, required=False):
    value = data.get(name)
    if value is None and not required:
        return None
    number = finite(value)
    if number is None:
        raise _bad("/key", name, value)
    return number


def parse_key(payload):
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise SourceError("OpenRouter /key: answer has no data object")
    reset = data.get("limit_reset")
    return KeyInfo(
        label=printable(data.get("label") or ""),
        limit=_number(data, "limit"),
        limit_remaining=_number(data, "limit_remaining"),
        limit_reset=reset if isinstance(reset, str) and re.fullmatch(r"[A-Za-z0-9_-]{1,32}", reset) else None,  # daily, weekly, monthly
        usage=_number(data, "usage"),
        usage_daily=_number(data, "usage_daily"),
        usage_weekly=_number(data, "usage_weekly"),
        usage_monthly=_number(data, "usage_monthly"),
        is_free_tier=bool(data.get("is_free_tier", False)),
        is_management_key=bool(data.get("is_management_key", data.get("is_provisioning_key", False))),
        expires_at=parse_time(data.get("expires_at")),
        disabled=bool(data.get("disabled", False)),
    )


def parse_credits(payload, key=None):
    """Credits, or None when the balance is unknown (a 0/0 answer to a normal key, design §5)."""
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, dict):
        raise SourceError("OpenRouter /credits: answer has no data object")
    total, used = data.get("total_credits"), data.get("total_usage")
    for name, value in (("total_credits", total), ("total_usage", used)):
        if finite(value) is None:
            raise _bad("/credits", name, value)
    if total == 0 and used == 0 and (key is None or (key.usage or 0) > 0 or not key.is_management_key):
        return None
    return Credits(float(total), float(used))


def _headers(key):
    return {"Authorization": f"Bearer {key}", "Accept": "application/json", "X-Title": "spillover"}


def fetch_key(cfg, session=None):
    from spillover import http

    _, _, payload = http.get_json(
        f"{cfg.openrouter_api_url}/key", headers=_headers(cfg.openrouter_key), timeout=cfg.timeout,
        secrets=cfg.secrets, name="OpenRouter /key", session=session,
    )
    return parse_key(payload)


def fetch_credits(cfg, key=None, session=None):
    """The account balance with the management key; None when unknown (no key, 403, 0/0)."""
    from spillover import http

    if not cfg.openrouter_management_key:
        return None
    try:
        _, _, payload = http.get_json(
            f"{cfg.openrouter_api_url}/credits", headers=_headers(cfg.openrouter_management_key), timeout=cfg.timeout,
            secrets=cfg.secrets, name="OpenRouter /credits", session=session,
        )
    except SourceError as exc:
        if exc.status == 403:
            return None  # not a management key after all: balance unknown
        raise
    return parse_credits(payload, key)


def fetch_models(cfg, session=None):
    """Anthropic models in the catalog: [{id, name, prompt, completion, context_length}] ($/token as floats)."""
    from spillover import http

    _, _, payload = http.get_json(
        f"{cfg.openrouter_api_url}/models", headers={"Accept": "application/json"}, timeout=max(cfg.timeout, 10),
        secrets=cfg.secrets, name="OpenRouter /models", session=session,
    )
    items = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise SourceError("OpenRouter /models: answer has no data list")
    models = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        pricing = item.get("pricing") if isinstance(item.get("pricing"), dict) else {}
        try:
            prompt = float(pricing.get("prompt"))
            completion = float(pricing.get("completion"))
        except (TypeError, ValueError):
            prompt = completion = None
        context = item.get("context_length")
        models.append({
            "id": printable(item["id"]),
            "name": printable(item.get("name") or item["id"]),
            "prompt": prompt,
            "completion": completion,
            "context_length": context if isinstance(context, int) and not isinstance(context, bool) else None,
        })
    return models


_KEY_SHAPE = re.compile(r"sk-or-[A-Za-z0-9_\-]{16,256}")


def create_key(cfg, *, name, limit, reset, session=None):
    """POST /keys with the management key: a new inference key capped server-side. Returns (key, data)."""
    from spillover import http

    body = {"name": name, "limit": limit}
    if reset:
        body["limit_reset"] = reset
    _, _, payload = http.send_json(
        "POST", f"{cfg.openrouter_api_url}/keys", json_body=body, headers=_headers(cfg.openrouter_management_key),
        timeout=cfg.timeout, secrets=cfg.secrets, name="OpenRouter /keys", session=session,
    )
    key = payload.get("key") if isinstance(payload, dict) else None
    if not isinstance(key, str) or not key.startswith("sk-or-"):
        raise SourceError("OpenRouter /keys: answer has no key")
    if not _KEY_SHAPE.fullmatch(key):
        # Stored as is, a key with a newline or a quote would break the config file it goes into.
        raise SourceError("OpenRouter /keys: the key in the answer is malformed (not stored)")
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    return key, data


def money(value):
    return "unknown" if value is None else f"${value:,.2f}"


def guard(cfg, key, credits, error=None, now=None):
    """TargetHealth of OpenRouter from the fetched budget: a pure function of its inputs."""
    if not cfg.openrouter_key:
        return TargetHealth("openrouter", False, "OPENROUTER_API_KEY is not set")
    if error is not None:
        return TargetHealth("openrouter", False, str(error))
    if key is None:
        return TargetHealth("openrouter", False, "key budget unknown (no answer from /key yet)")
    floor = cfg.min_balance
    if key.is_management_key:
        return TargetHealth("openrouter", False, "OPENROUTER_API_KEY is a management key; it cannot run inference")
    if key.disabled:
        return TargetHealth("openrouter", False, "the key is disabled on OpenRouter")
    if key.expires_at is not None and now is not None and now >= key.expires_at:
        return TargetHealth("openrouter", False, f"the key expired at {datetime.utcfromtimestamp(key.expires_at):%Y-%m-%d %H:%M} UTC")
    details = {"usage_daily": key.usage_daily, "usage_monthly": key.usage_monthly, "limit_reset": key.limit_reset}
    remaining = key.limit_remaining
    if remaining is not None and remaining < floor:
        window = f" ({key.limit_reset})" if key.limit_reset else ""
        return TargetHealth("openrouter", False, f"key remaining {money(remaining)}{window} < floor {money(floor)}", remaining, details)
    balance = credits.balance if credits is not None else None
    if balance is not None and balance < floor:
        return TargetHealth("openrouter", False, f"account balance {money(balance)} < floor {money(floor)}", balance, details)
    if cfg.daily_cap is not None and key.usage_daily is not None and key.usage_daily >= cfg.daily_cap:
        return TargetHealth("openrouter", False, f"spent {money(key.usage_daily)} today ≥ daily cap {money(cfg.daily_cap)}", remaining, details)
    if cfg.monthly_cap is not None and key.usage_monthly is not None and key.usage_monthly >= cfg.monthly_cap:
        return TargetHealth(
            "openrouter", False, f"spent {money(key.usage_monthly)} this month ≥ monthly cap {money(cfg.monthly_cap)}", remaining, details
        )
    parts = ["key unlimited" if remaining is None else f"key remaining {money(remaining)}"]
    if balance is not None:
        parts.append(f"balance {money(balance)}")
    if key.usage_daily is not None:
        parts.append(f"spent today {money(key.usage_daily)}")
    budget = min(v for v in (remaining, balance) if v is not None) if (remaining, balance) != (None, None) else None
    return TargetHealth("openrouter", True, ", ".join(parts), budget, details)


# --- the target -------------------------------------------------------------------------------

# How old an OpenRouter budget snapshot may be, by use (seconds).
BUDGET_MAX_AGE = 600  # a snapshot older than this is named as such while /key is unreachable
BUDGET_IDLE_EVERY = 600  # between reads while nowhere near a wall
BUDGET_RECENT = 900  # trusted by doctor without a live read


def read_budget(cfg, cache, now, need):
    """OpenRouter's key budget and balance (the state.json `budget` snapshot), reusing the recent
    snapshot `cache` when not needed or when /key is unreachable."""
    from concurrent.futures import ThreadPoolExecutor

    cache = dict(cache or {})
    last = cache.get("attempted_at") if cache.get("error") else cache.get("fetched_at")
    if not need and isinstance(last, (int, float)) and now - last < BUDGET_IDLE_EVERY:
        return cache  # far from a wall: a read every few minutes, failing or not, is enough
    with ThreadPoolExecutor(max_workers=2) as pool:  # /key and /credits at once: one timeout, not two
        key_job = pool.submit(fetch_key, cfg)
        credits_job = pool.submit(fetch_credits, cfg)
    try:
        key = key_job.result()
        try:
            credits = credits_job.result()
            credits_error = None
        except SourceError as exc:
            credits, credits_error = None, str(exc)
    except SourceError as exc:
        cache.update(error=str(exc), error_kind=exc.kind, error_status=exc.status, attempted_at=now)
        return cache
    return {
        "fetched_at": now,
        "attempted_at": now,
        "key": key.to_json(),
        "credits": None if credits is None else {"total_credits": credits.total_credits, "total_usage": credits.total_usage},
        "credits_error": credits_error,
        "error": None,
    }


def snapshot(budget):
    """(KeyInfo or None, Credits or None) of a budget snapshot; one from another version, or
    damaged, is as if there were none."""
    try:
        key = KeyInfo(**budget["key"]) if budget.get("key") else None
        credits = Credits(**budget["credits"]) if budget.get("credits") else None
    except TypeError:
        return None, None
    return key, credits


def budget_health(cfg, budget, now):
    """TargetHealth from a budget snapshot (a pure function of its inputs)."""
    if not cfg.openrouter_key:
        return guard(cfg, None, None)
    key, credits = snapshot(budget)
    error = budget.get("error")
    if error:
        # Only OpenRouter refusing the key (401/402/403) says the target is unusable; a hang,
        # a 5xx, a 429 or a garbled answer says nothing new, and a failed fetch never flips the
        # route: the last snapshot's verdict stands however long the outage lasts (an exhausted
        # key in it still moves the route).
        transient = budget.get("error_kind") not in ("auth", "payment", "forbidden")
        age = now - (budget.get("fetched_at") or 0)
        if transient and key is not None:
            health = guard(cfg, key, credits, now=now)
            return TargetHealth(health.name, health.healthy, f"{health.reason} (as of {age / 60:.0f} min ago; {error})", health.remaining, health.details)
        return guard(cfg, key, credits, error=error, now=now)
    return guard(cfg, key, credits, now=now)


def _doctor_fix(exc):
    status = getattr(exc, "status", None)
    if status == 401:
        return "the key is invalid or revoked: create one at https://openrouter.ai/settings/keys and set OPENROUTER_API_KEY"
    if status == 402:
        return "the account is out of credits: add some at https://openrouter.ai/credits"
    if status == 403:
        return "the key's own limit is used up: raise it at https://openrouter.ai/settings/keys"
    return "check your network and OPENROUTER_API_URL; `spillover budget` retries"


class OpenRouter(Target):
    """The openrouter target (the default): OpenRouter's Anthropic-compatible endpoint, guarded
    by the key's budget and the account balance."""

    name = "openrouter"
    record_key = "budget"
    leaks_stored_api_key = True

    def configured(self, cfg):
        return (True, "") if cfg.openrouter_key else (False, "OPENROUTER_API_KEY is not set")

    def env(self, cfg):
        return bearer_env(cfg.openrouter_base_url, cfg.openrouter_key, cfg.opus_model, cfg.sonnet_model, cfg.haiku_model,
                          cfg.subagent_model)

    def secrets(self, cfg):
        return tuple(v for v in (cfg.openrouter_key, cfg.openrouter_management_key) if v)

    def health(self, cfg, ctx):
        if cfg.openrouter_key:
            ctx.record = read_budget(cfg, ctx.record, ctx.now, ctx.need)
        return budget_health(cfg, ctx.record, ctx.now)

    def doctor(self, report, cfg, state, now):
        from spillover.doctor import FAIL, OK, check_models
        from spillover.fmt import ago
        from spillover.redact import mask, redact

        if not cfg.openrouter_key:
            report.line(FAIL, "openrouter", "OPENROUTER_API_KEY is not set", f"add OPENROUTER_API_KEY='sk-or-v1-…' to {cfg.path}")
            return
        budget = state.budget
        key = credits = None
        source = ""
        if budget.get("key") and budget.get("error") is None and now - (budget.get("fetched_at") or 0) < BUDGET_RECENT:
            key, credits = snapshot(budget)
            if key is not None:
                source = f" (as of {ago(now - budget['fetched_at'])})"
        if key is None:
            try:
                key = fetch_key(cfg)
            except SourceError as exc:
                report.line(FAIL, "openrouter", f"key {mask(cfg.openrouter_key)}: {redact(exc, cfg.secrets)}", _doctor_fix(exc))
                return
            source = " (just read)"
        health = guard(cfg, key, credits, now=now)
        if health.healthy:
            report.line(OK, "openrouter", f"key {mask(cfg.openrouter_key)} valid: {health.reason}{source}")
        else:
            report.line(FAIL, "openrouter", f"key {mask(cfg.openrouter_key)}: {health.reason}{source}",
                        "top up at https://openrouter.ai/credits, raise the key's limit, or lower SPILLOVER_MIN_BALANCE")
        check_models(report, cfg)


TARGET = OpenRouter()
