"""`python -m edge`: serve the edge from EdgeSettings.from_env(): in this process, or, with
EDGE_WORKERS > 1, in that many worker processes sharing the port (edge/workers.py)."""

from __future__ import annotations

import errno
import logging
import os
import sys

# grpc_io before anything imports grpc: it picks gRPC core's I/O path (boomerang/grpc_io.py).
from boomerang import event_loop, grpc_io, heap  # noqa: F401
from edge import redact, workers
from edge.app import create_app
from edge.config import EdgeSettings
from edge.server import EdgeServer, serve_until_signalled

# What binding the listening socket can fail with; said in one line, not a traceback.
_BIND_ERRORS = (errno.EADDRINUSE, errno.EADDRNOTAVAIL, errno.EACCES)


async def serve(settings: EdgeSettings) -> int:
    app = create_app(settings, touchup=True)  # the only app in this process

    def listening(server: EdgeServer) -> None:
        heap.freeze_startup()  # full GC collections skip what start-up built (boomerang/heap.py)
        print(f"edge {settings.edge_id} listening on {server.url}", flush=True)

    try:
        await serve_until_signalled(
            app, settings.host, settings.port, listening, reuse_port=settings.reuse_port
        )
    except OSError as e:
        if e.errno not in _BIND_ERRORS:
            raise
        print(
            f"edge: cannot listen on {settings.host}:{settings.port}: {os.strerror(e.errno)}; "
            "set EDGE_PORT (or EDGE_HOST)",
            file=sys.stderr,
        )
        return 2
    return 0


def main() -> int:
    settings = EdgeSettings.from_env()
    run = event_loop.runner()  # refuses a bad BOOMERANG_EVENT_LOOP before anything starts
    if settings.workers > 1:
        return workers.supervise(settings)
    return run(serve(settings))


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Nothing logs a signature (docs/http.md); this scrubs any that would slip through anyway.
    redact.install()
    try:
        sys.exit(main())
    except ValueError as e:  # settings
        print(f"edge: {e}", file=sys.stderr)
        sys.exit(2)
