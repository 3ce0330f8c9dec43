"""OpenRouter's model catalog (`GET {OPENROUTER_API_URL}/models`, no auth): the default slug of
each Claude Code model alias, and the prices the budget floor is computed from.

The catalog is read at most once a day (once an hour while it fails) and kept in the state dir as
`catalog.json` (0600): the Anthropic models only, {id: {prompt, completion, context_length}}
with prices in USD per token. The route's default slug per tier is the newest plain versioned
`anthropic/claude-<tier>-<version>` in it (never a `:beta`/`:free`/`:thinking` variant, a
`~…-latest` alias or a dated id); without a readable catalog, the built-in line-up below. A
configured slug always wins.

Everything but `refresh` is pure or reads only the state dir.
"""

import os
import re
from dataclasses import dataclass

TIERS = ("fable", "opus", "sonnet", "haiku")
# Today's line-up (autumn 2026); haiku-5.5 was not yet listed on OpenRouter, haiku-4.5 is.
BUILTIN = {
    "fable": "anthropic/claude-fable-5.1",
    "opus": "anthropic/claude-opus-5.5",
    "sonnet": "anthropic/claude-sonnet-5.5",
    "haiku": "anthropic/claude-haiku-4.5",
}
# USD per million tokens (input, output) of the built-in slugs, for the floor without a catalog.
BUILTIN_PRICES = {
    "anthropic/claude-fable-5.1": (10.0, 50.0),
    "anthropic/claude-opus-5.5": (4.0, 20.0),
    "anthropic/claude-sonnet-5.5": (2.0, 10.0),
    "anthropic/claude-haiku-4.5": (1.0, 5.0),
}
# config attribute of each tier's slug, per route
CONFIG_ATTRS = {"fable": "fable_model", "opus": "opus_model", "sonnet": "sonnet_model", "haiku": "haiku_model"}
CONFIG_KEYS = {"fable": "SPILLOVER_FABLE_MODEL", "opus": "SPILLOVER_OPUS_MODEL", "sonnet": "SPILLOVER_SONNET_MODEL",
               "haiku": "SPILLOVER_HAIKU_MODEL"}

FILE = "catalog.json"
MAX_AGE = 86400  # a day
RETRY_AFTER_FAILURE = 3600
MAX_MODELS = 2000
_PLAIN = re.compile(r"anthropic/claude-(" + "|".join(TIERS) + r")-(\d{1,3}(?:\.\d{1,3}){0,3})")
_SLUG_SHAPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/~@+\-]{0,127}")


def path(state_dir):
    return os.path.join(state_dir, FILE)


def plain_version(slug):
    """(tier, (5, 5)) of a plain versioned slug `anthropic/claude-<tier>-<version>`, else None."""
    found = _PLAIN.fullmatch(slug) if isinstance(slug, str) else None
    if not found:
        return None
    return found.group(1), tuple(int(part) for part in found.group(2).split("."))


def newest(models):
    """{tier: slug} of the newest plain versioned slug per tier in `models` (ids); numeric order:
    5.5 > 5.1 > 4.8, 5.10 > 5.9."""
    best = {}
    for slug in models:
        parsed = plain_version(slug)
        if parsed and (parsed[0] not in best or parsed[1] > best[parsed[0]][0]):
            best[parsed[0]] = (parsed[1], slug)
    return {tier: slug for tier, (_, slug) in best.items()}


def compact(models):
    """catalog.json's `models` from openrouter.fetch_models' list: Anthropic ids with sane prices."""
    out = {}
    for m in models[:MAX_MODELS]:
        mid = m.get("id")
        if not isinstance(mid, str) or not mid.startswith(("anthropic/", "~anthropic/")) or not _SLUG_SHAPE.fullmatch(mid):
            continue
        out[mid] = {"prompt": _price(m.get("prompt")), "completion": _price(m.get("completion")),
                    "context_length": m.get("context_length")}
    return out


def _price(value):
    # negative is OpenRouter's "varies" sentinel; absurd values are a lying server
    return value if isinstance(value, float) and 0 <= value < 1 else None


def load(state_dir):
    """catalog.json as a dict {fetched_at, models, attempted_at, error}, or {} when missing/damaged."""
    from spillover import fsutil

    data = fsutil.read_json(path(state_dir), default={})
    if not isinstance(data, dict) or not isinstance(data.get("models"), dict):
        return {k: data.get(k) for k in ("attempted_at", "error")} if isinstance(data, dict) else {}
    data["models"] = {k: v for k, v in data["models"].items() if isinstance(v, dict) and _SLUG_SHAPE.fullmatch(k)}
    return data


def due(data, now):
    """Whether the catalog should be read again: older than a day, or never read (failures: hourly)."""
    fetched = data.get("fetched_at")
    attempted = data.get("attempted_at")
    if isinstance(fetched, (int, float)) and now - fetched < MAX_AGE:
        return False
    return not (data.get("error") and isinstance(attempted, (int, float)) and now - attempted < RETRY_AFTER_FAILURE)


def refresh(cfg, state_dir, now, force=False, timeout=None):
    """The catalog, read from OpenRouter when due (never raises: a failure is kept as `error`).
    `timeout`: the tick passes SPILLOVER_TIMEOUT, so a hanging catalog costs a tick no more than /key."""
    from spillover import fsutil
    from spillover.errors import SourceError
    from spillover.targets import openrouter

    data = load(state_dir)
    if not force and not due(data, now):
        return data
    try:
        models = compact(openrouter.fetch_models(cfg, timeout=timeout))
    except SourceError as exc:
        data.update(attempted_at=now, error=str(exc))
    else:
        data = {"fetched_at": now, "attempted_at": now, "error": None, "models": models}
        if not models:
            data = {"attempted_at": now, "error": "OpenRouter /models lists no Anthropic model", "fetched_at": None}
    try:
        fsutil.write_json(path(state_dir), data)
    except OSError:
        pass
    return data


