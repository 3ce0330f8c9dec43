"""Small fake servers on loopback that speak the exact shapes of design §4.1 and §5.

One `FakeServer` serves any number of paths; each path has a `Reply` that a test can swap at
any time (status, JSON or raw body, headers, a delay, a trickle). Every request is recorded.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    status: int = 200
    json: object = None
    body: bytes | None = None  # raw body; wins over json
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line (a hang when large)
    trickle: float = 0.0  # seconds between body bytes
    header_trickle: float = 0.0  # seconds between header lines (30 lines), before the body
    until: threading.Event | None = None  # held until the test sets it (at most 60 s): a hold that ends on an event, not a time


class FakeServer:
    def __init__(self):
        self.replies = {}  # (method, path) -> Reply
        self.requests = []  # dicts: method, path, query, headers, body
        self.lock = threading.Lock()
        self.closing = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self, method):
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with server.lock:
                    server.requests.append({"method": method, "path": path, "query": query,
                                            "headers": dict(self.headers.items()), "body": body})
                    reply = server.replies.get((method, path)) or server.replies.get(("*", path))
                if reply is None:
                    reply = Reply(404, {"error": {"code": 404, "message": "Resource not found"}})
                if reply.delay:
                    server.closing.wait(reply.delay)
                if reply.until is not None:
                    reply.until.wait(60)
                data = reply.body if reply.body is not None else json.dumps(reply.json).encode()
                try:
                    self.send_response(reply.status)
                    headers = {"Content-Type": "application/json", **reply.headers}
                    for name, value in headers.items():
                        self.send_header(name, str(value))
                    if reply.header_trickle:
                        self.flush_headers()
                        for i in range(30):
                            if server.closing.is_set():
                                return
                            self.wfile.write(f"X-Slow-{i}: {i}\r\n".encode())
                            self.wfile.flush()
                            time.sleep(reply.header_trickle)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if method == "HEAD":
                        return
                    if reply.trickle:
                        for i in range(len(data)):
                            if server.closing.is_set():
                                return
                            self.wfile.write(data[i:i + 1])
                            self.wfile.flush()
                            time.sleep(reply.trickle)
                    else:
                        self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self):
                self._handle("GET")

            def do_POST(self):
                self._handle("POST")

            def do_HEAD(self):
                self._handle("HEAD")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def set(self, path, reply=None, method="GET", **kwargs):
        with self.lock:
            self.replies[(method, path)] = reply if reply is not None else Reply(**kwargs)

    def hits(self, path, method="GET"):
        with self.lock:
            return [r for r in self.requests if r["path"] == path and r["method"] == method]

    def close(self):
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


# --- shapes (design §4.1, §5) -----------------------------------------------------------------


def iso(epoch):
    from datetime import datetime, timezone

    return datetime.fromtimestamp(epoch, timezone.utc).isoformat()


def usage_body(five_hour=42.0, resets_in=3600, now=None, seven_day=15.0, limits=False, sonnet=18.0, fable=None,
               fable_resets_in=2 * 86400):
    """An OAuth usage answer; `limits=True` gives the newer shape with weekly caps in limits[];
    `fable` (a percentage, with limits=True) adds the Fable weekly cap, which only limits[] carries
    (research/field_2026.md item 3)."""
    now = time.time() if now is None else now
    bucket = lambda pct, secs: None if pct is None else {"utilization": pct, "resets_at": iso(now + secs)}
    body = {
        "five_hour": bucket(five_hour, resets_in),
        "seven_day": None if limits else bucket(seven_day, 5 * 86400),
        "seven_day_sonnet": None if limits else bucket(sonnet, 5 * 86400),
        "seven_day_opus": None,
        "seven_day_oauth_apps": None,
        "extra_usage": {"is_enabled": False, "monthly_limit": None, "used_credits": None, "utilization": None},
    }
    if limits:
        body["limits"] = [
            {"kind": "session", "group": "session", "percent": five_hour, "resets_at": iso(now + resets_in), "scope": None, "is_active": True},
            {"kind": "weekly_all", "group": "weekly", "percent": seven_day, "resets_at": iso(now + 5 * 86400), "scope": None, "is_active": False},
            {"kind": "weekly_scoped", "group": "weekly", "percent": sonnet, "resets_at": iso(now + 5 * 86400),
             "scope": {"model": {"id": None, "display_name": "Sonnet"}, "surface": None}, "is_active": False},
        ]
        if fable is not None:
            body["limits"].append({
                "kind": "weekly_scoped", "group": "weekly", "percent": fable, "severity": "critical" if fable >= 100 else "normal",
                "resets_at": iso(now + fable_resets_in), "scope": {"model": {"id": None, "display_name": "Fable"}, "surface": None},
                "is_active": fable >= 100})
    return body


def key_body(limit=50.0, remaining=24.5, reset="monthly", usage=133.25, daily=3.4, weekly=12.1, monthly=25.5, **extra):
    data = {
        "label": "sk-or-v1-au7...890", "limit": limit, "limit_remaining": remaining, "limit_reset": reset,
        "usage": usage, "usage_daily": daily, "usage_weekly": weekly, "usage_monthly": monthly,
        "byok_usage": 0, "byok_usage_daily": 0, "byok_usage_weekly": 0, "byok_usage_monthly": 0,
        "include_byok_in_limit": False, "is_free_tier": False, "is_management_key": False, "is_provisioning_key": False,
        "creator_user_id": None, "expires_at": None,
        "rate_limit": {"interval": "1h", "note": "This field is deprecated and safe to ignore.", "requests": -1},
    }
    data.update(extra)
    return {"data": data}


def credits_body(total=100.5, used=25.75):
    return {"data": {"total_credits": total, "total_usage": used}}


def error_body(code, message):
    return {"error": {"code": code, "message": message}}


KEY_LIMIT_403 = error_body(403, "Key limit exceeded (monthly limit). Manage it using https://openrouter.ai/settings/keys")
CREDITS_402 = error_body(402, "Insufficient credits. Add more using https://openrouter.ai/credits")
MANAGEMENT_ONLY_403 = error_body(403, "Only management keys can perform this operation")
RATE_LIMIT_429 = {"error": {"code": 429, "message": "Rate limit exceeded", "metadata": {"error_type": "rate_limit_exceeded"}}}


def models_body():
    def model(mid, name, prompt, completion, ctx):
        return {"id": mid, "canonical_slug": mid, "name": name, "created": 1767000000,
                "pricing": {"prompt": prompt, "completion": completion}, "context_length": ctx,
                "architecture": {"modality": "text+image->text", "input_modalities": ["text", "image"],
                                 "output_modalities": ["text"], "tokenizer": "Claude", "instruct_type": None},
                "top_provider": {"context_length": ctx, "max_completion_tokens": 64000, "is_moderated": False},
                "per_request_limits": None, "supported_parameters": ["tools"], "default_parameters": {},
                "supported_voices": None, "links": {"details": f"/api/v1/models/{mid}/endpoints"}}

    return {"data": [
        model("anthropic/claude-opus-4.8", "Anthropic: Claude Opus 4.8", "0.000005", "0.000025", 1000000),
        model("anthropic/claude-sonnet-4.6", "Anthropic: Claude Sonnet 4.6", "0.000003", "0.000015", 1000000),
        model("anthropic/claude-haiku-4.5", "Anthropic: Claude Haiku 4.5", "0.000001", "0.000005", 200000),
        model("openai/gpt-5", "OpenAI: GPT-5", "0.00000125", "0.00001", 400000),
    ], "links": {"next": None}, "total_count": 4}
