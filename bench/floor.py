"""How close the design lets the callback path come to stock Sanic: its floor, measured.

`python bench/floor.py [--rounds 3]` (about 4 min) loads four servers in alternated rounds, every
other round reversed, with the loads and goals of bench/callback_path.py:

- (s) stock Sanic, bench/stock_app.py: the reference;
- (g) the design's floor on gRPC, bench/floor_app.py --transport grpc: stock Sanic, one hop per
  batch of runs on a shared grpc.aio stream to a runner process that commits a row per run to
  SQLite and answers. Nothing of ours: what any implementation of the design (edge → RunFlow →
  runner → durable record → answer, docs/design.md §3) pays at least;
- (p) the same floor on a plain asyncio stream (--transport stream): what it would pay with a
  transport of our own instead of gRPC;
- (b) the callback path itself (the benchmark stack, as `make bench` runs it).

Loads: wrk --connections 64 for req/s; wrk -c 1 for the one-connection p50; the open-loop
generator (bench/openloop.py) at half of (b)'s median req/s, the same rate for every server, for
p99 at half load. A floor that misses a goal at (b)'s own half rate shows that no implementation
of that design can meet it on this machine: every implementation does at least the floor's work.
CPU per request is the server process's plus its runner's (the control plane's for (b)), at full
load and at half load; `busy` is the cores of 2 the machine was busy during the half load.

Exits non-zero when a server answers other than the benchmark's answer or a load gets non-2xx
answers; a missed goal is printed, not failed.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
from pathlib import Path

from callback_path import (
    TARGET_HALF_P99_MS,
    TARGET_ONE_CONN_MS,
    TARGET_RATIO,
    HalfCpu,
    _load_problems,
    _round_order,
    _round_problems,
    _stop,
    add_load_options,
    check_same_answer,
    half_load,
    start_script,
)
from priority import Load
from stack import bench_stack
from wrk import Round, run_wrk

SERVERS = {
    "s": ["stock_app.py"],
    "g": ["floor_app.py", "--transport", "grpc"],
    "p": ["floor_app.py", "--transport", "stream"],
}
LABELS = {
    "s": "(s) stock Sanic",
    "g": "(g) floor, grpc.aio",
    "p": "(p) floor, plain stream",
    "b": "(b) callback path",
}


def children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(p) for p in f.read().split()]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_options(parser, duration=6, warmup=3)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="boomerang-floor-") as tmp:
        root = Path(tmp)
        with bench_stack(root) as bench, contextlib.ExitStack() as servers:
            path = bench.url().removeprefix(bench.stack.edge_url)
            url, pids = {}, {}
            for key, argv in SERVERS.items():
                process, base = start_script(argv, root / "logs")
                servers.callback(_stop, process)
                url[key] = base + path
                pids[key] = {"app": process.pid}
                if key != "s":
                    (pids[key]["runner"],) = children(process.pid)
            url["b"] = bench.url()
            assert bench.stack.edge is not None and bench.stack.control is not None
            pids["b"] = {"app": bench.stack.edge.pid, "runner": bench.stack.control.pid}
            return measure(args, url, pids)


def measure(args: argparse.Namespace, url: dict[str, str], pids: dict[str, dict]) -> int:
    order = tuple(url)
    problems = check_same_answer(url)

    def wrk(key: str, seconds: float, connections: int, name: str) -> Round:
        options = argparse.Namespace(threads=1, connections=connections)
        r = run_wrk(url[key], options, seconds, pids[key])
        problems.extend(_round_problems(name, r.wrk))
        return r

    def rounds(load, what: str) -> dict[str, list]:
        got: dict[str, list] = {k: [] for k in order}
        for i in range(args.rounds):
            for key in _round_order(order, i):
                got[key].append(load(key, f"{what} {i + 1} {key}"))
        return got

    print(f"1. req/s: wrk -c {args.connections}, {args.rounds} x {order}, {args.duration:g} s")
    for key in order:
        wrk(key, args.warmup, args.connections, f"warm-up {key}")
    busy = rounds(lambda k, n: wrk(k, args.duration, args.connections, n), "round")
    rps = {k: statistics.median(r.wrk.rps for r in rs) for k, rs in busy.items()}
    cpu = {
        k: statistics.median(sum(r.cpu_us_per_request(p) for p in pids[k]) for r in rs)
        for k, rs in busy.items()
    }
    for key in order:
        print(f"  {LABELS[key]:26}" + "".join(f"{r.wrk.rps:9.0f}" for r in busy[key]))

    print(f"2. one connection: wrk -c 1, {args.rounds} x {order}, {args.latency_duration:g} s")
    one = rounds(lambda k, n: wrk(k, args.latency_duration, 1, n), "one-connection")
    p50 = {k: statistics.median(r.wrk.p50_ms for r in rs) for k, rs in one.items()}

    rate = args.half_rate or rps["b"] / 2
    why = "--half-rate" if args.half_rate else "half of (b)'s"
    print(f"3. half load: open loop at {rate:.0f} req/s ({why}), the same for every server")

    def half(key: str, name: str) -> tuple[Load, HalfCpu]:
        got, used = half_load(url[key], rate, args.latency_duration, pids[key])
        problems.extend(_load_problems(name, got))
        return got, used

    halves = rounds(half, "half load")
    p99 = {k: statistics.median(g.pct(99) for g, _ in gs) for k, gs in halves.items()}
    lag = {k: statistics.median(g.lag_max_ms for g, _ in gs) for k, gs in halves.items()}
    used = {k: HalfCpu.median([u for _, u in gs]) for k, gs in halves.items()}
    half_cpu = {k: sum(used[k].us_per_request.values()) for k in order}

    print(
        f"\n{'medians':26}{'req/s':>8}{'ratio':>8}{'CPU µs/req':>12}"
        f"{'1-conn p50':>12}{'vs (s)':>9}{'p99 half':>10}{'lag max':>9}"
        f"{'µs/req half':>13}{'busy':>6}"
    )
    for key in order:
        print(
            f"{LABELS[key]:26}{rps[key]:8.0f}{rps[key] / rps['s']:8.3f}{cpu[key]:12.0f}"
            f"{p50[key]:10.2f}ms{p50[key] - p50['s']:+9.2f}{p99[key]:8.2f}ms{lag[key]:7.1f}ms"
            f"{half_cpu[key]:13.0f}{used[key].busy_cores:6.2f}"
        )
    print(
        f"goals: ratio ≥ {TARGET_RATIO}, one-connection p50 ≤ (s) + {TARGET_ONE_CONN_MS} ms, "
        f"p99 at half load ≤ {TARGET_HALF_P99_MS:g} ms"
    )
    for key in ("g", "p", "b"):
        missed = [
            name
            for name, ok in (
                ("ratio", rps[key] / rps["s"] >= TARGET_RATIO),
                ("one-connection", p50[key] - p50["s"] <= TARGET_ONE_CONN_MS),
                ("p99 at half load", p99[key] <= TARGET_HALF_P99_MS),
            )
            if not ok
        ]
        print(f"  {LABELS[key]:26}" + (f"misses: {', '.join(missed)}" if missed else "meets all"))
    for problem in problems:
        print(f"FAIL {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
