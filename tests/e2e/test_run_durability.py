"""Fault tests for the run, with real processes on SQLite and PostgreSQL: a runner killed
(SIGKILL) or stopped (SIGTERM) while runs are in their tails, or before their callback, and what
callers got counted against what was recorded. Zero lost, zero stuck, zero contradicting."""

from __future__ import annotations

import threading
import time

import pytest

from boomerang.v1 import resources_pb2 as r
from tests.e2e.conftest import (
    Answer,
    Api,
    call_concurrently,
    final_runs,
    mapping,
    shapes,
    start_stack,
)

pytestmark = pytest.mark.e2e

# A short lease, so a dead runner's work is taken up within seconds; room for every test run
# under the per-company limit (tested on its own in test_isolation.py).
FAST_LEASE = {
    "BOOMERANG_RUN_LEASE_S": "2",
    "BOOMERANG_DRAIN_GRACE_S": "3",
    "BOOMERANG_COMPANY_RUNS_IN_FLIGHT": "1000",
}

TAIL = shapes(
    mapping("{sku: payload.sku, n: `1`}"),
    {"id": "reply", "type": "callback"},
    {"id": "pause", "type": "wait", "seconds": 3},
    {"id": "after", "type": "map", "expression": "{done: `true`}"},
)
BEFORE = shapes(
    {"id": "pause", "type": "wait", "seconds": 3},
    {"id": "reply", "type": "callback"},
)


def _stack(tmp_path, database: str, runners: int = 1):
    stack = start_stack(
        tmp_path,
        separate_runner=True,
        runner_count=runners,
        database_url=database,
        extra_env=FAST_LEASE,
    )
    api = Api(stack.control_target)
    api.company("acme")
    return stack, api


def _deploy(api: Api, definition: dict):
    flow, cb = api.flow_with_callback("acme", "f", definition, timeout_ms=20_000)
    api.deploy(flow.id)
    return cb


def _requests(cb, n: int) -> list[tuple[str, dict]]:
    path = f"/api/v1/acme/{cb.id}"
    return [(path, {"patchworks_signature": cb.signature, "sku": f"S{i}"}) for i in range(n)]


def _call_in_background(stack, cb, n: int) -> tuple[threading.Thread, list[Answer]]:
    answers: list[Answer] = []
    thread = threading.Thread(
        target=lambda: answers.extend(call_concurrently(stack.edge_url, _requests(cb, n)))
    )
    thread.start()
    return thread, answers


def _assert_agree(api: Api, answers: list[Answer], timeout: float = 30) -> dict:
    """Every caller that got a run id has a final run recording exactly its status."""
    ids = [a.run_id for a in answers if a.run_id]
    runs = final_runs(api, ids, timeout)
    for a in answers:
        if a.run_id:
            assert runs[a.run_id].response_status == a.status, (a, runs[a.run_id])
    return runs


def _wait_ready(stack, cb) -> None:
    # The edge has the callback in its cache and a stream to the runner.
    from tests.e2e.conftest import eventually

    eventually(
        lambda: call_concurrently(stack.edge_url, _requests(cb, 1))[0].status == 200, timeout=15
    )


@pytest.mark.parametrize("kill", [True, False], ids=["sigkill", "sigterm"])
def test_answered_runs_finish_their_tails_after_the_runner_stops(tmp_path, stack_database, kill):
    stack, api = _stack(tmp_path, stack_database)
    try:
        cb = _deploy(api, TAIL)
        _wait_ready(stack, cb)
        answers = call_concurrently(stack.edge_url, _requests(cb, 20))
        assert [a.status for a in answers] == [200] * 20
        time.sleep(0.5)  # every run is now in its 3 s wait
        stopped = time.monotonic()
        stack.stop_runner(kill=kill)
        if not kill:
            assert time.monotonic() - stopped < 10, "a draining runner exits within 10 s"
        stack.start_runner()

        runs = _assert_agree(api, answers, timeout=30)
        for run in runs.values():
            assert run.status == r.RUN_STATUS_SUCCEEDED, run
            assert [s.shape_id for s in run.shapes][-2:] == ["pause", "after"], run
            assert run.attempts >= 2  # taken up again by the new runner
    finally:
        stack.stop()


def test_a_crash_before_the_callback_is_recorded_as_the_callers_502(tmp_path, stack_database):
    stack, api = _stack(tmp_path, stack_database)
    try:
        cb = _deploy(api, BEFORE)
        ok = _deploy(api, shapes(callback={}))
        _wait_ready(stack, ok)
        thread, answers = _call_in_background(stack, cb, 8)
        time.sleep(1.5)  # inside the wait, before the callback
        stack.stop_runner(kill=True)
        thread.join(30)
        assert [(a.status, a.error) for a in answers] == [(502, "run_lost")] * 8
        assert all(a.run_id for a in answers)
        stack.start_runner()
        runs = _assert_agree(api, answers, timeout=20)
        for run in runs.values():
            assert run.status == r.RUN_STATUS_FAILED and run.reason == r.RUN_REASON_RUN_LOST
    finally:
        stack.stop()


def test_a_runner_restart_with_nothing_in_flight_changes_nothing(tmp_path, stack_database):
    stack, api = _stack(tmp_path, stack_database)
    try:
        cb = _deploy(api, shapes(mapping("{ok: `true`}"), callback={}))
        _wait_ready(stack, cb)
        before = call_concurrently(stack.edge_url, _requests(cb, 5))
        runs_before = _assert_agree(api, before)
        stack.stop_runner()
        stack.start_runner()
        _wait_ready(stack, cb)
        after = call_concurrently(stack.edge_url, _requests(cb, 5))
        assert [a.status for a in after] == [200] * 5
        _assert_agree(api, after)
        again = final_runs(api, list(runs_before), timeout=5)
        assert {i: (x.status, x.response_status) for i, x in again.items()} == {
            i: (x.status, x.response_status) for i, x in runs_before.items()
        }
    finally:
        stack.stop()
