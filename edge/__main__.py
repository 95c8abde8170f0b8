"""`python -m edge`: serve the edge from EdgeSettings.from_env() in this one process."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from edge.app import create_app
from edge.config import EdgeSettings
from edge.server import EdgeServer


async def main() -> None:
    settings = EdgeSettings.from_env()
    app = create_app(settings, touchup=True)  # the only app in this process
    server = await EdgeServer.start(app, settings.host, settings.port)
    print(f"edge {settings.edge_id} listening on {server.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.stop()


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(main())
    except ValueError as e:  # settings
        print(f"edge: {e}", file=sys.stderr)
        sys.exit(2)
