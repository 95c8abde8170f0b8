"""An idle stack keeps its streams: a callback answered after 150 s reaches its caller.

The edge pings its runner stream every 20 s while nothing else flows; a server that does not
accept pings that often answers GOAWAY `too_many_pings` after a few of them (about a minute),
which once cut such callers off with 502 run_lost while the run recorded 200. Real processes,
nothing else running: the slowest test here, and the only way to see the bug.
"""

from __future__ import annotations

import time

import httpx
import pytest

from tests.e2e.conftest import Api, eventually, get_run, shapes, start_stack

pytestmark = pytest.mark.e2e

WAIT_S = 150


def test_a_callback_after_150_s_on_an_idle_stack_reaches_its_caller(tmp_path):
    stack = start_stack(tmp_path)
    api = Api(stack.control_target)
    try:
        api.company("acme")
        quick_flow, quick = api.flow_with_callback("acme", "quick", shapes(callback={}))
        api.deploy(quick_flow.id)
        slow_flow, slow = api.flow_with_callback(
            "acme",
            "slow",
            shapes({"id": "w", "type": "wait", "seconds": WAIT_S}, callback={}),
            timeout_ms=(WAIT_S + 30) * 1000,
        )
        api.deploy(slow_flow.id)
        with httpx.Client(base_url=stack.edge_url, timeout=WAIT_S + 60) as http:
            eventually(
                lambda: (
                    http.get(
                        f"/api/v1/acme/{quick.id}", params={"patchworks_signature": quick.signature}
                    ).status_code
                    == 200
                ),
                timeout=15,
            )
            started = time.monotonic()
            response = http.get(
                f"/api/v1/acme/{slow.id}", params={"patchworks_signature": slow.signature}
            )
            took = time.monotonic() - started
        assert response.status_code == 200, response.text
        assert took >= WAIT_S
        run = get_run(api, response.headers["x-boomerang-run-id"])
        assert run.response_status == 200
    finally:
        api.channel.close()
        stack.stop()
