"""`spillover budget`, `spillover models` and `spillover setup openrouter-key`: live OpenRouter reads.

These call OpenRouter directly (never the tick's cache) and print secrets only masked; the one
exception is the key `setup openrouter-key` creates, shown once so the user can keep a copy.
"""

import difflib
import json
import sys
import time
from datetime import datetime, timedelta, timezone

from spillover.errors import SourceError, SpilloverError
from spillover.redact import mask, redact
from spillover.targets import openrouter
from spillover.targets.openrouter import money

ANTHROPIC_PREFIXES = ("anthropic/", "~anthropic/")
MODEL_KEYS = (
    ("SPILLOVER_FABLE_MODEL", "fable_model"),
    ("SPILLOVER_OPUS_MODEL", "opus_model"),
    ("SPILLOVER_SONNET_MODEL", "sonnet_model"),
    ("SPILLOVER_HAIKU_MODEL", "haiku_model"),
    ("SPILLOVER_SUBAGENT_MODEL", "subagent_model"),
)
# The gateway's model keys are the gateway's own names, not OpenRouter's: never checked here.


def _need_key(cfg):
    if not cfg.openrouter_key:
        raise SpilloverError(
            "OPENROUTER_API_KEY is not set: put it in " + cfg.path
            + " (or create a capped one: spillover setup openrouter-key --limit 20)"
        )


# --- budget -----------------------------------------------------------------------------------


