"""The one place spillover talks HTTP: bounded in time and size, secrets redacted.

A server can refuse, hang, trickle its headers line by line or its body byte by byte, or send
10 MB of garbage; every call here ends within `timeout` seconds of wall-clock time (connect,
headers and body together) and raises SourceError with a readable reason. Requests to a loopback
address never go through a proxy: a credential meant for a local gateway or a test fake must not
leave the machine because HTTP_PROXY is set.
"""

import threading
import time
from urllib.parse import urlsplit

import requests
import urllib3

from spillover import jsonsafe
from spillover.config import is_loopback
from spillover.errors import SourceError
from spillover.redact import printable, redact

MAX_BODY = 1 << 20  # no answer we read is anywhere near 1 MiB
CHUNK = 16 * 1024


MAX_RETRY_AFTER = 7 * 86400  # a server asking for more than a week is garbled, not meant


def _retry_after(headers):
    """Seconds the server asks us to wait, as a finite number in [0, a week], or None."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, OverflowError, IndexError):
            return None
    if seconds != seconds:  # nan
        return None
    return min(max(0.0, seconds), MAX_RETRY_AFTER)


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
        data = jsonsafe.loads(body)
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


def request(method, url, *, headers=None, timeout, secrets=(), name="server", json_body=None, session=None):
    """Send one request; return (status, headers, body text). Raise SourceError on a failure to
    talk, an answer over MAX_BODY, or no complete answer within `timeout` seconds."""
    box = {}
    worker = threading.Thread(
        target=_exchange, args=(box, method, url, headers or {}, timeout, secrets, name, json_body, session), daemon=True
    )
    worker.start()
    # A little grace, so the worker's own deadline check (with its more precise reason) goes first.
    worker.join(timeout + 0.25)
    if worker.is_alive():
        # Still connecting or reading headers (requests bounds each socket read, not the whole
        # exchange). The daemon thread dies with the process; nothing waits for it.
        response = box.get("response")
        if response is None:
            raise SourceError(f"{name}: no answer within {timeout:g} s", kind="unavailable")
        response.close()
        raise SourceError(f"{name}: answer still trickling in after {timeout:g} s, gave up", kind="unavailable")
    if "error" in box:
        raise box["error"]
    return box["result"]


def _exchange(box, method, url, headers, timeout, secrets, name, json_body, session):
    try:
        box["result"] = _send(box, method, url, headers, timeout, secrets, name, json_body, session)
    except SourceError as exc:
        box["error"] = exc
    except Exception as exc:  # noqa: BLE001 — reported to the caller as one readable line
        box["error"] = SourceError(f"{name}: request failed ({exc.__class__.__name__})", kind="unavailable")


def _send(box, method, url, headers, timeout, secrets, name, json_body, session):
    deadline = time.monotonic() + timeout
    if session is None:
        session = requests.Session()
        session.trust_env = not is_loopback(urlsplit(url).hostname)
    try:
        response = session.request(method, url, headers=headers, json=json_body, timeout=(min(timeout, 3.05), timeout),
                                    stream=True, allow_redirects=False)
    except requests.exceptions.Timeout:
        raise SourceError(f"{name}: no answer within {timeout:g} s", kind="unavailable") from None
    except requests.exceptions.ConnectionError as exc:
        reason = "connection refused" if "refused" in str(exc).lower() else "cannot connect"
        raise SourceError(f"{name}: {reason}", kind="unavailable") from None
    except requests.exceptions.RequestException as exc:
        raise SourceError(f"{name}: request failed ({redact(exc.__class__.__name__, secrets)})", kind="unavailable") from None
    box["response"] = response
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
    return response.status_code, response.headers, body.decode("utf-8", "replace")


def raise_for_status(status, headers, text, *, name, secrets=()):
    """SourceError for an error or redirect answer, with the server's message redacted."""
    if status >= 400:
        message = _error_message(text)
        detail = f": {redact(message, secrets)[:200]}" if message else ""
        kind = {401: "auth", 402: "payment", 403: "forbidden", 429: "rate_limited"}.get(status, "error")
        raise SourceError(f"{name}: HTTP {status}{detail}", status=status, retry_after=_retry_after(headers), kind=kind)
    if status >= 300:
        raise SourceError(f"{name}: unexpected redirect (HTTP {status})", status=status)


def get(url, *, headers, timeout, secrets=(), name="server", session=None):
    """GET `url` within `timeout` overall and return (status, headers, text) of a 2xx answer.
    Raise SourceError on anything else (no answer, 3xx, 4xx, 5xx, a body too large or too slow)."""
    status, response_headers, text = request("GET", url, headers=headers, timeout=timeout, secrets=secrets, name=name,
                                             session=session)
    raise_for_status(status, response_headers, text, name=name, secrets=secrets)
    return status, response_headers, text


def get_json(url, *, headers, timeout, secrets=(), name="server", session=None):
    """GET `url` and return (status, headers, parsed JSON). Raise SourceError on anything else."""
    return send_json("GET", url, headers=headers, timeout=timeout, secrets=secrets, name=name, session=session)


def send_json(method, url, *, headers, timeout, secrets=(), name="server", json_body=None, session=None):
    """One request whose answer must be JSON: (status, headers, parsed JSON), else SourceError."""
    status, response_headers, text = request(method, url, headers=headers, timeout=timeout, secrets=secrets, name=name,
                                             json_body=json_body, session=session)
    raise_for_status(status, response_headers, text, name=name, secrets=secrets)
    try:
        return status, response_headers, jsonsafe.loads(text)
    except ValueError:
        raise SourceError(f"{name}: answer is not JSON", status=status) from None
