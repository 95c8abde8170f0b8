"""The runner's outbound HTTP client: one pool for every run, and one call with its rules.

`Outbound` is made once per runner process (control_plane/server.py) and closed at shutdown. It
holds the shared httpx.AsyncClient (a bounded connection pool on the guarded transport:
transport.py, egress.py), the OAuth2 token cache (oauth2.py), the connections' rate limits
(ratelimit.py) and the resolver that turns a connection name into its `ResolvedConnection`.

`call` makes one logical call: the rate limit, the credentials (auth.py), the Idempotency-Key
(the same on every attempt), redirects (at most MAX_REDIRECTS; credentials never follow one to
another origin), retries (retry.py), each attempt bounded by the call's timeout and all of
them by its deadline, and the body read up to the response cap, decoded bytes counted.
Cookies are never kept: runs of different tenants share the client.
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx

from control_plane.outbound import auth, retry
from control_plane.outbound.company_slots import CompanySlots
from control_plane.outbound.credentials import ApiKeyCredentials, ResolvedConnection
from control_plane.outbound.egress import EgressPolicy
from control_plane.outbound.oauth2 import TokenCache
from control_plane.outbound.ratelimit import RateLimiter
from control_plane.outbound.settings import OutboundSettings
from control_plane.outbound.transport import GuardedTransport, ResponseTooLarge

log = logging.getLogger(__name__)
# httpx logs every request at INFO with its whole URL: the query may hold a connection's API key
# (and a log line per call is CPU the runner's loop spends). Failures reach the run's error.
logging.getLogger("httpx").setLevel(logging.WARNING)

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})

#: Looks a connection up by (company slug, name); None when the company has no such connection.
Resolver = Callable[[str, str], Awaitable[ResolvedConnection | None]]


class CallFailed(Exception):
    """An outbound call that did not give an answer the flow accepts.

    `type` says what went wrong (connection, timeout, http_status, too_many_redirects,
    response_too_large, egress_refused, rate_limited, oauth2_token); `status` is the upstream's
    HTTP status when it answered."""

    def __init__(self, type_: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.type = type_
        self.status = status


@dataclass(slots=True)
class Call:
    method: str
    url: str
    idempotency_key: str
    timeout_s: float
    retries: int = 0
    headers: dict[str, str] = field(default_factory=dict)  # lowercase names
    query: list[tuple[str, str]] = field(default_factory=list)
    content: bytes | None = None
    connection: ResolvedConnection | None = None
    #: The run's company: its calls in flight are bounded (company_slots.py).
    company: str = ""


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes
    attempts: int

    @property
    def content_type(self) -> str:
        for name, value in self.headers:
            if name == "content-type":
                return value
        return ""


class Outbound:
    def __init__(self, settings: OutboundSettings, resolve: Resolver) -> None:
        self.settings = settings
        self.resolve = resolve
        limits = httpx.Limits(
            max_connections=settings.max_connections,
            # Kept open up to the limit: a busy flow calls the same few upstreams again and again.
            max_keepalive_connections=settings.max_connections,
            keepalive_expiry=30.0,
        )
        self.transport = GuardedTransport(
            EgressPolicy(settings.egress_allow),
            limits,
            settings.max_response_bytes,
            settings.ca_file,
        )
        no_cookies = http.cookiejar.CookieJar(
            policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[])
        )
        self.client = httpx.AsyncClient(
            transport=self.transport,
            trust_env=False,
            follow_redirects=False,
            cookies=no_cookies,
            headers={"user-agent": "boomerang-connector"},
        )
        self.tokens = TokenCache(self.transport)
        self.limiter = RateLimiter()
        # Calls past the pool's size wait here rather than in httpcore's queue, which is scanned
        # against every connection on each change.
        self.slots = asyncio.Semaphore(settings.max_connections)
        self.company_slots = CompanySlots(settings.company_calls)

    async def aclose(self) -> None:
        await self.client.aclose()

    async def call(self, call: Call, deadline: float) -> Answer:
        """Makes `call`; `deadline` (time.monotonic()) bounds it all, waits included.

        Returns the final answer whatever its status (retries spent); raises CallFailed when
        there is none, or EgressRefused / ResponseTooLarge / RateLimitWait / TokenError."""
        connection = call.connection
        attempt = 0
        token_refreshed = False
        while True:
            if connection is not None:
                await self.limiter.acquire(
                    auth.key(connection), connection.rate_limit_per_minute, deadline
                )
            left = deadline - time.monotonic()
            timeout = min(call.timeout_s, left)
            if timeout <= 0:
                raise CallFailed("timeout", "the call's time ran out before it could be made")
            headers = dict(call.headers)
            query = list(call.query)
            token = ""
            if connection is not None:
                token = await auth.authorize(connection, headers, query, self.tokens, timeout)
            headers["idempotency-key"] = call.idempotency_key
            try:
                # The company's slot first: waiting for it holds none of the pool's.
                async with asyncio.timeout(timeout), self.company_slots.hold(call.company):
                    async with self.slots:
                        answer = await self._send(call, headers, query, timeout, attempt + 1)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.RemoteProtocolError) as exc:
                # Nothing came back (refused, reset, closed before a status line).
                failure = CallFailed("connection", f"cannot reach {_origin(call.url)}: {exc}")
                if attempt < call.retries and await _pause(retry.backoff(attempt + 1), deadline):
                    attempt += 1
                    continue
                raise failure from None
            except (TimeoutError, httpx.TimeoutException):
                raise CallFailed(
                    "timeout", f"{_origin(call.url)} did not answer within {timeout:g} s"
                ) from None
            except httpx.TooManyRedirects as exc:
                raise CallFailed("too_many_redirects", str(exc)) from None
            except httpx.HTTPError as exc:  # a broken answer: decoding, framing
                raise CallFailed(
                    "connection", f"bad answer from {_origin(call.url)}: {exc}"
                ) from None
            if answer.status == 401 and token and not token_refreshed:
                # The token may have been revoked early: fetch a new one, once.
                self.tokens.forget(auth.key(connection), token)
                token_refreshed = True
                continue
            if retry.retryable_status(answer.status) and attempt < call.retries:
                wait = retry.retry_after(dict(answer.headers).get("retry-after"))
                if wait is None:
                    wait = retry.backoff(attempt + 1)
                if wait <= retry.MAX_RETRY_AFTER_S and await _pause(wait, deadline):
                    attempt += 1
                    continue
            return answer

    async def _send(
        self,
        call: Call,
        headers: dict[str, str],
        query: list[tuple[str, str]],
        timeout: float,  # noqa: ASYNC109 (httpx's own per-operation timeouts; the caller bounds it all)
        attempts: int,
    ) -> Answer:
        # Parsed once: given a string and params, httpx parses the URL again to merge them.
        url = httpx.URL(call.url)
        if query:
            url = url.copy_merge_params(query)
        request = self.client.build_request(
            call.method,
            url,
            headers=headers,
            content=call.content,
            timeout=httpx.Timeout(timeout),
        )
        for _ in range(MAX_REDIRECTS + 1):
            response = await self.client.send(request, stream=True, follow_redirects=False)
            try:
                if response.status_code not in _REDIRECTS or response.next_request is None:
                    body = await _read(response, self.settings.max_response_bytes)
                    return Answer(
                        response.status_code,
                        tuple((k.lower(), v) for k, v in response.headers.multi_items()),
                        body,
                        attempts,
                    )
                next_request = response.next_request
            finally:
                await response.aclose()
            if next_request.url.scheme not in ("http", "https"):
                raise CallFailed("connection", "a redirect left HTTP(S)")
            moved = (next_request.url.scheme, next_request.url.netloc) != (
                request.url.scheme,
                request.url.netloc,
            )
            if moved and call.connection is not None:
                _strip_credentials(next_request, call.connection)
            request = next_request
        raise CallFailed("too_many_redirects", f"more than {MAX_REDIRECTS} redirects")


def _strip_credentials(request: httpx.Request, connection: ResolvedConnection) -> None:
    """A redirect to another origin carries none of the connection's credentials (httpx only
    drops Authorization)."""
    request.headers.pop("authorization", None)
    credentials = connection.credentials
    if isinstance(credentials, ApiKeyCredentials) and credentials.location == "header":
        request.headers.pop(credentials.name, None)


async def _read(response: httpx.Response, limit: int) -> bytes:
    chunks, total = [], 0
    async for chunk in response.aiter_bytes():  # decoded: a small gzip can unpack to a lot
        total += len(chunk)
        if total > limit:
            raise ResponseTooLarge(limit)
        chunks.append(chunk)
    return b"".join(chunks)


async def _pause(seconds: float, deadline: float) -> bool:
    """Sleeps `seconds` unless that ends past `deadline` (then returns False at once)."""
    if time.monotonic() + seconds >= deadline:
        return False
    await asyncio.sleep(seconds)
    return True


def _origin(url: str) -> str:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        return "the upstream"
    return f"{parsed.scheme}://{parsed.netloc.decode('ascii', 'replace')}"
