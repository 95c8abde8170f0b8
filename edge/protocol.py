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
  time never times out. The head must be complete within `header_timeout_s` of its first byte,
  and the body within `body_timeout_s` of the end of the head (408, then close). A new
  connection must start its first request within `header_timeout_s` too (then it is closed).
- There was no bound on connections: past `max_connections`, a new one gets a fixed 503 and is
  closed at once (its bytes are read and dropped for a moment first, so the answer is not lost
  to a TCP reset).
- A head too large said 413 `body_too_large`: the request line alone too long is 414, else 431.

And Sanic sends an empty `alt-svc:` header on every answer (meant for HTTP/3, which the edge does
not serve); it is left out.
"""

from __future__ import annotations

import asyncio
import re

from sanic.compat import Header
from sanic.exceptions import BadRequest, PayloadTooLarge, SanicException
from sanic.http import Http
from sanic.server.protocols.http_protocol import HttpProtocol

from edge import errors

# One scan of the raw head finds what may not be in one (RFC 9110 §5.5, RFC 9112 §2.2, §5):
# a control character other than HTAB and the CRLF line ends, a bare CR or LF, and a header
# line that does not start with a field name (a token) and a colon - which also refuses
# obsolete line folding and whitespace before the colon.
_TOKEN = rb"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_BAD_HEAD = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]|\r(?!\n)|(?<!\r)\n|\r\n(?!" + _TOKEN + rb":)"
)
_REQUEST_LINE = re.compile(rb"\A" + _TOKEN + rb" [\x21-\x7e]+ HTTP/1\.[01](?:\r\n|\Z)")

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
            async with asyncio.timeout(limits.header_timeout_s):
                await super().http1_request_header()
            head = self.request.head
            if _BAD_HEAD.search(head) or not _REQUEST_LINE.match(head):
                raise errors.MalformedRequest
        except BaseException as e:
            # The URL goes: error handling would otherwise build a request from it.
            self.url = None
            self.request = None
            self.request_body = None  # nothing more is read: the connection closes
            if isinstance(e, TimeoutError):
                raise errors.RequestTimeout from None
            if isinstance(e, PayloadTooLarge):
                raise self._too_large() from None
            if isinstance(e, errors.CallbackError) or not isinstance(e, Exception):
                raise
            if isinstance(e, SanicException) and not isinstance(e, BadRequest):
                raise  # e.g. 417 for an unknown Expect: its own answer, without the URL
            # BadRequest, and whatever Sanic's parsing let through (BadURL quotes the URL).
            raise errors.MalformedRequest from None
        self.body_deadline = asyncio.get_running_loop().time() + limits.body_timeout_s
        # A first request came: from now on an idle connection may wait for the next one.
        self.protocol.keep_alive_timeout = limits.keep_alive_timeout_s

    async def http1_response_header(self, data: bytes, end_stream: bool) -> None:
        self.response.headers = _ResponseHeaders(self.response.headers)
        await super().http1_response_header(data, end_stream)

    def _too_large(self) -> errors.CallbackError:
        """414 when the request line alone does not fit in the head limit, else 431."""
        line_end = self.recv_buffer.find(b"\r\n", 0, self.HEADER_MAX_SIZE + 2)
        return errors.UriTooLong() if line_end == -1 else errors.HeadersTooLarge()

    async def read(self) -> bytes | None:
        try:
            async with asyncio.timeout_at(self.body_deadline):
                return await super().read()
        except TimeoutError:
            # What is left of the body will not be read: the connection closes after the 408.
            self.keep_alive = False
            self.request_body = None
            raise errors.RequestTimeout from None


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
        if not self._refused:
            super().data_received(data)

    def eof_received(self) -> bool | None:
        if self._refused:
            self.transport.close()
            return None
        return super().eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._refused:
            super().connection_lost(exc)
