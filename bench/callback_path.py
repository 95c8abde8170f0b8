"""`make bench`: the callback path against a bare Sanic handler, on this machine, in one run.

(a) bench/bare_app.py: a bare Sanic handler answering the same body, served like the edge.
(b) the full callback path: edge (signature check from its cache) → RunFlow stream → runner's
    engine (trigger → map → callback) → run record committed to SQLite → response. Runs are
    durable: the record is committed (group commit, control_plane/runs/journal.py) before the
    runner sends the callback, so every answer the caller gets has its run on disk.

Both get the same wrk load (HTTP/1.1 keep-alive, 64 connections, 1 thread by default) for the
same duration: a warm-up each, then a and b rounds alternated, so drift (thermal, other tenants)
hits both alike; the table gives each figure's median over the rounds. CPU per request is read
from /proc/<pid>/stat (user + system, all threads) around each round. Then it checks the runs in
the database against the answers wrk counted and measures regenerate → edge propagation
(bench/propagation.py). Exit status 1 when any correctness check fails.

Target (docs/design.md §3): the callback path keeps ≥ 0.25 of the bare handler's requests per
second.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from itertools import islice
from pathlib import Path

import propagation
from stack import (
    COMPANY,
    EXPECTED_BODY,
    EXPECTED_CONTENT_TYPE,
    BenchStack,
    KeepAlive,
    bench_stack,
)
from wrk import Round, Wrk, other_load, run_wrk

from boomerang.local import free_port
from boomerang.v1 import resources_pb2

TARGET_RATIO = 0.25
#: Cores used by other processes above which a round's figures are called disturbed.
NOISY_CORES = 0.2
BARE_APP = Path(__file__).with_name("bare_app.py")


def start_bare_app(log_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(BARE_APP), "--port", str(port)]
    with open(log_dir / "bare-app.log", "ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the bare app exited ({process.returncode}); see {log_dir}")
        try:
            with KeepAlive(base, timeout=1) as http:
                http.request("GET", "/")
            return process, base
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError("the bare app did not start") from None
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


def read_runs(db_path: Path) -> tuple[Counter[tuple[str, int, int, int]], int]:
    """(runs by status/response/reason/attempts, run_task rows), read-only from the SQLite file."""
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        runs = Counter({tuple(row[:4]): row[4] for row in db.execute(RUNS_SQL)})
        tasks = db.execute(TASKS_SQL).fetchone()[0]
    return runs, tasks


def settled_runs(
    db_path: Path, settle_s: float = 0.5, timeout_s: float = 10.0
) -> tuple[Counter[tuple[str, int, int, int]], int]:
    """`read_runs` once it stops moving: requests wrk abandoned when it stopped may still be
    running (each is committed when it ends, with what the edge told its caller)."""
    last = read_runs(db_path)
    stable_since = time.monotonic()
    deadline = stable_since + timeout_s
    while True:
        time.sleep(0.1)
        now = read_runs(db_path)
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
    last wrk ended. Runs are committed before the caller gets the callback, so `at_once` already
    holds a 200 run for every one of them (no settling, nothing written behind). Requests wrk
    abandoned when each of its runs ended (at most one per connection, `cut_off` in all) may have
    made a run too: recorded 200 if its callback was committed before the edge learnt the caller
    left, else with the status the edge reports (499).
    """
    lines, problems = [], []
    ok_now = answered_200(at_once)
    lines.append(
        f"runs answered 200 in table `run` as wrk ended: {ok_now} for {answered} requests "
        "answered 200 (the record is committed before the callback is sent)"
    )
    if ok_now < answered:
        problems.append(f"only {ok_now} runs committed for {answered} answered requests")

    runs, tasks = settled_runs(bench.db_path)
    total, ok = sum(runs.values()), answered_200(runs)
    lines.append(
        f"runs recorded once settled: {total}, {ok} answered 200, for {answered} answered "
        f"(+ at most {cut_off} cut off in flight when wrk stopped); run_task rows left: {tasks}"
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
    print(f"{'':22}" + "".join(f"{name:>{width}}" for name, width, _ in _COLUMNS))
    labels = {"a": "(a) bare Sanic", "b": "(b) callback path"}
    for key, rs in rounds.items():
        rows = [row(r, *processes[key]) for r in rs]
        for i, values in enumerate(rows, 1):
            print(f"  round {i} {key:13}" + cells(values))
        medians = [
            None if col[0] is None else statistics.median(col) for col in zip(*rows, strict=True)
        ]
        print(f"{labels[key] + ' median':22}" + cells(medians))


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--threads", type=int, default=1, help="wrk -t (default 1)")
    parser.add_argument("--duration", type=float, default=8, help="seconds a round (default 8)")
    parser.add_argument("--warmup", type=float, default=4, help="warm-up seconds (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of each (default 3)")
    parser.add_argument(
        "--regenerations", type=int, default=100, help="propagation samples (0: skip)"
    )
    parser.add_argument(
        "--state-dir", type=Path, help="keep state and logs here (default: a temporary dir)"
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if shutil.which("wrk") is None:
        print("error: wrk not found; install it: apt-get install wrk", file=sys.stderr)
        return 1
    idle_load = other_load()
    if idle_load > NOISY_CORES:
        print(
            f"warning: other processes (or the hypervisor) already take {idle_load:.1f} of this "
            "machine's cores; the figures will be noisy (see the `others` column)",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="boomerang-bench-") as tmp:
        root = args.state_dir or Path(tmp)
        with bench_stack(root) as bench:
            bare, bare_base = start_bare_app(root / "logs")
            try:
                return measure(args, bench, bare, bare_base)
            finally:
                bare.terminate()
                bare.wait(10)


def measure(
    args: argparse.Namespace, bench: BenchStack, bare: subprocess.Popen, bare_base: str
) -> int:
    stack = bench.stack
    assert stack.edge is not None and stack.control is not None
    # The same path and query (a dummy signature) so both parse the same request.
    url = {"a": bare_base + bench.url().removeprefix(stack.edge_url), "b": bench.url()}
    pids = {"a": {"bare": bare.pid}, "b": {"edge": stack.edge.pid, "cp": stack.control.pid}}
    problems = check_same_answer(url)
    probes = 1 + 1  # the stack's readiness GET that answered 200, and check_same_answer's
    print(
        f"wrk: {args.connections} connections, {args.threads} thread(s), keep-alive; "
        f"{args.warmup:g} s warm-up each, then {args.rounds} x (a {args.duration:g} s, "
        f"b {args.duration:g} s); Sanic TouchUp on in both",
        flush=True,
    )
    every: dict[str, list[Wrk]] = {"a": [], "b": []}  # warm-ups included

    def load(key: str, seconds: float, name: str) -> Round:
        r = run_wrk(url[key], args, seconds, pids[key])
        every[key].append(r.wrk)
        problems.extend(_round_problems(name, r.wrk))
        return r

    for key in ("a", "b"):
        load(key, args.warmup, f"warm-up {key}")
    rounds: dict[str, list[Round]] = {"a": [], "b": []}
    at_once: Counter[tuple[str, int, int, int]] = Counter()
    for i in range(args.rounds):
        for key in ("a", "b"):
            r = load(key, args.duration, f"round {i + 1} {key}")
            if key == "b" and i == args.rounds - 1:
                at_once, _ = read_runs(bench.db_path)  # before anything else is committed
            rounds[key].append(r)
            print(f"  round {i + 1} {key}: {r.wrk.rps:.0f} req/s", flush=True)

    print()
    print_table(rounds, {"a": ("bare", None), "b": ("edge", "cp")})
    print(LEGEND)
    ratio = median(rounds["b"], lambda r: r.wrk.rps) / median(rounds["a"], lambda r: r.wrk.rps)
    met = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(f"\nratio b/a of req/s (medians): {ratio:.3f}   target ≥ {TARGET_RATIO}: {met}")
    bare_us = median(rounds["a"], lambda r: r.cpu_us_per_request("bare"))
    path_us = median(
        rounds["b"], lambda r: r.cpu_us_per_request("edge") + r.cpu_us_per_request("cp")
    )
    print(
        f"CPU per request: callback path (edge + control plane) {path_us:.0f} µs, "
        f"bare {bare_us:.0f} µs ({path_us / bare_us:.1f}x)"
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
            "the req/s figures and the ratio are disturbed; rerun on a quiet machine"
        )
    elif noisy:
        print(f"note: others took over {NOISY_CORES} cores in {', '.join(noisy)}; medians shown")
    results = [w for ws in every.values() for w in ws]
    non_2xx = sum(w.non_2xx for w in results)
    socket_errors = sum(w.socket_errors for w in results)
    print(f"wrk, warm-ups included: non-2xx responses {non_2xx}, socket errors {socket_errors}")

    # Only 200s made a run (wrk counts every answer as a request; non-2xx are failures above).
    answered = sum(w.requests - w.non_2xx for w in every["b"]) + probes
    lines, run_problems = check_runs(bench, answered, len(every["b"]) * args.connections, at_once)
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
