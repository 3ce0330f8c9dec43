"""A small fake of the Anthropic Messages API on loopback, for the real Claude Code client.

What the client does (research/claude_code_probe.md): a warm-up `HEAD <prefix>`, then
`POST <prefix>/v1/messages?beta=true` with `stream: true`. This server answers any path that ends
in `/v1/messages` (query stripped) with the SSE events of a one-word answer ("pong"), echoes the
requested model, and records every request with its headers and parsed body. A proxy `CONNECT`
is recorded too and refused: it is how a test sees the client try to reach a real host.

TLS-terminating mode (opt-in: `ca = server.intercept_plan(tmp_dir)`): `CONNECT api.anthropic.com:443`
is recorded as before, then answered `200 Connection established`; the tunnel is wrapped in TLS
with a leaf certificate for that host signed by a throwaway CA (`make_plan_certs`, the `openssl`
CLI, in the given dir), and the same fake API is served inside it. Those requests are recorded like
any other, with `host: "api.anthropic.com"` (None for requests to the server's own URL);
`messages(PLAN_HOST)` lists their Messages POSTs, `messages()` only the plain ones. The client must
trust `ca`: NODE_EXTRA_CA_CERTS=<ca> in its environment (both pinned clients, 2.1.197 and 2.1.332,
honour it, and SSL_CERT_FILE too). A failed handshake is kept in `server.tls_errors`. Any other
CONNECT host is still refused.

Modes (`server.mode = …`):
- "ok": answer "pong".
- "429wall": a subscriber's five-hour wall: HTTP 429 with the `anthropic-ratelimit-unified-*`
  headers naming the claim (`representative-claim: five_hour`, `reset: <epoch>`). Signed in with
  the plan's OAuth token, the client words it `You've hit your session limit · resets 5:40pm (…)`;
  without the claim header it writes `Server is temporarily limiting requests (not your usage
  limit) · …` instead.
  `claim`, `reset_in` (seconds) and `wall_headers` (extra headers, e.g. the overage ones) shape
  it: the five-hour, weekly, Opus, Sonnet and Fable (`seven_day_overage_included`) walls and the
  usage-credits ones (tests/e2e/capture_walls.py).
- "429transient": HTTP 429 without any unified header (the client's "temporarily limiting").
- "error": `error = (status, type, message)` as an Anthropic error answer.
- "429usage": the legacy wording `Claude AI usage limit reached|<epoch>`; with a bearer token or
  API key the client writes `API Error: Request rejected (429) · Claude AI usage limit reached|…`.
`server.bash_command = "sleep 8"` answers a turn that offers the Bash tool with a tool call running
that command (the follow-up request, carrying its result, gets "pong").
`server.reject_x_api_key = True` answers 401 to any request that carries an `x-api-key` header.
Both 429s carry `x-should-retry: false`, so the client gives up at once instead of retrying for
three minutes.
"""

import json
import os
import ssl
import subprocess
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PONG = "pong"
PLAN_HOST = "api.anthropic.com"
LEAF_EXT = """basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:{host}
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
"""


def make_plan_certs(directory, host=PLAN_HOST):
    """A throwaway CA and a leaf certificate for `host` signed by it, made with the `openssl` CLI
    in `directory` (valid two days, EC P-256). Returns (ca.pem, leaf.pem, leaf.key)."""
    directory = str(directory)
    os.makedirs(directory, exist_ok=True)
    ca, ca_key = os.path.join(directory, "ca.pem"), os.path.join(directory, "ca.key")
    leaf, leaf_key = os.path.join(directory, "leaf.pem"), os.path.join(directory, "leaf.key")
    csr, ext = os.path.join(directory, "leaf.csr"), os.path.join(directory, "leaf.ext")
    with open(ext, "w", encoding="utf-8") as handle:
        handle.write(LEAF_EXT.format(host=host))
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for argv in (
        ["req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2", "-subj", "/CN=spillover e2e throwaway CA",
         "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        ["req", *ec, "-keyout", leaf_key, "-out", csr, "-subj", f"/CN={host}"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-set_serial", str(int(time.time() * 1000)),
         "-out", leaf, "-days", "2", "-extfile", ext],
    ):
        subprocess.run(["openssl", *argv], check=True, capture_output=True, timeout=30)
    return ca, leaf, leaf_key


