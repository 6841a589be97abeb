"""A fault-injecting HTTP proxy on loopback, in front of the moto S3 server: S3 faults through the real HTTP path.

A seeded share of GETs, PUTs, HEADs and LISTs is answered with ``503 SlowDown``, ``500 InternalError``, a
connection reset (for GETs after half the body, for PUTs sometimes after the object was written, so the
client never learns it succeeded) or a slow answer. Everything else is forwarded unchanged. The proxy counts
requests and faults per operation, for the tests to compare with the job's own retry counts.
"""

from __future__ import annotations

import http.client
import random
import socket
import struct
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

ERROR_XML = (
    '<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code><Message>{message}</Message>'
    "<RequestId>fault-proxy</RequestId></Error>"
)
KINDS = ("slowdown", "internal", "reset", "slow")


@dataclass
class FaultPlan:
    """Which share of each operation fails, and how. ``share`` keys: get, put, head, list."""

    share: dict[str, float] = field(default_factory=lambda: {"get": 0.1, "put": 0.1, "head": 0.1, "list": 0.1})
    kinds: tuple[str, ...] = KINDS
    seed: int = 0
    slow_s: float = 0.3


def operation(method: str, path: str) -> str:
    """get/put/head/list for object and listing requests (path-style URLs), "other" for the rest."""
    parts = urlsplit(path)
    has_key = len(parts.path.strip("/").split("/", 1)) == 2
    if method == "GET":
        return "get" if has_key else ("list" if "list-type" in parts.query or not parts.query else "other")
    if method == "PUT" and has_key and "uploadId" not in parts.query:
        return "put"
    if method == "HEAD" and has_key:
        return "head"
    return "other"


class FaultProxy:
    """``with FaultProxy(upstream, plan) as proxy: ... proxy.url ...``; ``faults`` and ``requests`` count."""

    def __init__(self, upstream: str, plan: FaultPlan) -> None:
        self.upstream = urlsplit(upstream)
        self.plan = plan
        self.enabled = True
        self.requests: Counter[str] = Counter()
        self.faults: Counter[tuple[str, str]] = Counter()
        self._rng = random.Random(plan.seed)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_class(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def choose(self, op: str) -> str | None:
        """The fault for this request (None: forward it), drawn from the seeded generator."""
        with self._lock:
            self.requests[op] += 1
            if not self.enabled or self._rng.random() >= self.plan.share.get(op, 0.0):
                return None
            kind = self._rng.choice(self.plan.kinds)
            self.faults[(op, kind)] += 1
            return kind

    def coin(self) -> bool:
        with self._lock:
            return self._rng.random() < 0.5

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=60)
        conn.request(method, path, body=body if body or method in {"PUT", "POST"} else None, headers=headers)
        return conn.getresponse()


def _handler_class(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._handle()

        do_PUT = do_POST = do_HEAD = do_DELETE = do_GET

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in {b"\r\n", b"\n", b""}:
                    pass  # trailers
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _handle(self) -> None:
            body = self._body()
            headers = {k: v for k, v in self.headers.items() if k.lower() not in {"transfer-encoding", "connection"}}
            if self.command in {"PUT", "POST"}:
                headers["Content-Length"] = str(len(body))
            op = operation(self.command, self.path)
            kind = proxy.choose(op)
            if kind == "slow":
                time.sleep(proxy.plan.slow_s)
            elif kind == "slowdown":
                return self._error(503, "SlowDown", "Please reduce your request rate.")
            elif kind in {"internal", "reset"} and op == "put" and proxy.coin():
                proxy.forward(self.command, self.path, headers, body).read()  # written, but the answer is lost
                return self._internal() if kind == "internal" else self._reset()
            elif kind == "internal":
                return self._internal()
            elif kind == "reset" and op != "get":
                return self._reset()
            upstream = proxy.forward(self.command, self.path, headers, body)
            data = upstream.read()
            self.send_response(upstream.status)
            for key, value in upstream.getheaders():
                if key.lower() not in {"transfer-encoding", "connection", "content-length"}:
                    self.send_header(key, value)
            length = upstream.getheader("Content-Length") if self.command == "HEAD" else str(len(data))
            self.send_header("Content-Length", length or "0")
            self.end_headers()
            if self.command == "HEAD":
                return
            if kind == "reset":  # a GET cut off mid-body
                self.wfile.write(data[: len(data) // 2])
                self.wfile.flush()
                return self._reset()
            self.wfile.write(data)

        def _error(self, status: int, code: str, message: str) -> None:
            payload = b"" if self.command == "HEAD" else ERROR_XML.format(code=code, message=message).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _internal(self) -> None:
            self._error(500, "InternalError", "We encountered an internal error.")

        def _reset(self) -> None:
            """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

    return Handler
