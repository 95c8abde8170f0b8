"""The httpx transport of outbound calls: DNS resolved once, the address checked and pinned.

httpx hands the host name to httpcore, which hands it to a network backend to connect. This
backend resolves the name itself, keeps only the addresses the egress rule allows (egress.py) and
connects to one of those addresses, so the address checked is the address used; TLS still
verifies the certificate against, and sends SNI for, the URL's host name, and the Host header is
the URL's (httpcore does both from the URL, not from the socket). Every new connection goes
through here, so a redirect to another host is checked like the first request. Proxies from the
environment are never used (a proxy would be connected to instead of the checked address).

Responses are capped at `max_response_bytes` while they stream in (`ResponseTooLarge`), for every
request on this transport, the OAuth2 token endpoint's included. That counts the bytes received;
a compressed body can decode to far more, so whoever reads a decoded body counts again (the
connector does), and a request that asked for `Accept-Encoding: identity` (the token endpoint's)
refuses an encoded answer here.
"""

from __future__ import annotations

import asyncio
import functools
import socket
import ssl
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpcore
import httpx

from control_plane.outbound import streams
from control_plane.outbound.egress import EgressPolicy, EgressRefused

#: Threads resolving host names, for all of a runner's calls.
DNS_THREADS = 8
#: Seconds between two checks of every pooled connection for expiry (keep-alive time out, or
#: closed by the server); in between, only the connection about to be reused is checked.
SWEEP_S = 1.0


class ResponseTooLarge(Exception):
    type = "response_too_large"
    status = None

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"the response is larger than {limit} bytes (the runner's "
            "BOOMERANG_OUTBOUND_MAX_RESPONSE_BYTES)"
        )


