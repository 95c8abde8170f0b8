"""Several runners behind one edge, on PostgreSQL (and SQLite): one killed under load leaves its
tails to the other within the lease, with no restart; one stopped with SIGTERM drains without a
5xx to anyone. Every caller's answer is counted against the run it names."""

from __future__ import annotations

import threading
import time

import pytest

from boomerang.v1 import resources_pb2 as r
from tests.e2e.conftest import Answer, call_concurrently, final_runs, get_run
from tests.e2e.test_run_durability import (
    TAIL,
    _assert_agree,
    _deploy,
    _requests,
    _stack,
    _wait_ready,
)

pytestmark = pytest.mark.e2e


class _Load(threading.Thread):
    """Waves of concurrent callers until stopped; keeps every answer."""

    def __init__(self, stack, cb, wave: int = 8) -> None:
        super().__init__(daemon=True)
        self.stack, self.cb, self.wave = stack, cb, wave
        self.answers: list[Answer] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            self.answers.extend(
                call_concurrently(self.stack.edge_url, _requests(self.cb, self.wave))
            )


def test_a_killed_runner_leaves_its_tails_to_the_other(tmp_path, stack_database):
    stack, api = _stack(tmp_path, stack_database, runners=2)
    try:
        cb = _deploy(api, TAIL)
        _wait_ready(stack, cb)
        load = _Load(stack, cb)
        load.start()
        time.sleep(1.5)  # both runners hold tails in their 3 s wait
        killed_at = time.monotonic()
        stack.stop_runner(kill=True, index=0)
        time.sleep(1.0)
        load.stop.set()
        load.join(30)

        answers = load.answers
        statuses = {a.status for a in answers}
        # Runs on the killed runner that had not answered yet: 502 run_lost (their record
        # agrees) or retried on the other runner (200). Nothing else.
        assert statuses <= {200, 502}, statuses
        assert all(a.error == "run_lost" for a in answers if a.status == 502)
        runs = _assert_agree(api, answers, timeout=20)
        resumed = [x for x in runs.values() if x.attempts >= 2]
        assert resumed, "the killed runner held tails that the other one took up"
        for run in runs.values():
            if run.response_status == 200:
                assert run.status == r.RUN_STATUS_SUCCEEDED, run
                assert [s.shape_id for s in run.shapes][-1] == "after"
        took = time.monotonic() - killed_at
        # 3 s of waiting + a 2 s lease + claim interval; no runner was restarted.
        assert took < 15, took
    finally:
        stack.stop()


def test_a_draining_runner_sends_new_runs_to_the_other_without_errors(tmp_path, stack_database):
    stack, api = _stack(tmp_path, stack_database, runners=2)
    try:
        cb = _deploy(api, TAIL)
        _wait_ready(stack, cb)
        load = _Load(stack, cb)
        load.start()
        time.sleep(1.0)
        stopped = time.monotonic()
        stack.stop_runner(kill=False, index=0)
        took = time.monotonic() - stopped
        time.sleep(1.0)
        load.stop.set()
        load.join(30)

        assert took < 10, f"the runner took {took:.1f} s to drain"
        assert {a.status for a in load.answers} == {200}, [
            a for a in load.answers if a.status != 200
        ][:3]
        runs = final_runs(api, [a.run_id for a in load.answers], timeout=20)
        failed = [x for x in runs.values() if x.status != r.RUN_STATUS_SUCCEEDED]
        assert not failed, failed[:3]
        assert all(get_run(api, a.run_id).response_status == 200 for a in load.answers[:5])
    finally:
        stack.stop()
