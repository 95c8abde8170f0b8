"""The edge's HTTP/1.1 connection handling: Sanic's, with the limits a public server needs
(docs/http.md).

Sanic's own handling leaves four gaps this module closes, by subclassing its protocol and its
HTTP/1.1 state machine rather than patching them:

- A request head Sanic cannot make a Request of (a NUL, TAB or DEL in the target, say) raised
  past its error handling: no answer, and a logged traceback quoting the URL, signature and all.
  Every failure to read a head is turned here into one of our errors (400, 408, 414, 431),
  answered as JSON, and the connection closed; the URL is dropped first, so nothing downstream
  can print it. Sanic also accepts control characters and non-token names in header lines;
  they get 400 here, as in nginx or HAProxy.
- Sanic's REQUEST_TIMEOUT counts from the last byte received, so a head trickled a byte at a
  time never times out. Here the head must be complete within `header_timeout_s` of its first
  byte, and the body within `body_timeout_s` of the end of the head (408, then close). A new
  connection must start its first request within `header_timeout_s` too (then it is closed).
  Both ride on Sanic's own periodic timeout check rather than a timer per request: an
  `asyncio.timeout` around each head costs ~6 µs of event-loop time per request.
- There was no bound on connections: past `max_connections`, a new one gets a fixed 503 and is
  closed at once (its bytes are read and dropped for a moment first, so the answer is not lost
  to a TCP reset).
- A head too large said 413 `body_too_large`: the request line alone too long is 414, else 431.

And Sanic sends an empty `alt-svc:` header on every answer (meant for HTTP/3, which the edge does
not serve); it is left out.
"""

from __future__ import annotations

import re
from time import monotonic as current_time

from sanic.compat import Header
from sanic.exceptions import BadRequest, PayloadTooLarge, SanicException
from sanic.http import Http, Stage
from sanic.server.protocols.http_protocol import HttpProtocol

from edge import errors

# What may not be in a request head (RFC 9110 §5.5, RFC 9112 §2.2, §3, §5): a control character
# other than HTAB and the CRLF line ends; a bare CR or LF; a header line that does not start with
# a field name (a token) and a colon, which also refuses obsolete line folding and whitespace
# before the colon; a request line other than `token SP printable-target SP HTTP/1.x`. Three
# quick scans (~2.5 µs for a typical head) rather than one regex with lookbehinds (~7 µs).
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_NOT_A_FIELD = re.compile(rb"\r\n(?!" + _TOKEN + rb":)")
_REQUEST_LINE = re.compile(rb"\A" + _TOKEN + rb" [\x21-\x7e]+ HTTP/1\.[01](?:\r\n|\Z)")


def valid_head(head: bytes) -> bool:
    crlf = head.count(b"\r\n")
    return (
        head.count(b"\r") == crlf
        and head.count(b"\n") == crlf
        and _REQUEST_LINE.match(head) is not None
        and _CONTROL.search(head) is None
        and _NOT_A_FIELD.search(head) is None
    )


#: What a connection past the cap gets: fixed bytes, written before any of its request is read.
REFUSED = (
    b"HTTP/1.1 503 Service Unavailable\r\n"
    b"content-type: application/json\r\n"
    b"retry-after: 1\r\n"
    b"connection: close\r\n"
    b"content-length: %d\r\n\r\n"
)
_REFUSED_BODY = (
    b'{"error":"too_many_connections","message":"This edge has as many connections as it '
    b'takes; retry after the Retry-After seconds.","run_id":null}'
)
REFUSED_RESPONSE = REFUSED % len(_REFUSED_BODY) + _REFUSED_BODY
#: How long a refused connection's bytes are read and dropped before it is closed.
REFUSED_LINGER_S = 0.5


