"""A real HTTP/1.1 server on loopback for outbound tests: routes answer as a test tells them,
every request received is recorded."""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Seen:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]  # lowercase names
    body: bytes
    port: int = 0  # the client's: one per connection


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | object = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # before the status line
    # Sent without Content-Length, in pieces with a pause between: a slow or endless body.
    drip: tuple[bytes, int, float] | None = None  # (piece, count, pause)
    # Closes the connection after the answer without saying so (no Connection: close), as a
    # server whose keep-alive timed out does.
    hang_up: bool = False

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        body = self.body
        if isinstance(body, str):
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
            body = body.encode()
        elif not isinstance(body, bytes):
            headers.setdefault("Content-Type", "application/json")
            body = json.dumps(body).encode()
        return body, headers


Route = Callable[[Seen], Reply]


class Upstream:
    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qsl(parts.query, keep_blank_values=True),
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    self.client_address[1],
                )
                with upstream.lock:
                    upstream.seen.append(seen)
                route = upstream.routes.get(parts.path)
                reply = route(seen) if route else Reply(404, {"error": "no route"})
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                payload, headers = reply.encoded()
                self.send_response(reply.status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if reply.drip is None:
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(payload)
                    self.close_connection = self.close_connection or reply.hang_up
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                piece, count, pause = reply.drip
                try:
                    for _ in range(count):
                        self.wfile.write(piece)
                        self.wfile.flush()
                        time.sleep(pause)
                except OSError:
                    pass  # the client gave up
                self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.server.daemon_threads = True
        # A client that gave up (a timeout, a refused oversize body) breaks the pipe: expected.
        self.server.handle_error = lambda request, client_address: None
        self.scheme = "http"
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self.host = host
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def route(self, path: str, reply: Route | Reply) -> None:
        self.routes[path] = reply if callable(reply) else (lambda _seen, r=reply: r)

    def requests(self, path: str) -> list[Seen]:
        with self.lock:
            return [s for s in self.seen if s.path == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
