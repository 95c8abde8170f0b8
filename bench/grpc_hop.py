"""What one message between two processes costs: a grpc.aio bidi stream (RunFlow's transport)
against a plain asyncio TCP stream with length-prefixed frames, on loopback, on uvloop.

`python bench/grpc_hop.py [--messages 3000] [--size 3300] [--rounds 3]`

For each transport a client process writes `--messages` messages of `--size` bytes (3300 is
about a RunFlow batch of ten starts) on one stream to a server process, which answers each with
one byte; the client reads the answers. Two modes: `ping-pong` waits for each answer before the
next write (what a lone request on one connection does) and `pipelined` writes while a reader
takes the answers (what a loaded stream does). Printed per message, medians over the rounds: the
CPU of the client and of the server (from /proc, both processes' threads) and the wall time.

grpc.aio is measured on both of gRPC core's I/O paths: EventEngine (grpcio's default since 1.80)
and iomgr (what the services use, boomerang/grpc_io.py); the path is chosen per process, before
grpc is imported, so each transport runs in fresh processes. The plain stream is the floor a
transport of our own would start from; it is not a replacement on offer (docs/design.md §3).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path

# Before `stack`, which imports grpc (grpc_io refuses to load after it).
from boomerang.grpc_io import IOMGR

sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import cpu_seconds, wait_listening

from boomerang.local import free_port

TRANSPORTS = {
    "grpc.aio, EventEngine": {"GRPC_EXPERIMENTS": ""},
    "grpc.aio, iomgr": {"GRPC_EXPERIMENTS": IOMGR},
    "asyncio stream": {},
}
_FRAME = struct.Struct("!I")
_METHOD = "/bench.Hop/Stream"


# -- the server process ------------------------------------------------------------------------


async def _grpc_server(port: int) -> None:
    import grpc

    async def stream(requests, context):
        async for _ in requests:
            yield b"x"

    server = grpc.aio.server()
    handler = grpc.stream_stream_rpc_method_handler(stream)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Hop", {"Stream": handler}),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def _stream_server(port: int) -> None:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                (n,) = _FRAME.unpack(await reader.readexactly(_FRAME.size))
                await reader.readexactly(n)
                writer.write(_FRAME.pack(1) + b"x")
        except asyncio.IncompleteReadError:
            writer.close()

    server = await asyncio.start_server(connection, "127.0.0.1", port)
    await server.serve_forever()


# -- the client process ------------------------------------------------------------------------


class _GrpcClient:
    async def open(self, port: int) -> None:
        import grpc

        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
        self.call = self.channel.stream_stream(_METHOD)()

    async def write(self, message: bytes) -> None:
        await self.call.write(message)

    async def read(self) -> None:
        await self.call.read()

    async def close(self) -> None:
        await self.call.done_writing()
        await self.channel.close()


class _StreamClient:
    async def open(self, port: int) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)

    async def write(self, message: bytes) -> None:
        self.writer.write(_FRAME.pack(len(message)) + message)
        await self.writer.drain()

    async def read(self) -> None:
        (n,) = _FRAME.unpack(await self.reader.readexactly(_FRAME.size))
        await self.reader.readexactly(n)

    async def close(self) -> None:
        self.writer.close()


async def _measure(transport: str, port: int, server_pid: int, args: argparse.Namespace) -> dict:
    client = _StreamClient() if transport == "asyncio stream" else _GrpcClient()
    await client.open(port)
    message = b"a" * args.size
    for _ in range(200):  # warm-up: connection, buffers, caches
        await client.write(message)
        await client.read()
    out = {}
    for mode in ("ping-pong", "pipelined"):
        mine, theirs = _own_cpu(), cpu_seconds(server_pid)
        started = time.perf_counter()
        if mode == "ping-pong":
            for _ in range(args.messages):
                await client.write(message)
                await client.read()
        else:

            async def read_all() -> None:
                for _ in range(args.messages):
                    await client.read()

            reader = asyncio.create_task(read_all())
            for _ in range(args.messages):
                await client.write(message)
            await reader
        n = args.messages
        out[mode] = {
            "wall_us": (time.perf_counter() - started) / n * 1e6,
            "client_us": (_own_cpu() - mine) / n * 1e6,
            "server_us": (cpu_seconds(server_pid) - theirs) / n * 1e6,
        }
    await client.close()
    return out


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def _one_round(transport: str, args: argparse.Namespace) -> dict:
    """Runs a server and a client process for `transport`; returns the client's figures."""
    env = {**os.environ, **TRANSPORTS[transport]}
    port = free_port()
    me = [sys.executable, __file__]
    server = subprocess.Popen([*me, "--serve", transport, "--port", str(port)], env=env)
    try:
        wait_listening(port, server)
        command = [*me, "--client", transport, "--port", str(port), "--server-pid"]
        command += [str(server.pid), "--messages", str(args.messages), "--size", str(args.size)]
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        return json.loads(done.stdout)
    finally:
        server.kill()
        server.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000, help="messages a mode (3000)")
    parser.add_argument("--size", type=int, default=3300, help="bytes a message (3300)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, alternated (3)")
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--client", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    import uvloop

    if args.serve:
        uvloop.run((_stream_server if args.serve == "asyncio stream" else _grpc_server)(args.port))
        return 0
    if args.client:
        figures = uvloop.run(_measure(args.client, args.port, args.server_pid, args))
        json.dump(figures, sys.stdout)
        return 0

    rounds: dict[str, list[dict]] = {t: [] for t in TRANSPORTS}
    for _ in range(args.rounds):
        for transport in TRANSPORTS:
            rounds[transport].append(_one_round(transport, args))
    print(
        f"{args.messages} messages of {args.size} B, one answer byte each; medians of "
        f"{args.rounds} rounds, µs per message"
    )
    print(f"{'transport':<24}{'mode':<11}{'client CPU':>11}{'server CPU':>11}{'wall':>8}")
    for transport, got in rounds.items():
        for mode in ("ping-pong", "pipelined"):
            keys = ("client_us", "server_us", "wall_us")
            cells = [statistics.median(r[mode][k] for r in got) for k in keys]
            print(f"{transport:<24}{mode:<11}{cells[0]:>11.0f}{cells[1]:>11.0f}{cells[2]:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