class EdgeHttp(Http):
    __slots__ = ("body_deadline",)

    async def http1_request_header(self) -> None:
        limits = self.protocol.limits
        try:
            await super().http1_request_header()
            if not valid_head(self.request.head):
                raise errors.MalformedRequest
        except BaseException as e:
            # The URL goes: error handling would otherwise build a request from it.
            self.url = None
            self.request = None
            self.request_body = None  # nothing more is read: the connection closes
            if isinstance(e, PayloadTooLarge):
                raise self._too_large() from None
            if isinstance(e, errors.CallbackError) or not isinstance(e, Exception):
                raise
            if isinstance(e, SanicException) and not isinstance(e, BadRequest):
                raise  # e.g. 417 for an unknown Expect: its own answer, without the URL
            # BadRequest, and whatever Sanic's parsing let through (BadURL quotes the URL).
            raise errors.MalformedRequest from None
        self.body_deadline = current_time() + limits.body_timeout_s
        # A first request came: from now on an idle connection may wait for the next one.
        self.protocol.keep_alive_timeout = limits.keep_alive_timeout_s

    async def http1_response_header(self, data: bytes, end_stream: bool) -> None:
        self.response.headers = _ResponseHeaders(self.response.headers)
        await super().http1_response_header(data, end_stream)

    def _too_large(self) -> errors.CallbackError:
        """414 when the request line alone does not fit in the head limit, else 431."""
        line_end = self.recv_buffer.find(b"\r\n", 0, self.HEADER_MAX_SIZE + 2)
        return errors.UriTooLong() if line_end == -1 else errors.HeadersTooLarge()


class _ResponseHeaders(Header):
    """Drops the empty `alt-svc` Sanic sets on every response."""

    def __setitem__(self, key: str, value: object) -> None:
        if value != "" or key != "alt-svc":
            super().__setitem__(key, value)


class Limits:
    """The connection limits of one edge (from EdgeSettings), shared by its connections."""

    __slots__ = (
        "body_timeout_s",
        "header_timeout_s",
        "keep_alive_timeout_s",
        "max_connections",
        "refused",
    )

    def __init__(
        self,
        header_timeout_s: float,
        body_timeout_s: float,
        keep_alive_timeout_s: float,
        max_connections: int,
    ):
        self.header_timeout_s = header_timeout_s
        self.body_timeout_s = body_timeout_s
        self.keep_alive_timeout_s = keep_alive_timeout_s
        self.max_connections = max_connections
        #: Called once per refused connection (a metric).
        self.refused = _nothing


def _nothing() -> None:
    pass


class EdgeProtocol(HttpProtocol):
    HTTP_CLASS = EdgeHttp
    __slots__ = ("_refused", "limits")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.limits: Limits = self.app.ctx.limits
        self._refused = False

    def connection_made(self, transport) -> None:
        if len(self.connections) >= self.limits.max_connections:
            # Not added to the connections, no task, no buffer: a refused connection costs a
            # write and a timer.
            self._refused = True
            self.transport = transport
            self.limits.refused()
            transport.write(REFUSED_RESPONSE)
            if transport.can_write_eof():
                transport.write_eof()
            self.loop.call_later(REFUSED_LINGER_S, transport.close)
            return
        super().connection_made(transport)
        # Until its first request arrives, a connection gets the header timeout, not the
        # keep-alive one (nginx's client_header_timeout also counts from the accept): 1000
        # connections that never send a byte would otherwise hold the cap for 75 s at a time.
        self.keep_alive_timeout = self.limits.header_timeout_s

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        # Unset until the connection's task has started: on uvloop the first bytes may come
        # before that, and then they are the head's first, which sets `_time` as it should.
        http = getattr(self, "_http", None)
        if http is not None and http.stage is Stage.REQUEST:
            # Sanic's REQUEST_TIMEOUT check measures from `_time`, which every read moves: kept
            # where it was (the head's first byte, or the previous answer when pipelined), it
            # bounds the whole head.
            started = self._time
            super().data_received(data)
            self._time = started
        else:
            super().data_received(data)

    def check_timeouts(self) -> None:
        """Sanic's check (keep-alive, head, response), plus the body deadline."""
        http = getattr(self, "_http", None)
        if (
            self._task is not None
            and http is not None
            and http.stage is Stage.HANDLER
            and http.request_body
            and current_time() > http.body_deadline
        ):
            # The handler is still waiting for the body: cancel it; Http answers with
            # `exception` and, not keeping alive, closes. The rest of the body is not read.
            http.request_body = None
            http.keep_alive = False
            http.exception = errors.RequestTimeout()
            self._task.cancel()
            return
        super().check_timeouts()

    def eof_received(self) -> bool | None:
        if self._refused:
            self.transport.close()
            return None
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._refused:
            super().connection_lost(exc)
