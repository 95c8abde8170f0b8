"""The baseline for bench/callback_path.py: a bare Sanic handler served exactly like the edge.

`python bench/bare_app.py --port N` serves one GET route with the edge's path shape that answers
what the benchmark's trivial flow answers for `?sku=A1`: `[{"sku":"A1","stock":7}]` as
application/json. No signature check, no cache, no run: only Sanic.

For a fair comparison it is served the way `python -m edge` serves the edge: the same
`edge.server.EdgeServer` (Sanic's low-level `create_server`) on the loop the edge picks
(boomerang/event_loop.py: uvloop unless BOOMERANG_EVENT_LOOP says otherwise), one process, and the
edge's server settings: no Sanic access log, no MOTD, TouchUp on (as `python -m edge` has it).
The edge's own request work (its access log line, metrics, error handler) is what the benchmark
measures on top of this.
"""

from __future__ import annotations

import argparse

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

from boomerang.event_loop import runner
from edge.protocol import Limits
from edge.server import EdgeServer, serve_until_signalled


async def stock(request: Request, company: str, callback_id: str) -> HTTPResponse:
    # The flow's map shape: {sku: payload.sku, stock: `7`}, answered as a one-item bucket.
    return json([{"sku": request.args.get("sku"), "stock": 7}])


def create_app(name: str = "bench-bare") -> Sanic:
    app = Sanic(name, configure_logging=False)
    # The edge's settings (edge/app.py), so only the handler differs.
    app.config.ACCESS_LOG = False
    app.config.MOTD = False
    app.config.TOUCHUP = True
    # The edge's connection handling (edge.protocol) with its default limits.
    app.ctx.limits = Limits(
        header_timeout_s=10, body_timeout_s=30, keep_alive_timeout_s=75, max_connections=1000
    )
    app.add_route(stock, "/api/v1/<company>/<callback_id>", methods=("GET",))
    return app


def _listening(server: EdgeServer) -> None:
    print(f"bare app listening on {server.url}", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    runner()(serve_until_signalled(create_app(), args.host, args.port, _listening))
