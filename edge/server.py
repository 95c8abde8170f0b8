"""Serve an edge app inside the current event loop: one process, no worker manager, no fork.

Sanic's `run()` (even with `single_process=True`) also installs its own loop, logging and signal
handling; `python -m edge` and the tests share this smaller path instead, built on Sanic's
documented low-level `create_server` API, which leaves the lifecycle events to the caller.
"""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import Callable

from sanic import Sanic
from sanic.server.async_server import AsyncioServer

from edge.protocol import EdgeProtocol


class EdgeServer:
    """A listening app; `await stop()` drains it and runs the shutdown listeners."""

    def __init__(self, server: AsyncioServer, sock: socket.socket) -> None:
        self._server = server
        self._sock = sock
        self.host, self.port = sock.getsockname()[:2]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @classmethod
    async def start(cls, app: Sanic, host: str, port: int, reuse_port: bool = False) -> EdgeServer:
        """Bind (port 0 picks a free port), run the startup listeners, then accept connections.
        `reuse_port`: bind with SO_REUSEPORT, sharing the port with other processes that do."""
        sock = socket.create_server((host, port), backlog=1024, reuse_port=reuse_port)
        sock.setblocking(False)
        server = await app.create_server(
            sock=sock,
            protocol=EdgeProtocol,  # the connection limits (docs/http.md)
            return_asyncio_server=True,
            asyncio_server_kwargs={"start_serving": False},
        )
        assert server is not None
        await server.startup()
        await server.before_start()
        await server.start_serving()
        await server.after_start()
        return cls(server, sock)

    async def stop(self, grace_s: float = 5.0) -> None:
        server = self._server
        await server.before_stop()
        closing = server.close()
        for conn in list(server.connections):
            conn.close_if_idle()
        deadline = asyncio.get_running_loop().time() + grace_s
        # Sanic signals no "connections drained" event; poll like its own shutdown does.
        while server.connections and asyncio.get_running_loop().time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for conn in list(server.connections):
            conn.abort()
        if closing is not None:
            await closing
        await server.after_stop()
        self._sock.close()


async def serve_until_signalled(
    app: Sanic,
    host: str,
    port: int,
    on_listening: Callable[[EdgeServer], None],
    reuse_port: bool = False,
) -> None:
    """Serves `app` until SIGINT or SIGTERM, then stops gracefully (`python -m edge`, bench)."""
    server = await EdgeServer.start(app, host, port, reuse_port)
    on_listening(server)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()
