"""`make bench`: a connector flow against the upstream it calls, called directly, in one run.

(a) the upstream alone: bench/stock_app.py (a stock Sanic app with one route answering
    `[{"sku":…,"stock":7}]`, run as Sanic's docs run it), loaded directly by wrk.
(b) edge → RunFlow → runner: trigger → connector (GET the same upstream with `sku`) →
    callback (unwrap): the callback answers the upstream's body, so (a) and (b) answer the same
    bytes. The runner's outbound client keeps its connections to the upstream open (one pool
    per runner), and the connector's egress rule is opened for 127.0.0.1/32 only.

The same wrk load (keep-alive, 64 connections, 1 thread) for each, alternated a, b, a, b … with
a warm-up each; figures are medians over the rounds. (b)'s rate is bounded by (a)'s, and each
of its requests costs the edge, the runner and one more request of (a). About 30 s.
Exit status 1 when wrk saw a non-2xx answer or a socket error, or the answers differ.

`--client-only`: no stack, no wrk. The runner's outbound client (`Outbound.call`) and a bare
httpx.AsyncClient, in this process, each make `--calls` GETs to that upstream, `--concurrency`
at a time, alternated for `--rounds`: the CPU of this process per call (medians), and the
connections the outbound client opened. It isolates the client's own cost from the run's.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from callback_path import start_baseline
from stack import ADMIN_KEY, QUERY, RUNS_IN_FLIGHT, KeepAlive, wait_for_status
from wrk import Round, other_load, run_wrk

from boomerang.local import LocalStack
from boomerang.sdk import Client

COMPANY = "bench"


def definition(upstream: str) -> dict:
    return {
        "shapes": [
            {"id": "trigger", "type": "trigger"},
            {
                "id": "stock",
                "type": "connector",
                "url": f"{upstream}/api/v1/upstream/stock",
                "query": {"sku": "payload.sku"},
            },
            {"id": "reply", "type": "callback", "unwrap": True},
        ]
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument("--duration", type=float, default=4, help="seconds a round (default 4)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    parser.add_argument("--client-only", action="store_true", help="the outbound client alone")
    parser.add_argument("--calls", type=int, default=3000, help="--client-only: calls a round")
    parser.add_argument("--concurrency", type=int, default=32, help="--client-only: at once")
    args = parser.parse_args()
    print(f"other load before the start: {other_load():.2f} cores")
    if args.client_only:
        return client_only(args)
    with tempfile.TemporaryDirectory(prefix="boomerang-bench-connector-") as tmp:
        root = Path(tmp)
        upstream_app, upstream = start_baseline("s", root / "logs")
        stack = LocalStack(
            state_dir=root / "state",
            admin_key=ADMIN_KEY,
            log_dir=root / "logs",
            extra_env={
                "BOOMERANG_COMPANY_RUNS_IN_FLIGHT": str(RUNS_IN_FLIGHT),
                "BOOMERANG_EGRESS_ALLOW": "127.0.0.1/32",
            },
        )
        try:
            stack.start_control_plane()
            with Client(stack.control_target, ADMIN_KEY) as client:
                client.create_company(name="Benchmark", slug=COMPANY)
                flow = client.create_flow(COMPANY, "connector", definition(upstream)).flow
                client.deploy_version(flow.id)
                callback = client.create_callback(flow.id, name="bench")
            stack.start_edge()
            path = f"/api/v1/{COMPANY}/{callback.id}"
            urls = {
                "a": f"{upstream}/api/v1/upstream/stock?{QUERY}",
                "b": f"{stack.edge_url}{path}?patchworks_signature={callback.signature}&{QUERY}",
            }
            wait_for_status(stack.edge_url, urls["b"], 200, timeout=20)
            bodies = {}
            for key, url in urls.items():
                with KeepAlive(url) as http:
                    bodies[key] = http.request("GET", url)
            pids = {
                "a": {"upstream": upstream_app.pid},
                "b": {
                    "upstream": upstream_app.pid,
                    "edge": stack.edge.pid,
                    "runner": stack.control.pid,
                },
            }
            return measure(args, urls, pids, bodies)
        finally:
            stack.stop()
            upstream_app.terminate()
            upstream_app.wait(10)


def measure(args, urls, pids, bodies) -> int:
    problems = []
    if bodies["a"] != bodies["b"]:
        problems.append(f"the answers differ: {bodies['a']!r} != {bodies['b']!r}")
    print(
        f"wrk: {args.connections} connections, {args.threads} thread(s), keep-alive; "
        f"{args.warmup:g} s warm-up each, then {args.rounds} x (a, b) of {args.duration:g} s"
    )
    for key in "ab":
        run_wrk(urls[key], args, args.warmup, pids[key])
    rounds: dict[str, list[Round]] = {"a": [], "b": []}
    for i in range(args.rounds):
        for key in "ab":
            got = run_wrk(urls[key], args, args.duration, pids[key])
            rounds[key].append(got)
            w = got.wrk
            print(
                f"round {i + 1} {key}: {w.rps:8.0f} req/s  p50 {w.p50_ms:6.2f} ms  "
                f"p99 {w.p99_ms:6.2f} ms  others {got.others:.2f} cores"
            )
            if w.non_2xx or w.socket_errors:
                problems.append(f"{key}: {w.non_2xx} non-2xx, {w.socket_errors} socket errors")
    print()
    print("median        req/s    p50 ms   p99 ms   CPU µs/req by process")
    medians = {}
    for key, label in (("a", "upstream"), ("b", "connector")):
        rs = rounds[key]
        medians[key] = statistics.median(r.wrk.rps for r in rs)
        cpu = ", ".join(
            f"{name} {statistics.median(r.cpu_us_per_request(name) for r in rs):.0f}"
            for name in pids[key]
        )
        print(
            f"{key} {label:10} {medians[key]:8.0f} "
            f"{statistics.median(r.wrk.p50_ms for r in rs):8.2f} "
            f"{statistics.median(r.wrk.p99_ms for r in rs):8.2f}   {cpu}"
        )
    print(f"ratio b/a of req/s: {medians['b'] / medians['a']:.2f}")
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


def client_only(args) -> int:
    with tempfile.TemporaryDirectory(prefix="boomerang-bench-outbound-") as tmp:
        upstream_app, upstream = start_baseline("s", Path(tmp) / "logs")
        try:
            return asyncio.run(_client_rounds(args, f"{upstream}/api/v1/upstream/stock"))
        finally:
            upstream_app.terminate()
            upstream_app.wait(10)


async def _client_rounds(args, url: str) -> int:
    import httpx

    from control_plane.outbound.client import Call, Outbound
    from control_plane.outbound.egress import parse_allow
    from control_plane.outbound.settings import OutboundSettings

    async def no_connections(company: str, name: str) -> None:
        return None

    settings = OutboundSettings(egress_allow=parse_allow("127.0.0.1/32"))
    outbound = Outbound(settings, no_connections)
    connects = 0
    connect = outbound.transport.backend.connect_tcp

    async def counted(*a, **kw):
        nonlocal connects
        connects += 1
        return await connect(*a, **kw)

    outbound.transport.backend.connect_tcp = counted
    limits = httpx.Limits(max_connections=settings.max_connections)
    bare = httpx.AsyncClient(limits=limits, trust_env=False)

    async def via_outbound(i: int) -> int:
        call = Call("GET", url, f"run.{i}", 10.0, query=[("sku", "A1")])
        return (await outbound.call(call, time.monotonic() + 60)).status

    async def via_httpx(i: int) -> int:
        answer = await bare.get(url, params={"sku": "A1"}, headers={"idempotency-key": f"{i}"})
        return answer.status_code

    async def load(fn, calls: int) -> tuple[float, set[int]]:
        todo, statuses = iter(range(calls)), set()

        async def worker():
            for i in todo:
                statuses.add(await fn(i))

        started = time.process_time()
        await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        return (time.process_time() - started) / calls * 1e6, statuses

    ways = {"outbound": via_outbound, "httpx": via_httpx}
    cpu: dict[str, list[float]] = {name: [] for name in ways}
    statuses: set[int] = set()
    try:
        for fn in ways.values():
            await load(fn, 300)  # warm-up: connections opened
        for _ in range(args.rounds):
            for name, fn in ways.items():
                used, seen = await load(fn, args.calls)
                cpu[name].append(used)
                statuses |= seen
        pool = len(outbound.transport._pool.connections)
    finally:
        await outbound.aclose()
        await bare.aclose()
    print(f"{args.calls} calls x {args.rounds} rounds, {args.concurrency} at once")
    for name, values in cpu.items():
        rounds = ", ".join(f"{v:.0f}" for v in values)
        print(f"{name:9} CPU µs/call median {statistics.median(values):6.0f}  ({rounds})")
    print(f"outbound: {connects} connections opened, {pool} in the pool")
    if statuses != {200}:
        print(f"FAILED: statuses {sorted(statuses)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    status = main()
    print(f"({time.monotonic() - started:.0f} s)")
    sys.exit(status)
