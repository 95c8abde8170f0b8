"""The change stream with a large installation: a fresh edge's snapshot, its memory, and how fast
one RegenerateSignature reaches it with that many callbacks present (docs/sync.md).

1. Fills a new store with N callbacks across C companies (bench/sync_bulk.py: bulk INSERTs of
   the rows the API writes), SQLite under a temporary directory unless --postgres is given.
2. Starts a fresh edge (`python -m edge`) while the control plane is still down, and reads its
   resident memory (nothing loaded yet).
3. Starts the control plane (`python -m control_plane serve`) and times, from the moment it is
   healthy, until the edge answers /readyz 200: the snapshot's transfer, apply and persistence,
   plus the edge's reconnect delay (at most 1 s, edge/backoff.py).
4. Reads the edge's memory again (now and its peak) and the size of its last-known-good file.
5. `--rotations` times: RegenerateSignature of one callback, then HEAD requests to the edge with
   the NEW signature until it is accepted (204); prints the median and the extremes.
6. Starts a second stack with `--compare` callbacks (10; 0: none), then `--load-rounds` rounds of
   wrk (`--connections` 32, 5 s each) on one callback's URL of each stack, alternated, every
   other round reversed (the flow of `make bench`: trigger → map → callback): req/s and the CPU
   the edge and the control plane spend per request with N callbacks loaded and with few, side
   by side: the edge finds a callback by two dict lookups, whatever N.

    .venv/bin/python bench/sync_scale.py [--callbacks 1000000] [--companies 1000] [--compare 10]
        [--postgres postgres://postgres@127.0.0.1:5432/test] [--rotations 5] [--load-rounds 3]
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import http.client
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.sync_bulk, run as a script
sys.path.insert(0, str(Path(__file__).resolve().parent))  # wrk.py's own imports

from bench.stores import postgres_schema, store_url
from bench.sync_bulk import Sample, populate
from boomerang.local import LocalStack
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import callback_service_pb2_grpc as cbs_grpc
from control_plane import secrets
from control_plane.secrets.box import SecretBox, decode_key
from control_plane.store.db import database, open_database
from control_plane.store.migrate import migrate

ADMIN_KEY = "bmk_bench-sync-scale-0123456789abcdefghijklmnopqrs"
#: Seals the bulk-written signatures; the control plane gets it as BOOMERANG_SECRET_KEY.
SECRET_KEY = base64.b64encode(os.urandom(32)).decode()
GIVE_UP_S = 600.0


def memory_mib(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak) of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024
    return fields


def head_status(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("HEAD", path)
    response = conn.getresponse()
    response.read()
    return response.status


def wait_ready(edge_url: str, limit_s: float) -> float:
    start = time.perf_counter()
    host = edge_url.removeprefix("http://")
    while True:
        conn = http.client.HTTPConnection(host, timeout=5)
        try:
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return time.perf_counter() - start
        except OSError:
            pass
        finally:
            conn.close()
        if time.perf_counter() - start > limit_s:
            raise TimeoutError("the edge did not get ready")
        time.sleep(0.05)


def rotations(stack: LocalStack, sample: Sample, count: int) -> tuple[list[float], Sample]:
    """Seconds from RegenerateSignature's return until the edge accepts the new signature, and
    the sample with its last signature."""
    delays = []
    md = (("authorization", f"Bearer {ADMIN_KEY}"),)
    conn = http.client.HTTPConnection(stack.edge_url.removeprefix("http://"), timeout=10)
    with grpc.insecure_channel(stack.control_target) as channel:
        stub = cbs_grpc.CallbackServiceStub(channel)
        for _ in range(count):
            cb = stub.RegenerateSignature(
                cbs.RegenerateSignatureRequest(id=sample.callback_id), metadata=md
            ).callback
            returned = time.perf_counter()
            path = f"/api/v1/{sample.company}/{cb.id}?patchworks_signature={cb.signature}"
            while head_status(conn, path) != 204:
                if time.perf_counter() - returned > GIVE_UP_S:
                    raise TimeoutError("the new signature never reached the edge")
                time.sleep(0.001)
            delays.append(time.perf_counter() - returned)
            sample = dataclasses.replace(sample, signature=cb.signature)
    conn.close()
    return delays, sample


def load_rounds(stacks: dict[str, tuple[LocalStack, Sample]], args: argparse.Namespace) -> None:
    """wrk on each stack's sample callback URL, alternated round by round (every other round
    reversed): req/s and CPU per request of the edge and the control plane (which holds the
    runner), per round and their medians."""
    from wrk import Round, run_wrk

    options = argparse.Namespace(threads=1, connections=args.connections)
    targets = {}
    for name, (stack, sample) in stacks.items():
        assert stack.edge is not None and stack.control is not None
        url = (
            f"{stack.edge_url}/api/v1/{sample.company}/{sample.callback_id}"
            f"?patchworks_signature={sample.signature}&sku=A1"
        )
        targets[name] = (url, {"edge": stack.edge.pid, "cp": stack.control.pid})
        run_wrk(url, options, 2, targets[name][1])  # warm-up
    rounds: dict[str, list[Round]] = {name: [] for name in targets}
    for i in range(args.load_rounds):
        for name in list(targets)[:: 1 if i % 2 == 0 else -1]:
            url, pids = targets[name]
            r = run_wrk(url, options, 5, pids)
            rounds[name].append(r)
            print(
                f"  load round {i + 1}, {name}: {r.wrk.rps:.0f} req/s, edge "
                f"{r.cpu_us_per_request('edge'):.0f} µs/req, control plane "
                f"{r.cpu_us_per_request('cp'):.0f} µs/req, non-2xx {r.wrk.non_2xx}, "
                f"others {r.others:.2f} cores"
            )
    for name, rs in rounds.items():
        print(
            f"with {name} loaded, medians: {statistics.median(r.wrk.rps for r in rs):.0f} req/s, "
            f"edge {statistics.median(r.cpu_us_per_request('edge') for r in rs):.0f} µs/req, "
            f"control plane {statistics.median(r.cpu_us_per_request('cp') for r in rs):.0f} µs/req"
        )


def fill(url: str, callbacks: int, companies: int) -> tuple[Sample, float]:
    # The key the control plane will load too (BOOMERANG_SECRET_KEY in the stack's environment).
    secrets.install(SecretBox(decode_key(SECRET_KEY)))
    open_database(url)
    with database.connection_context():
        migrate()
        start = time.perf_counter()
        sample = populate(callbacks, companies)
        took = time.perf_counter() - start
    database.close()
    return sample, took


def new_stack(root: Path, url: str) -> LocalStack:
    return LocalStack(
        state_dir=root / "state",
        admin_key=ADMIN_KEY,
        database_url=url,
        log_dir=root / "logs",
        # The load comes from one company: above wrk's connections (bench/stack.py says why).
        extra_env={
            "BOOMERANG_SECRET_KEY": SECRET_KEY,
            "BOOMERANG_COMPANY_RUNS_IN_FLIGHT": "1024",
        },
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--callbacks", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=1_000)
    parser.add_argument("--compare", type=int, default=10, help="callbacks of the other stack")
    parser.add_argument("--rotations", type=int, default=5)
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server (a new schema)")
    parser.add_argument("--load-rounds", type=int, default=3, help="wrk rounds (0: none)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (default 32)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="boomerang-sync-scale-") as tmp:
        root = Path(tmp)
        schemas = [f"boomerang_sync_scale_{os.getpid()}", f"boomerang_sync_scale_{os.getpid()}_few"]
        url = store_url(args, root, schemas[0])
        stack = new_stack(root, url)
        few: LocalStack | None = None
        try:
            print(f"filling the store: {args.callbacks:,} callbacks, {args.companies:,} companies")
            sample, filled = fill(url, args.callbacks, args.companies)
            print(f"  filled in {filled:.1f} s ({'PostgreSQL' if args.postgres else 'SQLite'})")

            stack.start_edge(ready=False)  # the control plane is not up yet: nothing to load
            assert stack.edge is not None
            before = memory_mib(stack.edge.pid)
            print(f"edge RSS before the snapshot: {before['VmRSS']:.0f} MiB")

            stack.start_control_plane(timeout=120)
            healthy = time.perf_counter()
            snapshot_s = wait_ready(stack.edge_url, GIVE_UP_S)
            print(
                f"snapshot to the fresh edge (control plane healthy -> ready): {snapshot_s:.2f} s"
            )
            lkg = root / "state" / "edge" / "lkg.binpb"
            while not lkg.exists():
                time.sleep(0.05)
            print(f"  ... and persisted as last-known-good: {time.perf_counter() - healthy:.2f} s")
            after = memory_mib(stack.edge.pid)
            print(
                f"edge RSS after the snapshot: {after['VmRSS']:.0f} MiB "
                f"(peak {after['VmHWM']:.0f} MiB)"
            )
            print(f"edge last-known-good file: {lkg.stat().st_size / (1 << 20):.0f} MiB")

            delays, sample = rotations(stack, sample, args.rotations)
            print(
                f"RegenerateSignature -> edge accepts the new signature, {len(delays)} rotations: "
                f"median {statistics.median(delays) * 1000:.1f} ms "
                f"(min {min(delays) * 1000:.1f}, max {max(delays) * 1000:.1f})"
            )
            final = memory_mib(stack.edge.pid)
            print(f"edge RSS at the end: {final['VmRSS']:.0f} MiB (peak {final['VmHWM']:.0f} MiB)")
            if stack.control is not None:
                cp = memory_mib(stack.control.pid)
                print(f"control plane RSS: {cp['VmRSS']:.0f} MiB (peak {cp['VmHWM']:.0f} MiB)")
            if args.load_rounds:
                stacks = {f"{args.callbacks:,} callbacks": (stack, sample)}
                if args.compare:
                    (root / "few").mkdir(mode=0o700)
                    few_url = store_url(args, root / "few", schemas[1])
                    few = new_stack(root / "few", few_url)
                    few_sample, _ = fill(few_url, args.compare, min(args.companies, args.compare))
                    few.start_control_plane(timeout=120)
                    few.start_edge()
                    stacks[f"{args.compare:,} callbacks"] = (few, few_sample)
                load_rounds(stacks, args)
        finally:
            stack.stop()
            if few is not None:
                few.stop()
            if args.postgres:
                for schema in schemas:
                    postgres_schema(args.postgres, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
