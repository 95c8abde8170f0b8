"""httpcore's network stream on asyncio's own streams, without anyio's layers.

httpcore (1.0.9) has no asyncio backend of its own; its anyio one wraps each read and write in
an anyio cancel scope and checkpoint, and answers "is this idle connection readable?" by
building anyio's whole attribute table (a getpeername system call among it) and polling the
socket: about a quarter of the CPU of a keep-alive call to a loopback upstream. These streams
read and write through the loop's transport, each bounded by `asyncio.timeout`, and raise
httpcore's exceptions, as its backends do. `connect` connects to an IP address only: the
caller (transport.PinnedBackend) has resolved the name and checked the address.

The loop's transport reads the socket as data comes, so a server's close of an idle keep-alive
connection shows as end-of-file on the reader (not as a readable socket): "is_readable" answers
from the reader, which is what httpcore asks before reusing a connection.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpcore


async def connect(
    address: str,
    port: int,
    timeout: float | None,  # noqa: ASYNC109 (httpcore's interface)
    local_address: str | None,
    socket_options: Any,
) -> httpcore.AsyncNetworkStream:
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                address, port, local_addr=(local_address, 0) if local_address else None
            )
    except TimeoutError:
        raise httpcore.ConnectTimeout(f"connecting to {address} timed out") from None
    except OSError as exc:
        raise httpcore.ConnectError(str(exc) or type(exc).__name__) from None
    sock = writer.get_extra_info("socket")
    for option in socket_options or ():
        sock.setsockopt(*option)
    return Stream(reader, writer)


class Stream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:  # noqa: ASYNC109
        try:
            async with asyncio.timeout(timeout):
                return await self.reader.read(max_bytes)
        except TimeoutError:
            raise httpcore.ReadTimeout("reading timed out") from None
        except (OSError, ssl.SSLError) as exc:
            raise httpcore.ReadError(str(exc) or type(exc).__name__) from None

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:  # noqa: ASYNC109
        if not buffer:
            return
        try:
            if self.writer.is_closing():
                raise ConnectionResetError("the connection is closed")
            self.writer.write(buffer)
            async with asyncio.timeout(timeout):
                await self.writer.drain()
        except TimeoutError:
            raise httpcore.WriteTimeout("writing timed out") from None
        except (OSError, ssl.SSLError, RuntimeError) as exc:
            raise httpcore.WriteError(str(exc) or type(exc).__name__) from None

    async def aclose(self) -> None:
        # Not waited for: the pool closes connections shielded from cancellation, and a TLS
        # peer that never answers the close would hold it.
        self.writer.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                await self.writer.start_tls(ssl_context, server_hostname=server_hostname)
        except TimeoutError:
            self.writer.close()
            raise httpcore.ConnectTimeout("the TLS handshake timed out") from None
        except (OSError, ssl.SSLError) as exc:
            self.writer.close()
            raise httpcore.ConnectError(str(exc) or type(exc).__name__) from None
        return self

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            # Asked of an idle connection: true when the server closed it (or reset it).
            reader = self.reader
            return reader.at_eof() or reader.exception() is not None or self.writer.is_closing()
        if info == "ssl_object":
            return self.writer.get_extra_info("ssl_object")
        if info == "client_addr":
            return self.writer.get_extra_info("sockname")
        if info == "server_addr":
            return self.writer.get_extra_info("peername")
        if info == "socket":
            return self.writer.get_extra_info("socket")
        return None
