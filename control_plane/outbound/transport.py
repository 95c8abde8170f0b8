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
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpcore
import httpx

from control_plane.outbound.egress import EgressPolicy, EgressRefused

#: Threads resolving host names, for all of a runner's calls.
DNS_THREADS = 8


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
        self.inner = httpcore.AnyIOBackend()
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
                return await self.inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
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
        await self.inner.sleep(seconds)


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
        self._pool = httpcore.AsyncConnectionPool(
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
