"""`python -m edge`: serve the edge from EdgeSettings.from_env() in this one process."""

from __future__ import annotations

import asyncio
import logging
import sys

from edge.app import create_app
from edge.config import EdgeSettings
from edge.server import EdgeServer, serve_until_signalled


async def main() -> None:
    settings = EdgeSettings.from_env()
    app = create_app(settings, touchup=True)  # the only app in this process

    def listening(server: EdgeServer) -> None:
        print(f"edge {settings.edge_id} listening on {server.url}", flush=True)

    await serve_until_signalled(app, settings.host, settings.port, listening)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(main())
    except ValueError as e:  # settings
        print(f"edge: {e}", file=sys.stderr)
        sys.exit(2)
