"""Secrets never reach output, logs or notifications: `sk-or-v1-…c890`."""

import re

# `(?!…)`: a key masked already stays as it is (redacting twice must not grow the ellipsis).
_SECRET = re.compile(
    r"(sk-or-v1-|sk-ant-(?:api\d+|oat\d+|ort\d+|admin\d+)-|sk-ant-|sk-or-|sk-)[A-Za-z0-9_\-]{6,}(?!…)"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*"
)


def mask(secret):
    """Show a key as prefix, ellipsis, last four characters (`sk-or-v1-…c890`): enough to tell two
    keys apart, never enough to use one. A short value shows no tail at all."""
    if not secret:
        return "(not set)"
    m = re.match(r"(sk-or-v1-|sk-ant-[a-z]+\d*-|sk-)", secret)
    prefix = m.group(1) if m else ""
    tail = secret[-4:] if len(secret) > len(prefix) + 12 else ""
    return f"{prefix}…{tail}"


def redact(text, secrets=()):
    """Remove every known secret and anything that looks like a key or bearer token from `text`."""
    text = str(text)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, mask(secret))
    return _SECRET.sub(lambda m: mask(m.group(0)) if not m.group(0).lower().startswith("bearer") else "Bearer …", text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1: ESC sequences, NUL, newlines


def printable(text):
    """Server text as one line without control characters, fit for a terminal or a reason."""
    return " ".join(_CONTROL.sub(" ", str(text)).split())


def redact_tree(data, secrets=()):
    """A copy of JSON-like `data` with every string (keys too) made printable and redacted: what a
    server, a meter or a file said goes through here before it is stored, logged or shown."""
    secrets = tuple(s for s in secrets if s and len(s) >= 4)
    if isinstance(data, str):
        return redact(_strip_escapes(data), secrets)
    if isinstance(data, dict):
        return {redact_tree(k, secrets) if isinstance(k, str) else k: redact_tree(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_tree(v, secrets) for v in data]
    return data


_ESCAPE = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")


def _strip_escapes(text):
    """Terminal escape sequences (colours, cursor moves, OSC titles and links) removed outright;
    other control characters are left for `printable` where a single line is needed."""
    return _ESCAPE.sub("", text) if "\x1b" in text else text


class SecretFilter:
    """A logging filter that redacts every known secret from each record's final message."""

    def __init__(self, secrets=()):
        self.secrets = tuple(s for s in secrets if s and len(s) >= 4)

    def add(self, *secrets):
        self.secrets += tuple(s for s in secrets if s and len(s) >= 4 and s not in self.secrets)

    def filter(self, record):
        message = record.getMessage()
        cleaned = redact(_strip_escapes(message), self.secrets)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


KNOWN = ()  # the secrets of the loaded config (install_log_filter), for the last-resort error line


def oauth_tokens(claude_dirs):
    """Claude Code's OAuth access and refresh tokens (from `.credentials.json`, read bounded), so a
    server echoing either is redacted like any key spillover holds. Nothing when unreadable."""
    from spillover import jsonsafe
    from spillover.sources.oauth import CREDENTIALS_MAX_BYTES, credential_files

    found = []
    for path in credential_files(claude_dirs):
        try:
            data = jsonsafe.load_file(path, CREDENTIALS_MAX_BYTES)
        except (OSError, ValueError):
            continue
        oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
        if isinstance(oauth, dict):
            found += [v for k in ("accessToken", "refreshToken") if isinstance(v := oauth.get(k), str) and v]
    return tuple(found)


def known_secrets(cfg):
    """Every secret spillover knows: the configured keys and tokens, and Claude Code's OAuth tokens."""
    if cfg is None:
        return ()
    try:
        tokens = oauth_tokens(cfg.claude_dirs)
    except Exception:  # noqa: BLE001 - redaction must never be what breaks a command
        tokens = ()
    return tuple(dict.fromkeys(tuple(cfg.secrets) + tokens))


def install_log_filter(cfg, logger_name="spillover"):
    """Redact every known secret from what the spillover logger and the root handlers write."""
    import logging

    global KNOWN
    flt = SecretFilter(known_secrets(cfg))
    KNOWN = flt.secrets
    logging.getLogger(logger_name).addFilter(flt)
    for handler in logging.getLogger().handlers:
        handler.addFilter(flt)
    return flt
