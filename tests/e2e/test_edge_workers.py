"""EDGE_WORKERS=2: two edge processes share the port (SO_REUSEPORT) under one supervisor. Each
syncs on its own (its own edge id and last-known-good file) and answers callbacks; a worker that
dies is started again while the other keeps answering; SIGTERM stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from boomerang.sdk import Client
from tests.e2e.conftest import ADMIN_KEY, Api, eventually, mapping, shapes, start_stack

pytestmark = pytest.mark.e2e


def _workers(supervisor: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{supervisor}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _get(url: str, params: dict) -> httpx.Response:
    # A new connection each time, so the kernel may hand it to either worker.
    with httpx.Client(timeout=10) as http:
        return http.get(url, params=params)


def test_two_edge_workers_share_the_port_and_one_restarts(tmp_path) -> None:
    stack = start_stack(tmp_path, edge_workers=2)
    api = Api(stack.control_target)
    try:
        assert stack.edge is not None
        workers = _workers(stack.edge.pid)
        assert len(workers) == 2
        api.company("acme")
        flow, cb = api.flow_with_callback(
            "acme", "f", shapes(mapping("{sku: payload.sku}"), callback={})
        )
        api.deploy(flow.id)
        url = f"{stack.edge_url}/api/v1/acme/{cb.id}"
        params = {"patchworks_signature": cb.signature, "sku": "A1"}

        # Both workers learn the callback by their own sync stream: 40 new connections in a
        # row answered 200 (a worker without it would answer 403).
        def all_answer() -> bool:
            return all(_get(url, params).status_code == 200 for _ in range(40))

        eventually(all_answer, timeout=20)
        assert _get(url, params).json() == [{"sku": "A1"}]

        # Each worker is its own edge for the control plane: `<edge id>-0` and `-1`.
        with Client(stack.control_target, ADMIN_KEY) as client:
            ids = {e.edge_id for e in client.list_edges() if e.connected}
        assert len(ids) == 2 and {i[-2:] for i in ids} == {"-0", "-1"}, ids
        assert len({i[:-2] for i in ids}) == 1, ids
        state = tmp_path / "state" / "edge"
        eventually(
            lambda: all((state / f"worker-{i}" / "lkg.binpb").exists() for i in (0, 1)),
            timeout=10,
        )

        # One worker dies: the other keeps answering, and the supervisor starts a new one.
        os.kill(workers[0], signal.SIGKILL)
        assert _get(url, params).status_code == 200
        # (The dead one stays a child, a zombie, until the supervisor reaps it.)
        eventually(
            lambda: (now := _workers(stack.edge.pid)) and len(now) == 2 and workers[0] not in now,
            timeout=15,
        )
        eventually(all_answer, timeout=20)

        # SIGTERM to the supervisor stops every worker, and it exits cleanly.
        current = _workers(stack.edge.pid)
        stack.edge.send_signal(signal.SIGTERM)
        assert stack.edge.wait(30) == 0
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in current) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in current)
    finally:
        api.channel.close()
        stack.stop()


def test_a_worker_that_cannot_start_stops_the_supervisor(tmp_path) -> None:
    stack = start_stack(tmp_path)  # the single edge holds the port without SO_REUSEPORT
    try:
        env = stack._env()
        env.update(EDGE_WORKERS="2", EDGE_STATE_DIR=str(tmp_path / "second"))
        second = subprocess.run(
            [sys.executable, "-m", "edge"], env=env, capture_output=True, text=True, timeout=60
        )
        assert second.returncode == 2
        assert "cannot listen on" in second.stderr
    finally:
        stack.stop()
