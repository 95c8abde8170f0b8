"""The honest reference for bench/callback_path.py: a stock Sanic app, run as Sanic's docs run it.

`python bench/stock_app.py --port N` serves one GET route with the edge's path shape that answers
what the benchmark's trivial flow answers for `?sku=A1`: `[{"sku":"A1","stock":7}]` as
application/json. It is what a user would write instead of Boomerang for that one answer, run the
way Sanic's documentation runs an app: `app.run(single_process=True)`, so one worker process, with
Sanic's default event loop (uvloop, which Sanic installs and uses when it can), its own server,
its own signal handling, and no access log. Nothing of the edge's is used (bench/bare_app.py is
the other baseline: the edge's own server path, for the edge's overhead alone).
"""

from __future__ import annotations

import argparse

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

app = Sanic("bench-stock", configure_logging=False)


@app.get("/api/v1/<company>/<callback_id>")
async def stock(request: Request, company: str, callback_id: str) -> HTTPResponse:
    # The flow's map shape: {sku: payload.sku, stock: `7`}, answered as a one-item bucket.
    return json([{"sku": request.args.get("sku"), "stock": 7}])


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    args = parser.parse_args()
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)