def sse(events):
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def message_start(model):
    """The first event of every streamed answer."""
    usage = {"input_tokens": 12, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
    return ("message_start", {"type": "message_start", "message": {
        "id": "msg_fake_" + uuid.uuid4().hex[:12], "type": "message", "role": "assistant", "model": model, "content": [],
        "stop_reason": None, "stop_sequence": None, "usage": usage}})


def pong_events(model, text=PONG):
    return [
        message_start(model),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                           "usage": {"output_tokens": 2}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def tool_use_events(model, name, tool_input):
    """A streamed answer that asks the client to run one tool."""
    return [
        message_start(model),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "toolu_fake_" + uuid.uuid4().hex[:12], "name": name, "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
            "type": "input_json_delta", "partial_json": json.dumps(tool_input)}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                           "usage": {"output_tokens": 20}}),
        ("message_stop", {"type": "message_stop"}),
    ]


def _has_tool_result(body):
    messages = body.get("messages") or []
    last = messages[-1] if messages else {}
    content = last.get("content") if isinstance(last, dict) else None
    return isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


class FakeAnthropic:
    def __init__(self):
        self.mode = "ok"
        self.reject_x_api_key = False  # a server that takes its key as a Bearer token only
        self.bash_command = None  # when set: a turn that offers the Bash tool is answered by running it
        self.claim = "five_hour"  # 429wall: anthropic-ratelimit-unified-representative-claim
        self.reset_in = 3600  # 429wall: seconds from now to anthropic-ratelimit-unified-reset
        self.wall_headers = {}  # 429wall: more headers, e.g. anthropic-ratelimit-unified-overage-status
        self.error = (400, "invalid_request_error", "Bad request")  # mode "error"
        self.requests = []  # {method, path, query, host, headers (lower-cased names), body (parsed JSON or None)}
        self.tls = None  # intercept_plan(): the SSLContext that terminates the plan's CONNECT tunnels
        self.ca = None  # intercept_plan(): the throwaway CA's certificate file, for the client to trust
        self.tls_errors = []  # intercept_plan(): handshakes that failed (e.g. the client did not trust the CA)
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            tunnel = None  # the host of a CONNECT tunnel this handler serves inside (Tunnelled)

            def log_message(self, *args):
                pass

            def _record(self, method):
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                record = {"method": method, "path": path, "query": query, "at": time.time(), "body": body, "host": self.tunnel,
                          "headers": {k.lower(): v for k, v in self.headers.items()}}
                with server.lock:
                    server.requests.append(record)
                    return record, server.mode

            def _send(self, status, data, content_type="application/json", extra=()):
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("request-id", "req_fake_" + uuid.uuid4().hex[:12])
                for name, value in extra:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _error(self, status, kind, message, extra=()):
                body = json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()
                self._send(status, body, extra=extra)

            def do_HEAD(self):
                self._record("HEAD")
                self._send(404, b"")

            def do_GET(self):
                record, _ = self._record("GET")
                if record["path"].endswith("/v1/models"):
                    self._send(200, json.dumps({"data": [], "has_more": False}).encode())
                else:
                    self._error(404, "not_found_error", "Not found")

            def do_CONNECT(self):
                self._record("CONNECT")
                self.close_connection = True
                if server.tls is None or self.tunnel or self.path != f"{PLAN_HOST}:443":
                    return self._send(403, b"")
                self.send_response_only(200, "Connection established")
                self.end_headers()
                self.wfile.flush()
                self.connection.settimeout(10)
                try:
                    conn = server.tls.wrap_socket(self.connection, server_side=True)  # detaches the plain socket
                except (ssl.SSLError, OSError) as exc:
                    with server.lock:
                        server.tls_errors.append(f"{type(exc).__name__}: {exc}")
                    return
                try:
                    conn.settimeout(None)
                    Tunnelled(conn, self.client_address, self.server)  # serves the tunnel until the client closes it
                except OSError:
                    pass
                finally:
                    conn.close()

            def do_POST(self):
                record, mode = self._record("POST")
                path, body = record["path"], record["body"] or {}
                if path.endswith("/v1/messages/count_tokens"):
                    return self._send(200, json.dumps({"input_tokens": 12}).encode())
                if not path.endswith("/v1/messages"):
                    return self._error(404, "not_found_error", f"Not found: {path}")
                if server.reject_x_api_key and record["headers"].get("x-api-key") is not None:
                    return self._error(401, "authentication_error", "x-api-key is not accepted here")
                if mode == "429wall":
                    # What a subscriber's five-hour wall looks like: the unified headers name the claim.
                    reset = int(time.time()) + server.reset_in
                    headers = {"x-should-retry": "false", "anthropic-ratelimit-unified-status": "rejected",
                               "anthropic-ratelimit-unified-reset": str(reset)}
                    if server.claim:
                        headers["anthropic-ratelimit-unified-representative-claim"] = server.claim
                    headers.update({k: v.replace("{reset}", str(reset)) for k, v in server.wall_headers.items()})
                    return self._error(429, "rate_limit_error", "Rate limited", extra=tuple(headers.items()))
                if mode == "429transient":
                    return self._error(429, "rate_limit_error", "Rate limited", extra=(("x-should-retry", "false"),))
                if mode == "error":
                    status, kind, message = server.error
                    return self._error(status, kind, message, extra=(("x-should-retry", "false"),))
                if mode == "429usage":
                    reset = int(time.time()) + 3600
                    return self._error(429, "rate_limit_error", f"Claude AI usage limit reached|{reset}",
                                       extra=(("x-should-retry", "false"),
                                              ("anthropic-ratelimit-unified-status", "rejected"),
                                              ("anthropic-ratelimit-unified-reset", str(reset))))
                model = body.get("model") or "claude-opus-4-8"
                tools = {t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)}
                if server.bash_command and "Bash" in tools and not _has_tool_result(body) and body.get("stream"):
                    events = tool_use_events(model, "Bash", {"command": server.bash_command, "description": "wait"})
                    return self._send(200, sse(events), "text/event-stream", (("Cache-Control", "no-cache"),))
                if body.get("stream"):
                    return self._send(200, sse(pong_events(model)), "text/event-stream", (("Cache-Control", "no-cache"),))
                message = {"id": "msg_fake_" + uuid.uuid4().hex[:12], "type": "message", "role": "assistant", "model": model,
                           "content": [{"type": "text", "text": PONG}], "stop_reason": "end_turn", "stop_sequence": None,
                           "usage": {"input_tokens": 12, "output_tokens": 2}}
                self._send(200, json.dumps(message).encode())

        class Tunnelled(Handler):
            tunnel = PLAN_HOST

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def messages(self, host=None):
        """The POSTs to any `…/v1/messages` path, in order: those sent to this server's own URL, or
        with host=PLAN_HOST those that came through a terminated CONNECT tunnel (intercept_plan)."""
        with self.lock:
            return [r for r in self.requests
                    if r["method"] == "POST" and r["path"].endswith("/v1/messages") and r["host"] == host]

    def intercept_plan(self, directory):
        """Terminate `CONNECT api.anthropic.com:443` instead of refusing it: answer 200, speak TLS
        with a leaf certificate for that host signed by a throwaway CA made in `directory`, and
        serve the same fake Messages API inside (its requests are recorded with
        `host: "api.anthropic.com"`). Returns the CA's certificate file: the client must trust it
        (NODE_EXTRA_CA_CERTS). Any other CONNECT is still refused."""
        ca, leaf, key = make_plan_certs(directory)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(leaf, key)
        context.set_alpn_protocols(["http/1.1"])
        self.tls, self.ca = context, ca
        return ca

    def clear(self):
        with self.lock:
            self.requests.clear()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":  # manual experiments: python tests/e2e/fake_anthropic.py
    fake = FakeAnthropic()
    print(fake.url, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.close()
