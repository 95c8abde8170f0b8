"""A run killed inside a path resumes there: with real processes on SQLite and PostgreSQL, a
runner is SIGKILLed while its runs wait inside a try path of a branch's second path (after the
callback); the next runner takes them up from their checkpoints and finishes them without
running a finished path, or a finished shape, again."""

from __future__ import annotations

import time

import pytest

from boomerang.v1 import resources_pb2 as r
from tests.e2e.conftest import call_concurrently, eventually, final_runs, shapes
from tests.e2e.test_run_durability import _deploy, _requests, _stack

pytestmark = pytest.mark.e2e

NESTED = shapes(
    {"id": "reply", "type": "callback"},
    {
        "id": "fan",
        "type": "branch",
        "paths": [
            {
                "shapes": [
                    {"id": "first", "type": "map", "expression": "{sku: payload.sku}"},
                    {"id": "noted", "type": "notify", "message": "first {{ payload.sku }}"},
                ]
            },
            {
                "shapes": [
                    {
                        "id": "guard",
                        "type": "try_catch",
                        "try": [
                            {"id": "pause", "type": "wait", "seconds": 3},
                            {"id": "fails", "type": "map", "expression": "abs(payload.sku)"},
                        ],
                        "catch": [{"id": "caught", "type": "map", "expression": "vars.error"}],
                    }
                ]
            },
        ],
    },
    {"id": "after", "type": "notify", "message": "{{ length(payloads) }} payloads"},
)

EXPECTED = [
    *("trigger", "reply", "fan", "first", "noted"),
    *("guard", "pause", "fails", "caught", "after"),
]


def test_a_run_killed_inside_a_path_resumes_there(tmp_path, stack_database):
    stack, api = _stack(tmp_path, stack_database)
    try:
        cb = _deploy(api, NESTED)
        eventually(
            lambda: call_concurrently(stack.edge_url, _requests(cb, 1))[0].status == 200,
            timeout=15,
        )
        answers = call_concurrently(stack.edge_url, _requests(cb, 10))
        assert [a.status for a in answers] == [200] * 10
        time.sleep(0.5)  # every run is now in the wait inside the try path
        stack.stop_runner(kill=True)
        stack.start_runner()
        runs = final_runs(api, [a.run_id for a in answers], timeout=30)
        for run in runs.values():
            assert run.status == r.RUN_STATUS_SUCCEEDED, run
            assert run.attempts >= 2  # taken up again by the new runner
            assert [s.shape_id for s in run.shapes] == EXPECTED, run
            assert [n.message for n in run.notices][-1] == "2 payloads"
            assert len(run.notices) == 2  # the first path's notice was not written twice
    finally:
        stack.stop()
