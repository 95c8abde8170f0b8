"""`python -m console`: serve the console from ConsoleSettings.from_env() in this one process.

One process on purpose: sessions live in its memory (docs/console.md), so Sanic's worker
manager (which would fork several) is not used; Sanic's low-level `create_server` serves the app
inside this process's event loop, as the edge does.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import signal
import socket
import sys

from sanic import Sanic

from console.app import create_app
from console.config import ConsoleSettings

_BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


async def serve(app: Sanic, host: str, port: int) -> None:
    """Serves `app` until SIGINT or SIGTERM, then stops (its sessions end with it)."""
    sock = socket.create_server((host, port), backlog=128)
    sock.setblocking(False)
    server = await app.create_server(
        sock=sock, return_asyncio_server=True, asyncio_server_kwargs={"start_serving": False}
    )
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    bound_host, bound_port = sock.getsockname()[:2]
    print(f"console listening on http://{bound_host}:{bound_port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        # Already stopping: a second signal (the terminal's Ctrl-C, then `make run`'s SIGTERM)
        # must not land in the event loop's wakeup pipe while it closes.
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)
        await server.before_stop()
        await server.close()
        await server.after_stop()
        sock.close()


async def main() -> int:
    settings = ConsoleSettings.from_env()
    app = create_app(settings)
    try:
        await serve(app, settings.host, settings.port)
    except OSError as e:
        if e.errno not in _BIND_ERRORS:
            raise
        print(
            f"console: cannot listen on {settings.host}:{settings.port}: "
            f"{os.strerror(e.errno)}; set CONSOLE_PORT (or CONSOLE_HOST)",
            file=sys.stderr,
        )
        return 2
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        sys.exit(asyncio.run(main()))
    except ValueError as e:  # settings
        print(f"console: {e}", file=sys.stderr)
        sys.exit(2)