# --- the route's model map (pure) --------------------------------------------------------------


@dataclass(frozen=True)
class ModelMap:
    """The slug of each tier the openrouter route sets, and where each came from.

    slugs: {tier: slug}. origin: {tier: "config" | "catalog" | "built-in"}. source: one line,
    "catalog of 2026-11-30" or "built-in defaults because <reason>". prices: {slug: (input,
    output)} in USD per million tokens, where known.
    """

    slugs: dict
    origin: dict
    source: str
    prices: dict

    def to_json(self):
        return {"slugs": self.slugs, "origin": self.origin, "source": self.source,
                "prices": {k: list(v) for k, v in self.prices.items()}}


def _date(epoch):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d")


def model_map(configured, data):
    """ModelMap of {tier: configured slug or ''} and a catalog dict (`load`)."""
    models = data.get("models") if isinstance(data.get("models"), dict) else None
    if models:
        found = newest(models)
        source = f"catalog of {_date(data['fetched_at'])}" if isinstance(data.get("fetched_at"), (int, float)) else "catalog"
    else:
        found = {}
        reason = data.get("error") or "OpenRouter's catalog was not read yet"
        source = f"built-in defaults because {reason}"
    slugs, origin, prices = {}, {}, {}
    for tier in TIERS:
        if configured.get(tier):
            slugs[tier], origin[tier] = configured[tier], "config"
        elif tier in found:
            slugs[tier], origin[tier] = found[tier], "catalog"
        else:
            slugs[tier], origin[tier] = BUILTIN[tier], "built-in"
    for slug in set(slugs.values()):
        entry = (models or {}).get(slug.split(":", 1)[0])
        if isinstance(entry, dict) and entry.get("prompt") is not None and entry.get("completion") is not None:
            prices[slug] = (round(entry["prompt"] * 1e6, 6), round(entry["completion"] * 1e6, 6))
        elif slug in BUILTIN_PRICES:
            prices[slug] = BUILTIN_PRICES[slug]
    return ModelMap(slugs, origin, source, prices)


def for_config(cfg, state_dir=None):
    """The openrouter route's ModelMap from the config and the cached catalog (no network)."""
    from spillover import paths

    configured = {tier: getattr(cfg, CONFIG_ATTRS[tier], "") for tier in TIERS}
    return model_map(configured, load(state_dir or paths.state_dir()))


def changes(old, new):
    """["opus: anthropic/claude-opus-5.1 → anthropic/claude-opus-5.5", "fable: price $10/$50 → $12/$60 per M"]
    between two ModelMap.to_json() dicts (old None or damaged: no change to tell)."""
    if not isinstance(old, dict) or not isinstance(old.get("slugs"), dict) or not isinstance(new, dict):
        return []
    out = []
    old_prices, new_prices = old.get("prices") or {}, new.get("prices") or {}
    for tier in TIERS:
        before, after = old["slugs"].get(tier), (new.get("slugs") or {}).get(tier)
        if before != after:
            out.append(f"{tier}: {before} → {after}")
        elif after and old_prices.get(after) and new_prices.get(after) and list(old_prices[after]) != list(new_prices[after]):
            (i0, o0), (i1, o1) = old_prices[after], new_prices[after]
            out.append(f"{tier}: {after} price ${i0:g}/${o0:g} → ${i1:g}/${o1:g} per M tokens in/out")
    return out


# --- the floor: one maximal turn (pure) --------------------------------------------------------

# Claude Code sends max_tokens 32000 for a model id it does not know as its own, which every
# OpenRouter slug is (research: claude_code_probe.md); it drops the 1M-context beta for them, so
# a session's context is at most about 200k tokens before it compacts.
TURN_CONTEXT_TOKENS = 200_000
TURN_OUTPUT_TOKENS = 32_000


def _k(tokens):
    return f"{tokens / 1000:g}k" if tokens >= 1000 else str(tokens)


def turn_floor(min_balance, models, context_tokens=TURN_CONTEXT_TOKENS, output_tokens=TURN_OUTPUT_TOKENS):
    """(floor USD, why) the key and balance must cover: the larger of min_balance and one maximal
    turn (the whole context re-sent uncached + max output) of the most expensive mapped model.
    `models` is a ModelMap.to_json() dict (None: only min_balance)."""
    best = None
    slugs = (models or {}).get("slugs") or {}
    prices = (models or {}).get("prices") or {}
    for tier in TIERS:
        slug = slugs.get(tier)
        price = prices.get(slug) if slug else None
        if not price or len(price) != 2:
            continue
        cost = context_tokens * price[0] / 1e6 + output_tokens * price[1] / 1e6
        if best is None or cost > best[0]:
            best = (cost, tier, slug, price)
    if best is None:
        return min_balance, f"SPILLOVER_MIN_BALANCE ${min_balance:,.2f} (no model prices known)"
    cost, tier, slug, (pin, pout) = best
    turn = (f"one {tier.capitalize()} turn ({slug}): {_k(context_tokens)} in × ${pin:g}/M"
            f" + {_k(output_tokens)} out × ${pout:g}/M = ${cost:,.2f}")
    if min_balance >= cost:
        return min_balance, f"SPILLOVER_MIN_BALANCE ${min_balance:,.2f} (≥ {turn})"
    return cost, turn