class PinnedBackend(httpcore.AsyncNetworkBackend):
    """Connects to the first allowed address a host name resolves to."""

    def __init__(self, policy: EgressPolicy) -> None:
        self.policy = policy
        # getaddrinfo blocks a thread and cannot be cancelled: a tenant's name whose DNS never
        # answers holds one for the resolver's own timeout. Its own threads, so slow names
        # delay only other resolutions, not the loop's default executor.
        self.resolvers = ThreadPoolExecutor(DNS_THREADS, thread_name_prefix="dns")

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolve(host, port, timeout)
        allowed = []
        refused = None
        for address in addresses:
            why = self.policy.refusal(address)
            if why:
                refused = refused or EgressRefused(host, address, why)
            else:
                allowed.append(address)
        if not allowed:
            raise refused or httpcore.ConnectError(f"{host} has no address")
        error: Exception | None = None
        for address in allowed:  # in the resolver's order, as a browser would
            try:
                return await streams.connect(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def _resolve(self, host: str, port: int, timeout: float | None) -> list[str]:  # noqa: ASYNC109
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                infos = await loop.run_in_executor(
                    self.resolvers,
                    functools.partial(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM),
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except (OSError, UnicodeError) as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        seen: dict[str, None] = {}
        for _family, _type, _proto, _name, sockaddr in infos:
            seen.setdefault(str(sockaddr[0]), None)
        return list(seen)

    async def connect_unix_socket(self, *args: Any, **kwargs: Any) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("outbound calls do not use Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport with its connection pool built on `PinnedBackend`."""

    def __init__(
        self,
        policy: EgressPolicy,
        limits: httpx.Limits,
        max_response_bytes: int,
        ca_file: str = "",
    ) -> None:
        # Certificates are verified (against certifi's CAs, or the operator's file), always.
        verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
        super().__init__(limits=limits, trust_env=False, verify=verify)
        ssl_context = self._pool._ssl_context  # the verifying context httpx built
        # httpx has no parameter for the network backend; the pool it builds is replaced by
        # the same pool on ours (httpx is pinned in constraints.txt).
        self.backend = PinnedBackend(policy)
        self._pool = LinearPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )
        self.max_response_bytes = max_response_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        limit = self.max_response_bytes
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await response.aclose()
            raise ResponseTooLarge(limit)
        encoding = response.headers.get("content-encoding", "identity").strip().lower()
        if encoding != "identity" and request.headers.get("accept-encoding") == "identity":
            await response.aclose()
            raise httpx.DecodingError(f"the response is {encoding}-encoded; identity was asked")
        response.stream = _Capped(response.stream, limit)
        return response

    async def aclose(self) -> None:
        await super().aclose()
        self.backend.resolvers.shutdown(wait=False, cancel_futures=True)


class LinearPool(httpcore.AsyncConnectionPool):
    """httpcore's connection pool, its bookkeeping at most linear in its connections.

    httpcore (1.0.9) redoes its bookkeeping when a request starts and again when its response
    is closed, and that pass costs connections² `is_idle` calls plus one `poll` system call (and
    anyio's attribute lookups) per idle connection: with 32 connections to one upstream at full
    concurrency, ~3 ms of CPU per request, more than the request itself. This pass makes the
    same decisions in less: the connection handed to a request is the first free one to its
    origin, checked for expiry first (its keep-alive time passed, or the server closed it), as
    httpcore checks it; a request with no reusable connection gets a new one, in place of an idle
    one when the pool is full. The other connections are walked every SWEEP_S (or when the pool
    is full): closed ones dropped, expired ones and idle ones past the keep-alive limit closed (an
    expired idle connection only holds a socket meanwhile). A connection is given to one request
    at a time (HTTP/1.1 only: this pool never speaks HTTP/2), where httpcore may give one to two
    requests and make the second start over.

    It replaces a private method of httpcore's pool: httpcore is pinned in constraints.txt, and
    tests/outbound/test_outbound_pool.py checks the behaviour it relies on."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._swept_at = time.monotonic()

    def _assign_requests_to_connections(self) -> list[Any]:
        closing: list[Any] = []
        now = time.monotonic()
        if now - self._swept_at >= SWEEP_S:
            self._swept_at = now
            self._sweep(closing, expired=True)
        queued = [request for request in self._requests if request.is_queued()]
        if not queued:
            return closing  # a response was closed and nobody waits: nothing to decide
        # A connection given to a request that has not started on it yet still says it is
        # available: it is not (httpcore would hand it out twice, and one request would retry).
        taken = {id(r.connection) for r in self._requests if r.connection is not None}
        for pool_request in queued:
            origin = pool_request.request.url.origin
            connection = self._reusable(origin, taken, closing)
            if connection is None:
                if len(self._connections) >= self._max_connections:
                    self._sweep(closing, expired=False)  # make room: closed ones out
                if len(self._connections) >= self._max_connections:
                    idle = next(
                        (c for c in self._connections if id(c) not in taken and c.is_idle()), None
                    )
                    if idle is None:
                        continue  # it waits for a connection to be released
                    self._connections.remove(idle)
                    closing.append(idle)
                connection = self.create_connection(origin)
                self._connections.append(connection)
            taken.add(id(connection))
            pool_request.assign_to_connection(connection)
        return closing

    def _sweep(self, closing: list[Any], expired: bool) -> None:
        """Drops closed connections; closes idle ones past the keep-alive limit and, when
        `expired`, every one that has expired."""
        kept: list[Any] = []
        count = len(self._connections)
        for connection in self._connections:
            if connection.is_closed():
                count -= 1
            elif (expired and connection.has_expired()) or (
                count > self._max_keepalive_connections and connection.is_idle()
            ):
                count -= 1
                closing.append(connection)
            else:
                kept.append(connection)
        self._connections = kept

    def _reusable(self, origin: httpcore.Origin, taken: set[int], closing: list[Any]) -> Any:
        """The first free connection to `origin` that has not expired; expired ones met on the
        way are closed."""
        connections = self._connections
        i = 0
        while i < len(connections):
            connection = connections[i]
            if (
                id(connection) in taken
                or not connection.is_available()
                or not connection.can_handle_request(origin)
            ):
                i += 1
            elif connection.has_expired():
                del connections[i]
                closing.append(connection)
            else:
                return connection
        return None


class _Capped(httpx.AsyncByteStream):
    def __init__(self, stream: Any, limit: int) -> None:
        self.stream, self.limit = stream, limit

    async def __aiter__(self) -> AsyncIterator[bytes]:
        total = 0
        async for chunk in self.stream:
            total += len(chunk)
            if total > self.limit:
                raise ResponseTooLarge(self.limit)
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()
