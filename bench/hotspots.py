"""Where the callback path spends its CPU: py-spy on the edge and the control plane under load.

`python bench/hotspots.py [--duration 15] [--rate 100]` starts the benchmark stack, puts the
callback path under the same wrk load as bench/callback_path.py, and samples the edge, then the
control-plane process (runner inside), one at a time so only one sampler competes for the two
cores. For each it prints the cores each thread used (from /proc) and the busiest functions,
inclusive (the function and what it calls) and self (the frame on top), as % of the process's
busy samples (threads waiting in C are left out, see WAITING), and writes the raw collapsed
stacks next to the logs (feed them to flamegraph.pl or speedscope for a picture).

Needs py-spy (`.venv/bin/pip install py-spy`; it is not a project dependency). Sampling pauses
the process for each sample, so throughput is lower while profiling; the shares are what count.
`--report FILE.raw` only prints the tables for stacks recorded earlier.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from stack import bench_stack, thread_cpu_seconds

# "func (path/to/file.py:123)" → "func (file.py)": lines of one function count together.
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^():]*?)(?::\d+)?\)$")
_SHORTEN = (
    (re.compile(r"^.*/site-packages/"), ""),
    (re.compile(r"^.*/lib/python3\.\d+/"), ""),
    (re.compile(r"^.*/(edge|control_plane|clients/boomerang)/"), r"\1/"),
)


def frame_name(frame: str) -> str:
    m = _FRAME.match(frame)
    if m is None:
        return frame
    path = m.group("file")
    for pattern, repl in _SHORTEN:
        path = pattern.sub(repl, path)
    return f"{m.group('func')} ({path})"


#: Top frames of threads blocked in C, which py-spy can take for busy ones: a pool thread waiting
#: for work, grpc's poller thread in epoll, the event loop in epoll. /proc shows them idle.
WAITING = frozenset(
    {
        "_worker (concurrent/futures/thread.py)",
        "Thread.run (threading.py)",
        "EpollSelector.select (selectors.py)",
    }
)


#: Frames under every sample of their thread (process start, event loop, thread pool): left
#: out of the inclusive table, where they would only say "100%".
_SCAFFOLD = re.compile(
    r"^(<module>|main|_run_module_as_main|_run_code|run|Runner\.run|Handle\._run"
    r"|BaseEventLoop\.(run_forever|run_until_complete|_run_once)|_worker|_WorkItem\.run"
    r"|Thread\.(run|_bootstrap|_bootstrap_inner)) \("
)


def load(raw: Path) -> list[tuple[list[str], int]]:
    """py-spy's raw (collapsed) stacks, root first, thread frame dropped, waiting ones left out."""
    stacks = []
    for line in raw.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        names = [frame_name(f) for f in frames.split(";") if not f.startswith("thread (")]
        if names and names[-1] not in WAITING:
            stacks.append((names, int(count)))
    return stacks


_THREAD = re.compile(r"^thread \((?:0x)?(?P<tid>[0-9a-f]+)\)(?:: (?P<name>.*))?$")


def by_thread(raw: Path) -> tuple[Counter[str], dict[str, str]]:
    """Samples per thread name, and thread names by OS thread id."""
    samples: Counter[str] = Counter()
    names: dict[str, str] = {}
    for line in raw.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        m = _THREAD.match(frames.split(";", 1)[0])
        name = (m.group("name") or m.group("tid")) if m else "?"
        if m:
            names[m.group("tid")] = name
        if frame_name(frames.rsplit(";", 1)[-1]) not in WAITING:
            samples[name] += int(count)
    return samples, names


#: The parts of the path, in the order a sample is tried against them: the first part with a
#: frame (from the leaf up) containing one of its strings takes the sample.
COMPONENTS = {
    "edge": (
        ("RunFlow stream: grpc write/read", ("grpc/aio", "RunFlowClient._write", "_read (edge")),
        ("HTTP answer written to the socket", ("send (send)", "Transport.write")),
        ("handler: the run's start (RunStart, headers, query)", ("_add_request_metadata",)),
        ("handler: start/wait on the runner pool", ("RunFlowClient.start", "runner_pool.py")),
        ("handler: auth, cache, answer", ("edge/callbacks.py", "edge/answers.py", "signatures")),
        ("metrics, access log, response middlewares", ("_record", "metrics", "access_log")),
        ("Sanic: parse the request, build the answer", ("sanic/", "http1_", "handle_request")),
        ("Sanic: connection task", ("connection_task", "edge/protocol.py")),
        ("asyncio/uvloop in Python", ("asyncio/", "uvloop/")),
    ),
    "control-plane": (
        ("RunFlow stream: grpc read/write, events", ("runner/service.py", "grpc/aio", "decode.py")),
        ("engine: shapes, expressions, budgets", ("control_plane/engine/",)),
        ("journal: rows, their SQLite commit on the loop", ("journal.py", "Runtime.db")),
        ("run driver: record, ids, timers", ("control_plane/runs/", "domain/ids", "ulid/")),
        ("asyncio/uvloop in Python", ("asyncio/", "uvloop/")),
    ),
}
#: A sample whose leaf is this is in uvloop's C code: its own work (and grpc's callbacks, also C)
#: or its wait in epoll, which py-spy cannot tell apart: counted apart.
_UVLOOP_LEAF = "Runner.run (asyncio/runners.py)"


