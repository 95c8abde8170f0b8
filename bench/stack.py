"""What the benchmarks share: a running Boomerang with one trivial callback, and small measures.

`bench_stack()` starts the product the way a user does (`boomerang.local.LocalStack`: the control
plane with the runner inside it, and the edge, as child processes on loopback, SQLite in a fresh
state dir unless given a PostgreSQL URL), creates company `bench` with the flow trigger → map →
callback, deploys it, creates a callback and waits until the edge answers it.

The stack lifts the per-company cap on runs in flight (BOOMERANG_COMPANY_RUNS_IN_FLIGHT, 50 by
default) to RUNS_IN_FLIGHT: all of the load comes from the one company `bench`, and wrk's 64
connections would otherwise be partly answered 429 too_many_runs, which measures the cap, not the
path. bench/priority.py keeps the cap at its default (it has two companies).
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import stores

from boomerang.local import LocalStack
from boomerang.sdk import Client

ADMIN_KEY = "bmk_bench-admin-key-0123456789abcdefghijklmnopqrstuv"
COMPANY = "bench"
DEFINITION = {
    "shapes": [
        {"id": "trigger", "type": "trigger"},
        {"id": "map", "type": "map", "expression": "{sku: payload.sku, stock: `7`}"},
        {"id": "reply", "type": "callback"},
    ]
}
#: The query the load generator sends besides the signature, and what the flow answers to it.
QUERY = "sku=A1"
EXPECTED_BODY = b'[{"sku":"A1","stock":7}]'
EXPECTED_CONTENT_TYPE = "application/json"
#: The cap on one company's runs in flight for the benchmark stack: above any wrk -c used here.
RUNS_IN_FLIGHT = 1024

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass
class BenchStack:
    stack: LocalStack
    client: Client
    callback_id: str
    #: The callback's current signature (propagation.py replaces it).
    signature: str
    state_dir: Path

    @property
    def path(self) -> str:
        return f"/api/v1/{COMPANY}/{self.callback_id}"

    def url(self, signature: str | None = None) -> str:
        """The full callback URL with the benchmark query."""
        sig = self.signature if signature is None else signature
        return f"{self.stack.edge_url}{self.path}?patchworks_signature={sig}&{QUERY}"

    def query(self, sql: str) -> list[tuple]:
        """Rows of `sql` on the stack's store, read beside the service (bench/stores.py)."""
        return stores.query(self.stack.database_url, sql)


@contextmanager
def bench_stack(
    state_dir: Path | None = None,
    env: dict[str, str] | None = None,
    *,
    edge_workers: int = 1,
    runners: int = 0,
    database_url: str = "",
) -> Iterator[BenchStack]:
    """A running stack with the benchmark callback; children's output goes to state_dir/logs.
    `env` is added to the children's environment (after the stack's own settings).
    `edge_workers`: edge processes on the port (EDGE_WORKERS). `runners`: 0 runs the runner
    inside the control plane (`--role all`, as `make run`); N ≥ 1 runs N runner processes
    apart from a `--role control` control plane, the edge streaming to all of them.
    `database_url`: the store (a new, empty one), SQLite in the state dir when empty."""
    with tempfile.TemporaryDirectory(prefix="boomerang-bench-") as tmp:
        root = state_dir or Path(tmp)
        if (root / "state").exists():
            raise ValueError(f"{root} holds an earlier run's state: give a new directory")
        extra = {"BOOMERANG_COMPANY_RUNS_IN_FLIGHT": str(RUNS_IN_FLIGHT), **(env or {})}
        stack = LocalStack(
            state_dir=root / "state",
            admin_key=ADMIN_KEY,
            log_dir=root / "logs",
            extra_env=extra,
            database_url=database_url,
            separate_runner=runners > 0,
            runner_count=max(runners, 1),
            edge_workers=edge_workers,
        )
        try:
            stack.start_control_plane()
            stack.start_runners()
            with Client(stack.control_target, ADMIN_KEY) as client:
                client.create_company(name="Benchmark", slug=COMPANY)
                flow = client.create_flow(COMPANY, "trivial", DEFINITION).flow
                client.deploy_version(flow.id)
                callback = client.create_callback(flow.id, name="bench")
                stack.start_edge()
                bench = BenchStack(stack, client, callback.id, callback.signature, root)
                wait_for_status(bench.stack.edge_url, bench.url(), 200)
                yield bench
        finally:
            stack.stop()


def wait_for_status(base_url: str, url: str, status: int, timeout: float = 10.0) -> None:
    """Until a GET of `url` answers `status` (the callback reaches the edge by the sync stream)."""
    deadline = time.monotonic() + timeout
    with KeepAlive(base_url) as http:
        while True:
            try:
                got: int | str = http.request("GET", url)[0]
            except OSError as e:  # not listening yet
                http.close()
                got = str(e)
            if got == status:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} still answers {got}, not {status}")
            time.sleep(0.02)


class KeepAlive:
    """One keep-alive HTTP/1.1 connection (http.client: the cheapest client in the stdlib)."""

    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)

    def request(self, method: str, url: str) -> tuple[int, str, bytes]:
        """(status, content type, body); `url` may be absolute (only its path and query go)."""
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        self.conn.request(method, target)
        response = self.conn.getresponse()
        body = response.read()
        return response.status, response.getheader("content-type", ""), body

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> KeepAlive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_listening(
    port: int, process: subprocess.Popen | None = None, timeout: float = 30.0
) -> None:
    """Until something accepts TCP connections on 127.0.0.1:`port`; raises if `process` (the one
    that should listen) exits first, or after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the process for port {port} exited ({process.returncode})")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on port {port}") from None
            time.sleep(0.05)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads, from /proc/<pid>/stat."""
    return _stat_cpu(f"/proc/{pid}/stat")


def thread_cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time of each thread of a process, by "name/tid", from /proc/<pid>/task/*/stat."""
    threads = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            threads[f"{name}/{task.name}"] = _stat_cpu(task / "stat")
        except FileNotFoundError:
            continue  # the thread ended meanwhile
    return threads


def machine_busy_seconds() -> float:
    """CPU time all cores spent on processes, or lost to the hypervisor, since boot (the `cpu`
    line of /proc/stat): user, nice and system (what /proc/<pid>/stat charges to processes) plus
    steal (time another VM had our core). Interrupt time, mostly the loopback traffic the
    benchmark makes itself, is left out.
    """
    with open("/proc/stat", "rb") as f:
        user, nice, system, _, _, _, _, steal = (int(x) for x in f.readline().split()[1:9])
    return (user + nice + system + steal) / _CLK_TCK


def _stat_cpu(path: str | Path) -> float:
    with open(path, "rb") as f:
        stat = f.read()
    # Fields after the parenthesised command name (which may hold spaces); utime and stime are
    # fields 14 and 15 of the whole line, so 12 and 13 after it.
    fields = stat[stat.rindex(b")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0-100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil without floats
    return ordered[int(rank) - 1]
