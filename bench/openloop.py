"""An open-loop HTTP/1.1 load generator that reports latency percentiles.

wrk is closed-loop: each connection sends its next request only when the last one is answered,
so a server that slows down is sent less, and the requests it would have delayed are never timed
(coordinated omission). wrk2 is not packaged here and hey's rate is closed-loop per worker, so
this is the open-loop client the benchmarks use: requests are due at a fixed rate, each one is
sent at its due time on an idle keep-alive connection (a new one when none is idle), and its
latency is measured from its due time, not from when it could be sent. A generator that falls
behind therefore shows up in the latency, and `lag` says by how much the sends trailed their due
times.

`python bench/openloop.py URL --rate 200 --duration 10 [--method POST --body-file F]` prints
one JSON object (see `Result.to_doc`); bench/priority.py runs it as a child process, one per
load, so a load that sends large bodies does not delay the timing of another. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

#: Connections one generator may open; past it a due request waits for one (and it shows).
MAX_CONNECTIONS = 512


@dataclass
class Result:
    #: Seconds from each answered request's due time to the end of its response.
    latencies: list[float] = field(default_factory=list)
    #: The status of each answer in `latencies`, in the same order.
    codes: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    sent: int = 0
    #: Seconds by which sends trailed their due times: the generator's own delay.
    lag: list[float] = field(default_factory=list)
    connections: int = 0
    #: Requests still unanswered when the generator gave up on them (after `--timeout`).
    unanswered: int = 0

    def to_doc(self) -> dict:
        return {
            "latencies": self.latencies,
            "codes": self.codes,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "errors": dict(self.errors),
            "sent": self.sent,
            "lag_max": max(self.lag, default=0.0),
            "lag_p99": _nearest_rank(self.lag, 99) if self.lag else 0.0,
            "connections": self.connections,
            "unanswered": self.unanswered,
        }


def _nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[int, bool]:
        """Sends one request and reads its response: (status, whether the server keeps the
        connection open)."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            await self._read_chunked()
        keep = headers.get("connection", "").lower() != "close"
        return status, keep

    async def _read_chunked(self) -> None:
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await self.reader.readexactly(size + 2)
            if size == 0:
                return

    def close(self) -> None:
        self.writer.close()


async def open_loop(
    url: str,
    rate: float,
    duration: float,
    method: str = "GET",
    body: bytes = b"",
    content_type: str = "application/json",
    request_timeout: float = 10.0,
) -> Result:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("the benchmarks only load servers on loopback")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    head = f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    if body or method in ("POST", "PUT", "PATCH"):
        head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    request = (head + "\r\n").encode("latin-1") + body

    result = Result()
    idle: list[_Connection] = []
    opened = 0
    freed = asyncio.Condition()
    pending: set[asyncio.Task] = set()

    async def take() -> _Connection:
        nonlocal opened
        while True:
            if idle:
                return idle.pop()
            if opened < MAX_CONNECTIONS:
                opened += 1
                result.connections = max(result.connections, opened)
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                except OSError:
                    opened -= 1
                    raise
                return _Connection(reader, writer)
            async with freed:
                await freed.wait()

    async def one(due: float) -> None:
        nonlocal opened
        conn = None
        try:
            async with asyncio.timeout(request_timeout):
                conn = await take()
                result.lag.append(time.perf_counter() - due)
                status, keep = await conn.exchange(request)
            result.latencies.append(time.perf_counter() - due)
            result.codes.append(status)
            result.statuses[status] += 1
        except TimeoutError:
            result.unanswered += 1
            keep = False
        except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            result.errors[type(exc).__name__] += 1
            keep = False
        if conn is not None:
            if keep:
                idle.append(conn)
            else:
                conn.close()
                opened -= 1
            async with freed:
                freed.notify()

    n = int(rate * duration)
    start = time.perf_counter() + 0.05
    for i in range(n):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(one(due))
        pending.add(task)
        task.add_done_callback(pending.discard)
        result.sent += 1
    if pending:
        await asyncio.wait(pending)
    for conn in idle:
        with contextlib.suppress(Exception):
            conn.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--rate", type=float, required=True, help="requests per second")
    parser.add_argument("--duration", type=float, required=True, help="seconds of sending")
    parser.add_argument("--method", default="GET")
    parser.add_argument("--body-file", type=Path, help="the request body")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    args = parser.parse_args()
    body = args.body_file.read_bytes() if args.body_file else b""
    try:
        import uvloop  # the generator's own overhead is not what is measured: the cheaper loop

        runner = uvloop.run
    except ImportError:
        runner = asyncio.run
    load = open_loop(
        args.url, args.rate, args.duration, args.method, body, request_timeout=args.timeout
    )
    result = runner(load)
    json.dump(result.to_doc(), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
