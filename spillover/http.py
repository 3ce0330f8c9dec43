"""The one place spillover talks HTTP: bounded in time and size, JSON only, secrets redacted.

A server can refuse, hang, trickle a body byte by byte, or send 10 MB of garbage; every call here
ends within `timeout` seconds of wall-clock time and raises SourceError with a readable reason.
"""

import json
import time

import requests
import urllib3

from spillover.errors import SourceError
from spillover.redact import printable, redact

MAX_BODY = 1 << 20  # no answer we read is anywhere near 1 MiB
CHUNK = 16 * 1024


def _retry_after(headers):
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _chunks(response):
    """The body as it arrives. iter_content waits for a whole chunk, so a body trickled byte by
    byte would outlive the deadline; urllib3 2's read1 returns whatever is there."""
    read1 = getattr(response.raw, "read1", None)
    if read1 is None:
        yield from response.iter_content(CHUNK)
        return
    while chunk := read1(CHUNK, decode_content=True):
        yield chunk


def _error_message(body):
    """The `error.message` of an OpenRouter/Anthropic-style error body, if there is one, as one
    line of printable text: it ends up in reasons that terminals and route.env show."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    message = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            message = err["message"]
        elif isinstance(err, str):
            message = err
    return None if message is None else printable(message)


def get(url, *, headers, timeout, secrets=(), name="server", session=None):
    """GET `url` within `timeout` overall and return (status, headers, text) of a 2xx answer.
    Raise SourceError on anything else (no answer, 3xx, 4xx, 5xx, a body too large or too slow)."""
    deadline = time.monotonic() + timeout
    getter = session.get if session is not None else requests.get
    try:
        response = getter(url, headers=headers, timeout=(min(timeout, 3.05), timeout), stream=True, allow_redirects=False)
    except requests.exceptions.Timeout:
        raise SourceError(f"{name}: no answer within {timeout:g} s", kind="unavailable") from None
    except requests.exceptions.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
        raise SourceError(f"{name}: {reason}", kind="unavailable") from None
    except requests.exceptions.RequestException as exc:
        raise SourceError(f"{name}: request failed ({redact(exc.__class__.__name__, secrets)})", kind="unavailable") from None
    try:
        body = bytearray()
        try:
            for chunk in _chunks(response):
                body += chunk
                if len(body) > MAX_BODY:
                    raise SourceError(f"{name}: answer larger than {MAX_BODY // 1024} KiB, ignored", status=response.status_code)
                if time.monotonic() > deadline:
                    raise SourceError(f"{name}: answer still trickling in after {timeout:g} s, gave up", kind="unavailable")
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError):
            raise SourceError(f"{name}: connection broke while reading the answer", kind="unavailable") from None
    finally:
        response.close()
    status = response.status_code
    text = body.decode("utf-8", "replace")
    if status >= 400:
        message = _error_message(text)
        detail = f": {redact(message, secrets)[:200]}" if message else ""
        kind = {401: "auth", 402: "payment", 403: "forbidden", 429: "rate_limited"}.get(status, "error")
        raise SourceError(f"{name}: HTTP {status}{detail}", status=status, retry_after=_retry_after(response.headers), kind=kind)
    if status >= 300:
        raise SourceError(f"{name}: unexpected redirect (HTTP {status})", status=status)
    return status, response.headers, text


def get_json(url, *, headers, timeout, secrets=(), name="server", session=None):
    """GET `url` and return (status, headers, parsed JSON). Raise SourceError on anything else."""
    status, got_headers, text = get(url, headers=headers, timeout=timeout, secrets=secrets, name=name, session=session)
    try:
        return status, got_headers, json.loads(text)
    except ValueError:
        raise SourceError(f"{name}: answer is not JSON", status=status) from None
