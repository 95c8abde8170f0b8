"""Throughput of the callback path with 1 or 2 edge processes x 1 or 2 runner processes.

Four stacks (bench/stack.py), started together and loaded in turn, round by round (so drift hits
all alike): the edge with EDGE_WORKERS=1 or 2 (processes sharing the port, edge/workers.py), and
1 or 2 runner processes apart from the control plane (`--role runner`; the edge streams to each
and sends a new run to the one with the fewest open runs, edge/runner_pool.py). Each round is
wrk with `--connections` (64) keep-alive connections for `--duration` seconds; the table gives
the median over `--rounds` rounds of req/s, p50/p99, and the cores the edge processes and the
runner processes used. Throughput grows with processes until the machine's cores run out: on a
2-core machine one edge and one runner already use both under full load, so a second process of
either kind mostly adds context switches; the table shows how much.

`python bench/scale_processes.py [--rounds 3 --duration 8 --connections 64]`. Exit status 1 when
any answer was not 2xx or a socket error occurred, or the run table lacks a 200 run for an answer.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from stack import BenchStack, bench_stack
from wrk import Round, other_load, run_wrk

CONFIGS = ((1, 1), (1, 2), (2, 1), (2, 2))  # (edge processes, runner processes)


def children(pid: int) -> list[int]:
    """The direct children of a process (the edge's workers), from /proc."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_ids(bench: BenchStack) -> dict[str, int]:
    """Every process of the stack that the load reaches, by name (edge-0, runner-1, …)."""
    stack = bench.stack
    assert stack.edge is not None
    edges = children(stack.edge.pid) if stack.edge_workers > 1 else [stack.edge.pid]
    pids = {f"edge-{i}": pid for i, pid in enumerate(edges)}
    pids.update({f"runner-{i}": p.pid for i, p in enumerate(stack.runners) if p is not None})
    return pids


def answered_runs(bench: BenchStack) -> int:
    return bench.query("SELECT count(*) FROM run WHERE response_status = 200")[0][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument("--duration", type=float, default=8, help="seconds a round (default 8)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk not found; install it: apt-get install wrk", file=sys.stderr)
        return 1
    print(f"others take {other_load():.2f} cores before the start", flush=True)
    problems: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="boomerang-scale-") as tmp,
        contextlib.ExitStack() as es,
    ):
        stacks = {
            (e, r): es.enter_context(
                bench_stack(Path(tmp) / f"e{e}r{r}", edge_workers=e, runners=r)
            )
            for e, r in CONFIGS
        }
        pids = {key: process_ids(bench) for key, bench in stacks.items()}
        answered = dict.fromkeys(stacks, 2)  # the readiness GETs that answered 200
        rounds: dict[tuple[int, int], list[Round]] = {key: [] for key in stacks}

        def load(key: tuple[int, int], seconds: float, name: str) -> Round:
            r = run_wrk(stacks[key].url(), args, seconds, pids[key])
            answered[key] += r.wrk.requests - r.wrk.non_2xx
            if r.wrk.non_2xx or r.wrk.socket_errors or not r.wrk.requests:
                problems.append(
                    f"{name}: {r.wrk.requests} requests, {r.wrk.non_2xx} non-2xx, "
                    f"{r.wrk.socket_errors} socket errors"
                )
            return r

        for key in stacks:
            load(key, args.warmup, f"warm-up {key}")
        for i in range(args.rounds):
            for key in stacks:
                r = load(key, args.duration, f"round {i + 1} {key}")
                rounds[key].append(r)
                print(
                    f"  round {i + 1}: {key[0]} edge x {key[1]} runner: {r.wrk.rps:.0f} req/s "
                    f"(others {r.others:.2f})",
                    flush=True,
                )
        for key, bench in stacks.items():
            recorded = answered_runs(bench)
            if recorded < answered[key]:
                problems.append(f"{key}: {recorded} runs answered 200 for {answered[key]} answers")

    print()
    print(
        f"{'edge x runner':>14}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'edge cores':>12}{'runner cores':>14}{'others':>8}"
    )
    for key, rs in rounds.items():

        def med(get, rs=rs) -> float:
            return statistics.median(get(r) for r in rs)

        def cores(prefix: str, rs=rs) -> float:
            return statistics.median(
                sum(r.cores(n) for n in r.cpu if n.startswith(prefix)) for r in rs
            )

        print(
            f"{f'{key[0]} x {key[1]}':>14}{med(lambda r: r.wrk.rps):9.0f}"
            f"{med(lambda r: r.wrk.p50_ms):9.2f}{med(lambda r: r.wrk.p99_ms):9.2f}"
            f"{cores('edge'):12.2f}{cores('runner'):14.2f}{med(lambda r: r.others):8.2f}"
        )
    print("medians over the rounds; cores = CPU seconds per second of all such processes")
    for problem in problems:
        print(f"FAIL {problem}")
    print("correctness checks: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
