"""The floor of the callback path's design: stock Sanic + one hop to a runner process + a commit.

`python bench/floor_app.py --port N --transport grpc|stream` serves the benchmark's answer the way
the design (docs/design.md §3) forces any implementation to: a stock Sanic app (as
bench/stock_app.py runs it: `app.run(single_process=True)`, uvloop, no access log) hands each
request to a separate runner process over one shared, long-lived stream, the runner commits one
row per run to SQLite (WAL, synchronous=NORMAL, on its loop, one transaction per batch) and only
then answers, and the app responds with the runner's body. Nothing else: no signature, no cache,
no flow engine, no protobuf, no budgets, no metrics. Both sides batch as RunFlow does: the app's
writer packs every start queued while its last write was under way into one message; the runner
commits and answers a whole message at once.

`--transport grpc` carries the messages on a grpc.aio bidirectional stream on gRPC's iomgr I/O
path, as RunFlow does (boomerang/grpc_io.py); `--transport stream` on a plain asyncio TCP stream
with length-prefixed frames, the cheapest framing a transport of our own could use. What the
real path costs above the first is its own code; what the first costs above stock Sanic is the
design's, which no change of ours inside it can remove (bench/floor.py prints them side by side).

The app starts its runner (`--role runner`) as a child process and stops it when it stops.
"""

from __future__ import annotations

# isort: off
from boomerang import grpc_io  # noqa: F401  (before grpc: the services' I/O path)

# isort: on

import argparse
import asyncio
import json
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from itertools import count
from pathlib import Path

_LEN = struct.Struct("!I")
_ID = struct.Struct("!Q")
_SERVICE, _METHOD = "bench.Floor", "Run"


def pack(items: list[tuple[int, bytes]]) -> bytes:
    """A batch: each item is its length, then its id, then its bytes."""
    return b"".join(_LEN.pack(_ID.size + len(data)) + _ID.pack(i) + data for i, data in items)


def unpack(message: bytes) -> list[tuple[int, bytes]]:
    items, at = [], 0
    while at < len(message):
        (n,) = _LEN.unpack_from(message, at)
        (i,) = _ID.unpack_from(message, at + _LEN.size)
        items.append((i, message[at + _LEN.size + _ID.size : at + _LEN.size + n]))
        at += _LEN.size + n
    return items


# -- the runner process ------------------------------------------------------------------------


class Runs:
    """One row per run, committed on the loop before the run is answered."""

    def __init__(self, path: str) -> None:
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=wal")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS run (id TEXT PRIMARY KEY, company TEXT, status TEXT, "
            "started_at REAL, response_status INTEGER, body BLOB)"
        )
        self.ids = count()

    def answer(self, message: bytes) -> bytes:
        answers, rows = [], []
        now = time.time()
        for i, sku in unpack(message):
            body = json.dumps([{"sku": sku.decode(), "stock": 7}], separators=(",", ":")).encode()
            rows.append((f"run-{next(self.ids)}", "bench", "succeeded", now, 200, body))
            answers.append((i, body))
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany("INSERT INTO run VALUES (?, ?, ?, ?, ?, ?)", rows)
        self.db.execute("COMMIT")
        return pack(answers)


async def serve_runner(transport: str, port: int, db_path: str) -> None:
    runs = Runs(db_path)
    if transport == "grpc":
        import grpc

        async def run(requests, context):
            async for message in requests:
                yield runs.answer(message)

        server = grpc.aio.server()
        handler = grpc.stream_stream_rpc_method_handler(run)
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler(_SERVICE, {_METHOD: handler}),)
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()
    else:

        async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while True:
                    (n,) = _LEN.unpack(await reader.readexactly(_LEN.size))
                    reply = runs.answer(await reader.readexactly(n))
                    writer.write(_LEN.pack(len(reply)) + reply)
            except asyncio.IncompleteReadError:
                writer.close()

        server = await asyncio.start_server(connection, "127.0.0.1", port)
        await server.serve_forever()


# -- the app process ---------------------------------------------------------------------------


class Hop:
    """The app's side of the shared stream: starts queued, packed and written by one writer; a
    reader resolves each run's future with its answer."""

    def __init__(self, send: Callable[[bytes], Awaitable[None]], recv) -> None:
        self.send, self.recv = send, recv
        self.queued: list[tuple[int, bytes]] = []
        self.waiting: dict[int, asyncio.Future[bytes]] = {}
        self.wake = asyncio.Event()
        self.ids = count()
        # Held so the loop keeps them (it keeps only weak references to tasks).
        self.tasks = [asyncio.create_task(self._write()), asyncio.create_task(self._read())]

    async def run(self, sku: bytes) -> bytes:
        i = next(self.ids)
        future = self.waiting[i] = asyncio.get_running_loop().create_future()
        self.queued.append((i, sku))
        self.wake.set()
        return await future

    async def _write(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            batch, self.queued = self.queued, []
            await self.send(pack(batch))

    async def _read(self) -> None:
        while True:
            for i, body in unpack(await self.recv()):
                future = self.waiting.pop(i)
                if not future.done():  # not cancelled: its caller left (a load stopping)
                    future.set_result(body)


async def open_hop(transport: str, port: int) -> Hop:
    if transport == "grpc":
        import grpc

        channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        call = channel.stream_stream(f"/{_SERVICE}/{_METHOD}")()
        return Hop(call.write, call.read)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send(message: bytes) -> None:
        writer.write(_LEN.pack(len(message)) + message)
        await writer.drain()

    async def recv() -> bytes:
        (n,) = _LEN.unpack(await reader.readexactly(_LEN.size))
        return await reader.readexactly(n)

    return Hop(send, recv)


def serve_app(transport: str, port: int, runner_port: int) -> None:
    from sanic import Request, Sanic
    from sanic.response import HTTPResponse

    app = Sanic(f"bench-floor-{transport}", configure_logging=False)

    @app.before_server_start
    async def connect(app: Sanic) -> None:
        app.ctx.hop = await open_hop(transport, runner_port)

    @app.get("/api/v1/<company>/<callback_id>")
    async def floor(request: Request, company: str, callback_id: str) -> HTTPResponse:
        body = await app.ctx.hop.run(request.args.get("sku", "").encode())
        return HTTPResponse(body, content_type="application/json")

    app.run(host="127.0.0.1", port=port, single_process=True, access_log=False, motd=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--transport", choices=("grpc", "stream"), required=True)
    parser.add_argument("--role", choices=("app", "runner"), default="app")
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "runner":
        import uvloop

        uvloop.run(serve_runner(args.transport, args.port, args.db))
        return
    from stack import wait_listening

    from boomerang.local import free_port

    runner_port = free_port()
    with tempfile.TemporaryDirectory(prefix="boomerang-floor-") as tmp:
        command = [sys.executable, __file__, "--role", "runner", "--transport", args.transport]
        command += ["--port", str(runner_port), "--db", str(Path(tmp) / "runs.db")]
        runner = subprocess.Popen(command)
        try:
            wait_listening(runner_port, runner)
            print(f"runner pid {runner.pid}", flush=True)
            serve_app(args.transport, args.port, runner_port)
        finally:
            runner.kill()
            runner.wait()


if __name__ == "__main__":
    main()
