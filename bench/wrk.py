"""Running wrk and measuring the processes it loads: a round's figures and CPU readings."""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import time
from dataclasses import dataclass, field

from stack import cpu_seconds, machine_busy_seconds


@dataclass
class Wrk:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


@dataclass
class Round:
    wrk: Wrk
    #: CPU seconds per watched process during the round, and wrk's own.
    cpu: dict[str, float] = field(default_factory=dict)
    #: Cores used by everything else on the machine meanwhile (noise the figures absorb).
    others: float = 0.0
    elapsed: float = 1.0

    def cpu_us_per_request(self, name: str) -> float:
        return self.cpu[name] / max(self.wrk.requests, 1) * 1e6

    def cores(self, name: str) -> float:
        return self.cpu[name] / self.elapsed


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _latency_ms(text: str, pct: str) -> float:
    m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if m is None:
        raise ValueError(f"no {pct}% latency in wrk's output:\n{text}")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


def parse_wrk(text: str) -> Wrk:
    requests = re.search(r"^\s+(\d+) requests in", text, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if requests is None or rps is None:
        raise ValueError(f"cannot read wrk's output:\n{text}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
        text,
    )
    return Wrk(
        requests=int(requests.group(1)),
        rps=float(rps.group(1)),
        p50_ms=_latency_ms(text, "50"),
        p99_ms=_latency_ms(text, "99"),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def run_wrk(url: str, args: argparse.Namespace, duration: float, pids: dict[str, int]) -> Round:
    command = ["wrk", "-t", str(args.threads), "-c", str(args.connections)]
    command += ["-d", f"{duration:g}s", "--timeout", "10s", "--latency", url]
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy, started = machine_busy_seconds(), time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    busy, elapsed = machine_busy_seconds() - busy, time.monotonic() - started
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = {name: cpu_seconds(pid) - before[name] for name, pid in pids.items()}
    cpu["wrk"] = (after_children.ru_utime - children.ru_utime) + (
        after_children.ru_stime - children.ru_stime
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    # The benchmark's own idle processes (the other side, this script) count as others: small.
    others = max(0.0, busy - sum(cpu.values())) / elapsed
    return Round(parse_wrk(done.stdout), cpu, others, elapsed)


def other_load(seconds: float = 1.0) -> float:
    """Cores busy on this machine right now (before the benchmark starts anything)."""
    busy = machine_busy_seconds()
    time.sleep(seconds)
    return (machine_busy_seconds() - busy) / seconds