def _has(frames: list[str], keys: tuple[str, ...]) -> bool:
    return any(k in f for f in frames for k in keys)


def components(raw: Path, parts: tuple[tuple[str, tuple[str, ...]], ...]) -> None:
    """Busy samples by part of the path; pool threads (the database work) as one part."""
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        frames, _, count = line.rpartition(" ")
        m = _THREAD.match(frames.split(";", 1)[0])
        thread = (m.group("name") or "") if m else ""
        names = [frame_name(f) for f in frames.split(";") if not f.startswith("thread (")]
        if not names or names[-1] in WAITING:
            continue
        if thread.startswith("db_"):
            part = "database thread: the SQL and its commit"
        elif names[-1] == _UVLOOP_LEAF:
            part = "uvloop's C code or its wait in epoll (py-spy cannot tell)"
        else:
            part = next((name for name, keys in parts if _has(names, keys)), "other")
        counts[part] += int(count)
    total = sum(counts.values())
    print("by part of the path (% of busy samples):")
    for part, n in counts.most_common():
        print(f"  {n / total:6.1%}  {part}")


def report(
    raw: Path, title: str, top: int = 25, thread_cores: dict[str, float] | None = None
) -> None:
    stacks = load(raw)
    total = sum(n for _, n in stacks)
    if not total:
        print(f"\n{title}: no samples")
        return
    inclusive: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    for frames, n in stacks:
        for name in set(frames):
            inclusive[name] += n
        if frames:
            self_time[frames[-1]] += n
    print(f"\n== {title}: {total} busy samples ({raw})")
    samples, names = by_thread(raw)
    threads = ", ".join(f"{t} {n / total:.0%}" for t, n in samples.most_common(6))
    print(f"busy samples by thread: {threads}")
    if thread_cores:
        busy = sorted(thread_cores.items(), key=lambda kv: -kv[1])
        cores = ", ".join(
            f"{names.get(t.rsplit('/', 1)[1], t)} {c:.2f}" for t, c in busy if c >= 0.005
        )
        print(f"cores used per thread (from /proc, including the sampler's pauses): {cores}")
    kind = "edge" if title.startswith("edge") else "control-plane"
    components(raw, COMPONENTS[kind])
    print("inclusive (% of busy samples with the function on the stack):")
    shown = [(k, n) for k, n in inclusive.most_common() if not _SCAFFOLD.match(k)][:top]
    for name, n in shown:
        print(f"  {n / total:6.1%}  {name}")
    print("self (% of busy samples with the function on top):")
    for name, n in self_time.most_common(top):
        print(f"  {n / total:6.1%}  {name}")


def record(pid: int, out: Path, duration: float, rate: int, native: bool) -> dict[str, float]:
    """Samples `pid` into `out`; returns the cores each of its threads used meanwhile, from
    /proc (py-spy cannot always tell a thread blocked in C from a busy one: this can)."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "-p", str(pid), "-r", str(rate), "-d", f"{duration:g}"]
    command += ["-f", "raw", "-o", str(out), "--threads"]
    if native:
        command.append("--native")
    before, started = thread_cpu_seconds(pid), time.monotonic()
    subprocess.run(command, check=True, capture_output=True)
    after, elapsed = thread_cpu_seconds(pid), time.monotonic() - started
    return {t: (after[t] - before.get(t, 0.0)) / elapsed for t in after}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=15, help="seconds per process")
    parser.add_argument("--rate", type=int, default=100, help="samples per second")
    parser.add_argument("--connections", type=int, default=64, help="wrk -c (default 64)")
    parser.add_argument("--native", action="store_true", help="include C frames (slower)")
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    parser.add_argument("--report", type=Path, nargs="+", help="only print these .raw files")
    parser.add_argument("--state-dir", type=Path, help="keep state, logs and stacks here")
    args = parser.parse_args()
    if args.report:
        for raw in args.report:
            report(raw, raw.stem, args.top)
        return 0
    py_spy = shutil.which("py-spy") or Path(sys.executable).with_name("py-spy")
    if not Path(py_spy).exists() or shutil.which("wrk") is None:
        print("error: needs py-spy (.venv/bin/pip install py-spy) and wrk", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="boomerang-hotspots-") as tmp:
        root = args.state_dir or Path(tmp)
        with bench_stack(root) as bench:
            assert bench.stack.edge is not None and bench.stack.control is not None
            targets = {"edge": bench.stack.edge.pid, "control-plane": bench.stack.control.pid}
            load_s = len(targets) * (args.duration + 3) + 3
            wrk = ["wrk", "-t1", "-c", str(args.connections), "-d", f"{load_s:g}s", bench.url()]
            outs, cores = {}, {}
            with subprocess.Popen(wrk, stdout=subprocess.PIPE, text=True) as load_gen:
                time.sleep(3)  # warm
                for name, pid in targets.items():
                    outs[name] = root / f"{name}.raw"
                    cores[name] = record(pid, outs[name], args.duration, args.rate, args.native)
                summary, _ = load_gen.communicate()
            rps = re.search(r"Requests/sec:\s+([\d.]+)", summary)
            print(f"under load: {rps.group(1) if rps else '?'} req/s while sampling")
            for name, raw in outs.items():
                report(raw, name, args.top, cores[name])
            if args.state_dir is None:
                print("\n(raw stacks are removed with the temporary dir; keep them: --state-dir)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
