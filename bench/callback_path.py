"""`make bench`: the callback path against two Sanic baselines, on this machine, in one run.

(s) bench/stock_app.py: the honest reference. A stock Sanic app answering the same body, run as
    Sanic's documentation runs it (`app.run(single_process=True)`: one worker, Sanic's default
    loop, uvloop here; no access log). It is what a user would pick instead.
(a) bench/bare_app.py: a bare Sanic handler served like the edge (edge.server.EdgeServer, the
    edge's Sanic settings): the cost of the edge's own server path apart from the run.
(b) the full callback path: edge (signature check from its cache) → RunFlow stream → runner's
    engine (trigger → map → callback) → run record committed to SQLite (or, with --postgres URL,
    to a new schema on that PostgreSQL server) → response. Runs are durable: the record is
    committed (group commit, control_plane/runs/journal.py) before the runner sends the
    callback, so every answer the caller gets has its run on disk.

Three loads, each alternated over the servers round by round, every other round in reverse order
(s, a, b, then b, a, s, ...), so drift (thermal, other tenants) hits all alike rather than always
favouring the server measured first; every table gives each figure's median over the rounds:
1. throughput: wrk (HTTP/1.1 keep-alive, 64 connections, 1 thread); CPU per request is read
   from /proc/<pid>/stat (user + system, all threads) around each round;
2. latency on one connection: wrk -c 1 (each request waits for the last one: the path's own
   latency, no queueing);
3. latency at half load: bench/openloop.py (open loop, its own process, uvloop) at half of (b)'s
   median req/s from 1., against (s) and (b) (and (b0) with --before); latency is counted from
   each request's due time.
   CPU per request is read as in 1., and `busy` is the cores the whole machine was busy (the
   generator and steal included): at a moderate rate RunFlow's batches are small, so the path
   costs more per request than at full load, and the cores left over decide the tail.
Then it checks the runs in the database against every answer (b) gave and measures regenerate →
edge propagation (bench/propagation.py). Exit status 1 when any correctness check fails, never
because a figure misses its goal: this is a benchmark, not a test.

Goals (docs/design.md §3): (b) keeps ≥ 0.40 of (s)'s requests per second; its p50 on one
connection is at most (s)'s + 0.3 ms; its p99 at half load is at most 10 ms. (b) against (a), the
older figure, had the goal ≥ 0.25.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import propagation
from priority import Load, finish_load, start_load
from stack import (
    COMPANY,
    EXPECTED_BODY,
    EXPECTED_CONTENT_TYPE,
    BenchStack,
    KeepAlive,
    bench_stack,
    cpu_seconds,
    machine_busy_seconds,
)
from stores import postgres_schema, store_url
from wrk import Round, Wrk, other_load, run_wrk

from boomerang.local import free_port
from boomerang.v1 import resources_pb2

#: Goals (docs/design.md §3): (b)/(s) req/s; (b)'s p50 on one connection above (s)'s; (b)'s
#: p99 at half load. And the older goal of (b)/(a).
TARGET_RATIO = 0.40
TARGET_ONE_CONN_MS = 0.3
TARGET_HALF_P99_MS = 10.0
TARGET_RATIO_BARE = 0.25
#: Cores used by other processes above which a round's figures are called disturbed.
NOISY_CORES = 0.2
SCRIPTS = {"s": "stock_app.py", "a": "bare_app.py"}
LABELS = {
    "s": "(s) stock Sanic",
    "a": "(a) bare, edge path",
    "b": "(b) callback path",
    "b0": "(b0) path before",
}


def start_baseline(key: str, log_dir: Path) -> tuple[subprocess.Popen, str]:
    """Starts bench/stock_app.py (s) or bench/bare_app.py (a) on a free port; (process, base)."""
    return start_script([SCRIPTS[key]], log_dir)


def start_script(argv: list[str], log_dir: Path) -> tuple[subprocess.Popen, str]:
    """Starts a server script of bench/ (`argv`: its name and arguments) with `--port` a free
    port, and waits until it answers HTTP; (process, base URL)."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    script = Path(__file__).with_name(argv[0])
    command = [sys.executable, str(script), *argv[1:], "--port", str(port)]
    log_name = "-".join([script.stem, *(a.lstrip("-") for a in argv[1:])]) + ".log"
    with open(log_dir / log_name, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{script.name} exited ({process.returncode}); see {log_dir}")
        try:
            with KeepAlive(base, timeout=1) as http:
                http.request("GET", "/")
            return process, base
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{script.name} did not start") from None
            time.sleep(0.05)


def check_same_answer(urls: dict[str, str]) -> list[str]:
    """Both servers answer the benchmark request with the same status, type and body."""
    problems = []
    for name, url in urls.items():
        with KeepAlive(url) as http:
            status, content_type, body = http.request("GET", url)
        if (status, content_type, body) != (200, EXPECTED_CONTENT_TYPE, EXPECTED_BODY):
            problems.append(f"{name} answered {status} {content_type!r} {body!r}")
    return problems


#: Runs by (status, response status, reason, attempts), and how many runs still have a task row.
RUNS_SQL = "SELECT status, response_status, reason, attempts, count(*) FROM run GROUP BY 1, 2, 3, 4"
TASKS_SQL = "SELECT count(*) FROM run_task"


def read_runs(bench: BenchStack) -> tuple[Counter[tuple[str, int, int, int]], int]:
    """(runs by status/response/reason/attempts, run_task rows), read beside the service."""
    runs = Counter({tuple(row[:4]): row[4] for row in bench.query(RUNS_SQL)})
    return runs, bench.query(TASKS_SQL)[0][0]


def settled_runs(
    bench: BenchStack, settle_s: float = 0.5, timeout_s: float = 10.0
) -> tuple[Counter[tuple[str, int, int, int]], int]:
    """`read_runs` once it stops moving: requests wrk abandoned when it stopped may still be
    running (each is committed when it ends, with what the edge told its caller)."""
    last = read_runs(bench)
    stable_since = time.monotonic()
    deadline = stable_since + timeout_s
    while True:
        time.sleep(0.1)
        now = read_runs(bench)
        if now != last:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= settle_s or time.monotonic() > deadline:
            return now


def answered_200(runs: Counter[tuple[str, int, int, int]]) -> int:
    return sum(n for (_, response, _, _), n in runs.items() if response == 200)


def describe(runs: Counter[tuple[str, int, int, int]]) -> str:
    return ", ".join(
        f"{status}/{response} reason {reason} attempts {attempts}: {n}"
        for (status, response, reason, attempts), n in sorted(runs.items())
    )


def check_runs(
    bench: BenchStack, answered: int, cut_off: int, at_once: Counter[tuple[str, int, int, int]]
) -> tuple[list[str], list[str]]:
    """(lines to print, problems).

    `answered` is how many requests got their 200; `at_once` the run table read the moment the
    last load on (b) ended. Runs are committed before the caller gets the callback, so `at_once`
    already holds a 200 run for every one of them (no settling, nothing written behind).
    Requests a load generator abandoned (wrk: at most one per connection when it stops; the
    open-loop generator: the ones it gave up on; `cut_off` in all) may have made a run too:
    recorded 200 if its callback was committed before the edge learnt the caller left, else with
    the status the edge reports (499).
    """
    lines, problems = [], []
    ok_now = answered_200(at_once)
    lines.append(
        f"runs answered 200 in table `run` as the last load on (b) ended: {ok_now} for {answered} "
        "requests answered 200 (the record is committed before the callback is sent)"
    )
    if ok_now < answered:
        problems.append(f"only {ok_now} runs committed for {answered} answered requests")

    runs, tasks = settled_runs(bench)
    total, ok = sum(runs.values()), answered_200(runs)
    lines.append(
        f"runs recorded once settled: {total}, {ok} answered 200, for {answered} answered "
        f"(+ at most {cut_off} cut off in flight when a load stopped); run_task rows left: {tasks}"
    )
    lines.append(f"  by status/response_status, reason, attempts: {describe(runs)}")
    if not answered <= ok <= total <= answered + cut_off:
        problems.append(
            f"{total} runs recorded ({ok} answered 200) for {answered} answered requests "
            f"and at most {cut_off} cut off"
        )
    # The trivial flow ends at its callback: every run succeeds on its first attempt with no
    # reason; only a caller that left (wrk stopping) may change what it was answered.
    unexpected = {
        k: n
        for k, n in runs.items()
        if k[0] != "succeeded" or k[2] != 0 or k[3] != 1 or k[1] not in (200, 499)
    }
    if unexpected:
        problems.append(f"runs other than succeeded/200 (or 499, cut off): {describe(unexpected)}")
    if tasks:
        problems.append(f"{tasks} run_task rows left: every run is final, so none should be")

    page = list(islice(bench.client.list_runs(COMPANY, page_size=100), 200))
    succeeded = sum(r.status == resources_pb2.RUN_STATUS_SUCCEEDED for r in page)
    lines.append(f"ListRuns({COMPANY}), first two pages: {len(page)} runs, {succeeded} succeeded")
    if not page or succeeded != len(page):
        problems.append("ListRuns does not show the runs as succeeded")
    return lines, problems


def median(rounds: list[Round], get: Callable[[Round], float]) -> float:
    return statistics.median(get(r) for r in rounds)


_COLUMNS = (
    ("req/s", 8, 0),
    ("p50 ms", 9, 2),
    ("p99 ms", 9, 2),
    ("srv µs/req", 12, 0),
    ("run µs/req", 12, 0),
    ("wrk µs/req", 12, 0),
    ("srv cores", 11, 2),
    ("run cores", 11, 2),
    ("others", 8, 2),
)
LEGEND = """\
  srv = the server process: the bare app (a) or the edge (b); run = the control-plane process,
  which holds the runner (b). µs/req = its CPU time (user + system, all threads) per answered
  request; cores = its CPU time per second of the round; others = cores taken meanwhile by every
  other process and by the hypervisor (steal): noise competing for the same 2 cores."""


def row(r: Round, server: str, runner: str | None) -> list[float | None]:
    w = r.wrk
    return [
        w.rps,
        w.p50_ms,
        w.p99_ms,
        r.cpu_us_per_request(server),
        r.cpu_us_per_request(runner) if runner else None,
        r.cpu_us_per_request("wrk"),
        r.cores(server),
        r.cores(runner) if runner else None,
        r.others,
    ]


def cells(values: list[float | None]) -> str:
    return "".join(
        f"{'-':>{width}}" if v is None else f"{v:{width}.{digits}f}"
        for v, (_, width, digits) in zip(values, _COLUMNS, strict=True)
    )


def print_table(
    rounds: dict[str, list[Round]], processes: dict[str, tuple[str, str | None]]
) -> None:
    """A row per round, then the median of each column over the rounds."""
    print(f"{'':24}" + "".join(f"{name:>{width}}" for name, width, _ in _COLUMNS))
    for key, rs in rounds.items():
        rows = [row(r, *processes[key]) for r in rs]
        for i, values in enumerate(rows, 1):
            print(f"  round {i} {key:15}" + cells(values))
        medians = [
            None if col[0] is None else statistics.median(col) for col in zip(*rows, strict=True)
        ]
        print(f"{LABELS[key] + ' median':24}" + cells(medians))


def add_load_options(parser: argparse.ArgumentParser, duration: float, warmup: float) -> None:
    """The options of the goals' three loads (shared with bench/floor.py)."""
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument(
        "--duration", type=float, default=duration, help=f"seconds a round (default {duration:g})"
    )
    parser.add_argument(
        "--warmup", type=float, default=warmup, help=f"warm-up seconds (default {warmup:g})"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    parser.add_argument(
        "--latency-duration",
        type=float,
        default=4,
        help="seconds of each one-connection and half-load round (default 4)",
    )
    parser.add_argument(
        "--half-rate",
        type=float,
        help="requests/s of the half load (default: half of (b)'s median req/s)",
    )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_options(parser, duration=8, warmup=4)
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument(
        "--regenerations", type=int, default=100, help="propagation samples (0: skip)"
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the stack's processes (repeatable)",
    )
    parser.add_argument(
        "--state-dir", type=Path, help="keep state and logs here (default: a temporary dir)"
    )
    parser.add_argument(
        "--before",
        type=Path,
        metavar="DIR",
        help="also load (b0): a second stack running the code in DIR (an older checkout, e.g. "
        "`git archive main | tar -x -C DIR`), in the same rounds, for a before/after in one run; "
        "run the script from outside the repository",
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="run the stack(s) on this PostgreSQL server, each in a new schema, dropped at the "
        "end (default: SQLite in the state dir)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk not found; install it: apt-get install wrk", file=sys.stderr)
        return 1
    env = dict(item.split("=", 1) for item in args.env)
    idle_load = other_load()
    if idle_load > NOISY_CORES:
        print(
            f"warning: other processes (or the hypervisor) already take {idle_load:.1f} of this "
            "machine's cores; the figures will be noisy (see the `others` column)",
            flush=True,
        )
    if args.before and (Path.cwd() / "edge").is_dir():
        # `python -m edge` finds the current directory's packages before PYTHONPATH's.
        print("error: with --before, run from outside the repository", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="boomerang-bench-") as tmp:
        root = args.state_dir or Path(tmp)
        schemas = [f"boomerang_bench_{os.getpid()}", f"boomerang_bench_{os.getpid()}_before"]
        try:
            url = store_url(args, root / "state", schemas[0])
            with (
                bench_stack(root, env=env, database_url=url) as bench,
                contextlib.ExitStack() as others,
            ):
                bases, pids = {}, {}
                for key in SCRIPTS:
                    process, bases[key] = start_baseline(key, root / "logs")
                    others.callback(_stop, process)
                    pids[key] = {"stock" if key == "s" else "bare": process.pid}
                before = None
                if args.before:
                    older = {**env, "PYTHONPATH": str(args.before.resolve())}
                    old_url = store_url(args, root / "before" / "state", schemas[1])
                    before = others.enter_context(
                        bench_stack(root / "before", env=older, database_url=old_url)
                    )
                print(f"store: {'PostgreSQL' if args.postgres else 'SQLite'}", flush=True)
                return measure(args, bench, bases, pids, before)
        finally:
            if args.postgres:
                for schema in schemas:
                    postgres_schema(args.postgres, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    process.wait(10)


def measure(
    args: argparse.Namespace,
    bench: BenchStack,
    bases: dict[str, str],
    pids: dict[str, dict[str, int]],
    before: BenchStack | None = None,
) -> int:
    stack = bench.stack
    assert stack.edge is not None and stack.control is not None
    # The same path and query (a dummy signature) so all parse the same request.
    path = bench.url().removeprefix(stack.edge_url)
    url = {"s": bases["s"] + path, "a": bases["a"] + path, "b": bench.url()}
    pids = {**pids, "b": {"edge": stack.edge.pid, "cp": stack.control.pid}}
    processes = {"s": ("stock", None), "a": ("bare", None), "b": ("edge", "cp")}
    order: tuple[str, ...] = ("s", "a", "b")
    if before is not None:
        old = before.stack
        assert old.edge is not None and old.control is not None
        url["b0"] = before.url()
        pids["b0"] = {"edge": old.edge.pid, "cp": old.control.pid}
        processes["b0"] = ("edge", "cp")
        order = ("s", "a", "b0", "b")
    problems = check_same_answer(url)
    answered = 1 + 1  # the stack's readiness GET that answered 200, and check_same_answer's
    cut_off = 0
    print(
        f"1. throughput: wrk {args.connections} connections, {args.threads} thread(s), "
        f"keep-alive; {args.warmup:g} s warm-up each, then {args.rounds} x ({', '.join(order)}), "
        f"every other round reversed, of {args.duration:g} s",
        flush=True,
    )
    at_once: Counter[tuple[str, int, int, int]] = Counter()

    def load(key: str, seconds: float, name: str, connections: int) -> Round:
        nonlocal answered, cut_off
        options = argparse.Namespace(threads=args.threads, connections=connections)
        r = run_wrk(url[key], options, seconds, pids[key])
        problems.extend(_round_problems(name, r.wrk))
        if key == "b":
            # Only 200s made a run (wrk counts every answer; non-2xx are failures above).
            answered += r.wrk.requests - r.wrk.non_2xx
            cut_off += connections
        return r

    for key in order:
        load(key, args.warmup, f"warm-up {key}", args.connections)
    rounds: dict[str, list[Round]] = {k: [] for k in order}
    for i in range(args.rounds):
        for key in _round_order(order, i):
            r = load(key, args.duration, f"round {i + 1} {key}", args.connections)
            rounds[key].append(r)
            print(f"  round {i + 1} {key}: {r.wrk.rps:.0f} req/s", flush=True)
    print()
    print_table(rounds, processes)
    print(LEGEND)
    rps = {key: median(rs, lambda r: r.wrk.rps) for key, rs in rounds.items()}

    print(
        f"\n2. latency on one connection: wrk -c 1, {args.rounds} x ({', '.join(order)}), "
        f"every other round reversed, of {args.latency_duration:g} s",
        flush=True,
    )
    one: dict[str, list[Round]] = {k: [] for k in order}
    for i in range(args.rounds):
        for key in _round_order(order, i):
            one[key].append(load(key, args.latency_duration, f"one-connection {i + 1} {key}", 1))
    print_table(one, processes)

    rate = args.half_rate or rps["b"] / 2
    half_keys = ("s", "b0", "b") if before is not None else ("s", "b")
    print(
        f"\n3. latency at half load: open loop at {rate:.0f} req/s (half of (b)'s median), "
        f"{args.rounds} x ({', '.join(half_keys)}), every other round reversed, "
        f"of {args.latency_duration:g} s",
        flush=True,
    )
    half: dict[str, list[Load]] = {k: [] for k in half_keys}
    half_cpu: dict[str, list[HalfCpu]] = {k: [] for k in half_keys}
    for i in range(args.rounds):
        for key in _round_order(tuple(half), i):
            got, cpu = half_load(url[key], rate, args.latency_duration, pids[key])
            half[key].append(got)
            half_cpu[key].append(cpu)
            problems.extend(_load_problems(f"half load {i + 1} {key}", got))
            if key == "b":
                answered += got.statuses.get("200", 0)
                cut_off += got.unanswered + sum(got.errors.values())
                at_once, _ = read_runs(bench)  # read as each load on (b) ends
    print(
        f"{'':24}{'sent':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'lag max ms':>12}"
        f"{'srv µs/req':>12}{'run µs/req':>12}{'busy':>6}"
    )
    for key, loads in half.items():
        server, runner = processes[key]
        cpus = half_cpu[key]
        for i, (got, cpu) in enumerate(zip(loads, cpus, strict=True), 1):
            print(f"  round {i} {key:15}" + _load_cells(got) + cpu.cells(server, runner))
        print(
            f"{LABELS[key] + ' median':24}{statistics.median(g.sent for g in loads):8.0f}"
            + "".join(f"{statistics.median(g.pct(p) for g in loads):9.2f}" for p in (50, 99, 100))
            + f"{statistics.median(g.lag_max_ms for g in loads):12.2f}"
            + HalfCpu.median(cpus).cells(server, runner)
        )
    print(
        "  srv / run µs/req: CPU of the server (the edge for (b)) / the control plane per\n"
        "  answered request; busy: cores of 2 the machine was busy, the generator included"
    )

    print("\nsummary (medians over the rounds):")
    ratio = rps["b"] / rps["s"]
    print(
        f"  req/s: (s) {rps['s']:.0f}, (a) {rps['a']:.0f}, (b) {rps['b']:.0f}; "
        f"ratio b/s {ratio:.3f} (goal ≥ {TARGET_RATIO}: {_met(ratio >= TARGET_RATIO)}); "
        f"b/a {rps['b'] / rps['a']:.3f} (goal ≥ {TARGET_RATIO_BARE}: "
        f"{_met(rps['b'] / rps['a'] >= TARGET_RATIO_BARE)})"
    )
    p50 = {key: median(rs, lambda r: r.wrk.p50_ms) for key, rs in one.items()}
    print(
        f"  p50 on one connection: (s) {p50['s']:.2f} ms, (a) {p50['a']:.2f} ms, "
        f"(b) {p50['b']:.2f} ms: (b) - (s) = {p50['b'] - p50['s']:+.2f} ms "
        f"(goal ≤ +{TARGET_ONE_CONN_MS}: {_met(p50['b'] - p50['s'] <= TARGET_ONE_CONN_MS)})"
    )
    p99 = {key: statistics.median(g.pct(99) for g in loads) for key, loads in half.items()}
    print(
        f"  p99 at half load ({rate:.0f} req/s): (s) {p99['s']:.2f} ms, (b) {p99['b']:.2f} ms "
        f"(goal ≤ {TARGET_HALF_P99_MS:g} ms: {_met(p99['b'] <= TARGET_HALF_P99_MS)})"
    )
    stock_us = median(rounds["s"], lambda r: r.cpu_us_per_request("stock"))
    bare_us = median(rounds["a"], lambda r: r.cpu_us_per_request("bare"))
    edge_us = median(rounds["b"], lambda r: r.cpu_us_per_request("edge"))
    cp_us = median(rounds["b"], lambda r: r.cpu_us_per_request("cp"))
    print(
        f"  CPU per request: callback path {edge_us + cp_us:.0f} µs (edge {edge_us:.0f}, "
        f"control plane {cp_us:.0f}); stock {stock_us:.0f} µs; bare {bare_us:.0f} µs"
    )
    half_b = HalfCpu.median(half_cpu["b"])
    half_edge, half_cp = half_b.us_per_request["edge"], half_b.us_per_request["cp"]
    half_us = half_edge + half_cp
    print(
        f"  CPU per request at half load: {half_us:.0f} µs "
        f"(edge {half_edge:.0f}, control plane {half_cp:.0f}), "
        f"{half_us / (edge_us + cp_us):.2f}x the full-load "
        f"figure; the machine was {half_b.busy_cores:.2f} cores busy of 2"
    )
    if before is not None:
        old_edge = median(rounds["b0"], lambda r: r.cpu_us_per_request("edge"))
        old_cp = median(rounds["b0"], lambda r: r.cpu_us_per_request("cp"))
        old_p50 = median(one["b0"], lambda r: r.wrk.p50_ms)
        old_half = HalfCpu.median(half_cpu["b0"])
        old_half_us = sum(old_half.us_per_request.values())
        print(
            f"  before → after: req/s {rps['b0']:.0f} → {rps['b']:.0f} "
            f"({rps['b'] / rps['b0']:.2f}x; b0/s {rps['b0'] / rps['s']:.3f} → b/s {ratio:.3f}); "
            f"CPU µs/req edge {old_edge:.0f} → {edge_us:.0f}, control plane {old_cp:.0f} → "
            f"{cp_us:.0f}; one-connection p50 {old_p50:.2f} → {p50['b']:.2f} ms; at half load "
            f"p99 {p99['b0']:.2f} → {p99['b']:.2f} ms, CPU µs/req {old_half_us:.0f} → "
            f"{half_us:.0f}, busy cores {old_half.busy_cores:.2f} → {half_b.busy_cores:.2f}"
        )
    noisy = [
        f"round {i} {key} ({r.others:.2f})"
        for key, rs in rounds.items()
        for i, r in enumerate(rs, 1)
        if r.others > NOISY_CORES
    ]
    if any(median(rs, lambda r: r.others) > NOISY_CORES for rs in rounds.values()):
        print(
            f"warning: others took over {NOISY_CORES} cores in most rounds ({', '.join(noisy)}): "
            "the req/s figures and the ratios are disturbed; rerun on a quiet machine"
        )
    elif noisy:
        print(f"note: others took over {NOISY_CORES} cores in {', '.join(noisy)}; medians shown")
    print()

    lines, run_problems = check_runs(bench, answered, cut_off, at_once)
    for line in lines:
        print(line)
    problems += run_problems

    if args.regenerations > 0:
        result = propagation.measure(bench, args.regenerations)
        propagation.report(result)
        if not result.ok:
            problems.append("regenerate → edge propagation failed")

    print()
    for problem in problems:
        print(f"FAIL {problem}")
    print("correctness checks: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


@dataclass(frozen=True)
class HalfCpu:
    """What one half load cost: CPU µs per answered request of each watched process, and the
    cores of the machine busy meanwhile."""

    us_per_request: dict[str, float]
    busy_cores: float

    def cells(self, server: str, runner: str | None) -> str:
        run = f"{self.us_per_request[runner]:12.0f}" if runner else f"{'-':>12}"
        return f"{self.us_per_request[server]:12.0f}{run}{self.busy_cores:6.2f}"

    @staticmethod
    def median(rounds: list[HalfCpu]) -> HalfCpu:
        """Each figure's median over the rounds."""
        return HalfCpu(
            {
                n: statistics.median(r.us_per_request[n] for r in rounds)
                for n in rounds[0].us_per_request
            },
            statistics.median(r.busy_cores for r in rounds),
        )


def half_load(url: str, rate: float, seconds: float, pids: dict[str, int]) -> tuple[Load, HalfCpu]:
    """One open-loop load, with the CPU each of `pids` used meanwhile and the machine's busy
    cores (over the load's whole span, the generator's start included)."""
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    busy, started = machine_busy_seconds(), time.monotonic()
    got = finish_load(start_load(url, rate, seconds))
    elapsed = time.monotonic() - started
    answered = max(1, sum(n for code, n in got.statuses.items() if code.startswith("2")))
    us = {name: (cpu_seconds(pid) - before[name]) / answered * 1e6 for name, pid in pids.items()}
    return got, HalfCpu(us, (machine_busy_seconds() - busy) / elapsed)


def _round_order(order: tuple[str, ...], i: int) -> tuple[str, ...]:
    """Round i's order: reversed every other round, so a drift in load over the run does not
    always favour the server measured first."""
    return order if i % 2 == 0 else order[::-1]


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _load_cells(got: Load) -> str:
    return (
        f"{got.sent:8d}"
        + "".join(f"{got.pct(p):9.2f}" for p in (50, 99, 100))
        + f"{got.lag_max_ms:12.2f}"
    )


def _load_problems(name: str, got: Load) -> list[str]:
    problems = []
    others = {code: n for code, n in got.statuses.items() if code != "200"}
    if others:
        problems.append(f"{name}: answers other than 200: {others}")
    if got.errors:
        problems.append(f"{name}: connection errors {got.errors}")
    if got.unanswered:
        problems.append(f"{name}: {got.unanswered} requests unanswered")
    return problems


def _round_problems(name: str, wrk: Wrk) -> list[str]:
    problems = []
    if wrk.non_2xx:
        problems.append(f"{name}: {wrk.non_2xx} non-2xx responses")
    if wrk.socket_errors:
        problems.append(f"{name}: {wrk.socket_errors} socket errors")
    if wrk.requests == 0:
        problems.append(f"{name}: no request answered")
    return problems


if __name__ == "__main__":
    sys.exit(main())