def next_reset(window, now):
    """When a key limit window restarts: midnight UTC; weeks run Monday to Sunday (OpenRouter)."""
    if window not in ("daily", "weekly", "monthly"):
        return None
    today = datetime.fromtimestamp(now, timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    if window == "daily":
        nxt = today + timedelta(days=1)
    elif window == "weekly":
        nxt = today + timedelta(days=7 - today.weekday())
    else:
        nxt = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    return nxt.timestamp()


def _label(cfg, key):
    # OpenRouter's label is a masked key (sk-or-v1-au7...890) unless the user named it; show ours.
    label = key.label or ""
    return mask(cfg.openrouter_key) if not label or label.startswith("sk-") else redact(label, cfg.secrets)


def collect(cfg, now=None):
    """Everything `budget` shows, as one JSON-ready dict. Raises SpilloverError when /key fails."""
    now = time.time() if now is None else now
    _need_key(cfg)
    key = openrouter.fetch_key(cfg)
    account, account_note = None, None
    if not cfg.openrouter_management_key:
        account_note = "unknown (set OPENROUTER_MANAGEMENT_KEY to read the account balance)"
    else:
        try:
            credits = openrouter.fetch_credits(cfg, key)
        except SourceError as exc:
            credits, account_note = None, f"unknown ({exc})"
        if credits is not None:
            account = {"total_credits": credits.total_credits, "total_usage": credits.total_usage, "balance": credits.balance}
        elif account_note is None:
            account_note = "unknown (OpenRouter did not give a balance for OPENROUTER_MANAGEMENT_KEY: is it a management key?)"
    known = [v for v in (key.limit_remaining, account and account["balance"]) if v is not None]
    from spillover import catalog, fsutil

    state_dir = fsutil.ensure_state_dir()
    catalog.refresh(cfg, state_dir, now)
    models = catalog.for_config(cfg, state_dir).to_json()
    need, why = openrouter.floor(cfg, models)
    health = openrouter.guard(cfg, key, None if account is None else openrouter.Credits(account["total_credits"], account["total_usage"]),
                              now=now, models=models)
    return {
        "fetched_at": now,
        "key": {
            "label": _label(cfg, key),
            "limit": key.limit,
            "limit_remaining": key.limit_remaining,
            "limit_reset": key.limit_reset,
            "next_reset": next_reset(key.limit_reset, now),
            "usage": key.usage,
            "usage_daily": key.usage_daily,
            "usage_weekly": key.usage_weekly,
            "usage_monthly": key.usage_monthly,
            "is_free_tier": key.is_free_tier,
            "disabled": key.disabled,
            "expires_at": key.expires_at,
        },
        "account": account,
        "account_note": account_note,
        "budget": min(known) if known else None,
        "guard": {"healthy": health.healthy, "reason": redact(health.reason, cfg.secrets)},
        "min_balance": cfg.min_balance,
        "floor": round(need, 4),
        "floor_why": why,
        "models": models,
        "daily_cap": cfg.daily_cap,
        "monthly_cap": cfg.monthly_cap,
    }


def _utc(epoch):
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def run(cfg, alert_below=None, as_json=False, out=None, err=None):
    out, err = out or sys.stdout, err or sys.stderr
    from spillover.redact import known_secrets, redact_tree

    data = redact_tree(collect(cfg), known_secrets(cfg))  # a /key label may echo the key itself
    alert = None
    if alert_below is not None:
        data["alert_below"] = alert_below
        data["alert"] = data["budget"] is not None and data["budget"] < alert_below
        if data["alert"]:
            alert = f"ALERT: OpenRouter budget {money(data['budget'])} < threshold {money(alert_below)}"
    if as_json:
        out.write(json.dumps(data, indent=1, sort_keys=True) + "\n")
    else:
        out.write(render(data))
    if alert:
        err.write(alert + "\n")
        return 1
    return 0


def render(data):
    key = data["key"]
    lines = [f"OpenRouter key   {key['label']}" + ("  (DISABLED)" if key["disabled"] else "")]
    if key["limit"] is None:
        lines.append("  limit          none (unlimited key)")
    else:
        window = key["limit_reset"] or "total, never resets"
        nxt = f", next reset {_utc(key['next_reset'])}" if key["next_reset"] else ""
        lines.append(f"  limit          {money(key['limit'])} ({window}{nxt})")
        lines.append(f"  remaining      {money(key['limit_remaining'])}")
    lines.append(f"  spent          today {money(key['usage_daily'])} · this week {money(key['usage_weekly'])}"
                 f" · this month {money(key['usage_monthly'])} · all time {money(key['usage'])}  (UTC windows)")
    if key["expires_at"]:
        lines.append(f"  expires        {_utc(key['expires_at'])}")
    lines.append(f"  free tier      {'yes (never bought credits)' if key['is_free_tier'] else 'no'}")
    account = data["account"]
    if account:
        lines.append(f"account balance  {money(account['balance'])} (credits {money(account['total_credits'])}, used {money(account['total_usage'])})")
    else:
        lines.append(f"account balance  {data['account_note']}")
    budget = "unlimited as far as spillover can see" if data["budget"] is None else money(data["budget"])
    lines.append(f"budget           {budget}  (lower of key remaining and balance)")
    lines.append(f"floor            {money(data['floor'])} = {data['floor_why']}")
    models = data.get("models") or {}
    if models.get("slugs"):
        mapped = ", ".join(f"{tier} {slug}" for tier, slug in models["slugs"].items())
        lines.append(f"models           {mapped}  ({models.get('source')})")
    caps = []
    if data["daily_cap"] is not None:
        caps.append(f"daily cap {money(data['daily_cap'])}")
    if data["monthly_cap"] is not None:
        caps.append(f"monthly cap {money(data['monthly_cap'])}")
    if caps:
        lines.append(f"caps             {', '.join(caps)}")
    lines.append(f"spill guard      {'✔' if data['guard']['healthy'] else '✖'} {data['guard']['reason']}")
    return "\n".join(lines) + "\n"


# --- models -----------------------------------------------------------------------------------


def _configured(cfg):
    """(config key, slug) of every OpenRouter model slug spillover writes into the openrouter route."""
    return [(name, getattr(cfg, attr)) for name, attr in MODEL_KEYS if getattr(cfg, attr)]


def _exists(slug, ids):
    # `:nitro`, `:floor`, `:online`… are routing variants of a catalog model, not catalog ids.
    return slug in ids or slug.split(":", 1)[0] in ids


def check_models(cfg, catalog=None):
    """[(slug, ok, hint)] for each distinct configured OpenRouter slug. Raises SourceError when the catalog is unreachable."""
    catalog = openrouter.fetch_models(cfg) if catalog is None else catalog
    ids = {m["id"] for m in catalog}
    anthropic = sorted(i for i in ids if i.startswith(ANTHROPIC_PREFIXES))
    results, seen = [], set()
    for _, slug in _configured(cfg):
        if slug in seen:
            continue
        seen.add(slug)
        if _exists(slug, ids):
            results.append((slug, True, ""))
            continue
        close = difflib.get_close_matches(slug, anthropic, 1, 0.5) or difflib.get_close_matches(slug, sorted(ids), 1, 0.5)
        hint = f"did you mean {close[0]}?" if close else "no similar model in OpenRouter's catalog"
        results.append((slug, False, hint))
    return results


def _per_million(price):
    if price is None:
        return None
    return None if price < 0 else round(price * 1_000_000, 6)  # negative: OpenRouter's "varies" sentinel


def models(cfg, check=False, as_json=False, out=None, err=None):
    out, err = out or sys.stdout, err or sys.stderr
    from spillover.redact import known_secrets, redact_tree

    catalog = redact_tree(openrouter.fetch_models(cfg), known_secrets(cfg))
    from spillover import catalog as cat

    # what the route maps: configured slugs, else the newest in this catalog
    mapped = cat.model_map({t: getattr(cfg, cat.CONFIG_ATTRS[t]) for t in cat.TIERS},
                           {"fetched_at": time.time(), "models": cat.compact(catalog)})
    roles = {}
    for tier, slug in mapped.slugs.items():
        roles.setdefault(slug, []).append(tier)
    roles.setdefault(cfg.subagent_model or mapped.slugs["sonnet"], []).append("subagent")
    if check:
        results = check_models(cfg, catalog)
        missing = [r for r in results if not r[1]]
        if as_json:
            out.write(json.dumps({"checked": [{"slug": s, "ok": ok, "hint": hint, "roles": roles.get(s, [])} for s, ok, hint in results],
                                  "missing": len(missing)}, indent=1) + "\n")
        else:
            for slug, ok, hint in results:
                role = ",".join(roles.get(slug, []))
                out.write(f"{'✔' if ok else '✖'} {slug:<36} {role}" + (f"  not in OpenRouter's catalog; {hint}" if not ok else "") + "\n")
        for slug, _, hint in missing:
            err.write(f"spillover: warning: model {slug} is not in OpenRouter's catalog ({hint}); "
                      f"the openrouter route would fail with it\n")
        return 1 if missing else 0
    rows = []
    for m in catalog:
        if not m["id"].startswith(ANTHROPIC_PREFIXES):
            continue
        rows.append({
            "id": m["id"], "name": m["name"],
            "input_per_million": _per_million(m["prompt"]), "output_per_million": _per_million(m["completion"]),
            "context_length": m["context_length"], "configured_as": roles.get(m["id"], []),
        })
    rows.sort(key=lambda r: r["id"])
    if as_json:
        out.write(json.dumps({"models": rows}, indent=1) + "\n")
        return 0
    if not rows:
        out.write("no Anthropic models in OpenRouter's catalog\n")
        return 0
    width = max(len(r["id"]) for r in rows)
    out.write(f"{'model':<{width}}  {'input $/M':>10}  {'output $/M':>10}  {'context':>9}  configured as\n")
    for r in rows:
        price = lambda v: "varies" if v is None else f"{v:,.2f}"
        ctx = "-" if r["context_length"] is None else f"{r['context_length']:,}"
        out.write(f"{r['id']:<{width}}  {price(r['input_per_million']):>10}  {price(r['output_per_million']):>10}  {ctx:>9}"
                  f"  {','.join(r['configured_as'])}\n")
    return 0


# --- setup openrouter-key ---------------------------------------------------------------------


def setup_key(cfg, limit, reset=None, name="spillover", replace=False, out=None):
    from spillover import config

    out = out or sys.stdout
    if not cfg.openrouter_management_key:
        raise SpilloverError(
            "setup openrouter-key needs OPENROUTER_MANAGEMENT_KEY (a management key from "
            "https://openrouter.ai/settings/management-keys; it can create keys but not run inference)"
        )
    if not limit or limit <= 0:
        raise SpilloverError(f"--limit {limit:g}: expected a positive amount in USD")
    existing = config.read_file(cfg.path).get("OPENROUTER_API_KEY")
    if existing and not replace:
        raise SpilloverError(
            f"{cfg.path} already holds OPENROUTER_API_KEY={mask(existing)}; "
            "use --replace to create a new key and store it instead"
        )
    key, data = openrouter.create_key(cfg, name=name, limit=limit, reset=reset)
    window = {"daily": "per day", "weekly": "per week", "monthly": "per month"}.get(reset, "in total")
    try:
        config.set_value(cfg.path, "OPENROUTER_API_KEY", key)
    except OSError as exc:
        # The key exists on OpenRouter now: show it so it is not lost, then fail.
        out.write(f"{key}\n")
        raise SpilloverError(f"created the key above but could not store it in {cfg.path} ({exc.strerror or exc})") from None
    if existing:
        out.write(f"replaced {mask(existing)} in {cfg.path}; the old key still exists on OpenRouter "
                  "(delete it at https://openrouter.ai/settings/keys if unused)\n")
    label = redact(str(data.get("name") or name), cfg.secrets)
    out.write(f"created OpenRouter key {label!r}, capped server-side at {money(limit)} {window}\n")
    out.write(f"stored as OPENROUTER_API_KEY in {cfg.path} (mode 0600)\n\n")
    out.write(f"  {key}\n\n")
    out.write(f"This is the only time the key is shown; from now on spillover shows it as {mask(key)}.\n")
    if cfg.origin.get("OPENROUTER_API_KEY") == "env":
        out.write("note: OPENROUTER_API_KEY is also set in the environment, which overrides the config file; unset it there.\n")
    return 0
