"""Connectors end to end, real processes: a callback answering with data a connector fetched
from an upstream on loopback, and a try_catch answering 200 with the failure when the upstream
is down; the egress rule refusing loopback unless the runner's
BOOMERANG_EGRESS_ALLOW opens it; a runner killed during a call, the resumed run calling again
with the same Idempotency-Key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from boomerang.local import free_port
from boomerang.v1 import resources_pb2 as r
from tests.e2e.conftest import Api, eventually, final_runs, get_run, shapes, start_stack
from tests.outbound.upstream import Reply, Upstream

pytestmark = pytest.mark.e2e

FAST_LEASE = {
    "BOOMERANG_RUN_LEASE_S": "2",
    "BOOMERANG_DRAIN_GRACE_S": "3",
    "BOOMERANG_COMPANY_RUNS_IN_FLIGHT": "1000",
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


def _deploy(api: Api, definition: dict, name: str = "f"):
    flow, cb = api.flow_with_callback("acme", name, definition, timeout_ms=20_000)
    api.deploy(flow.id)
    return cb


def _get(stack, cb, **params) -> httpx.Response:
    url = f"{stack.edge_url}/api/v1/acme/{cb.id}"
    with httpx.Client(timeout=30) as http:
        return http.get(url, params={"patchworks_signature": cb.signature, **params})


def _ready(stack, cb, **params) -> httpx.Response:
    """The first answer that is not 503 (the edge still syncing or connecting)."""
    answers: list[httpx.Response] = []

    def check() -> bool:
        answers.append(_get(stack, cb, **params))
        return answers[-1].status_code != 503

    eventually(check, timeout=20, interval=0.2)
    return answers[-1]


def stock_flow(url: str) -> dict:
    return shapes(
        {
            "id": "stock",
            "type": "connector",
            "url": f"{url}/stock",
            "query": {"sku": "payload.sku"},
            "headers": {"X-Caller": "meta.company"},
            "retries": 1,
        },
        {"id": "shape", "type": "map", "expression": "{sku: payload.sku, qty: payload.qty}"},
        callback={"unwrap": True},
    )


def guarded_flow(url: str) -> dict:
    """The stock call inside a try; its catch answers the caller with the failure."""
    call = stock_flow(url)["shapes"][1]
    return shapes(
        {
            "id": "guard",
            "type": "try_catch",
            "try": [call],
            "catch": [{"id": "oops", "type": "map", "expression": "vars.error"}],
        },
        callback={"unwrap": True},
    )


def stock(seen) -> Reply:
    sku = dict(seen.query).get("sku", "")
    return Reply(200, {"sku": sku, "qty": 42, "warehouse": "north"})


def test_a_callback_answers_with_data_fetched_by_a_connector(tmp_path, upstream):
    upstream.route("/stock", stock)
    stack = start_stack(tmp_path, extra_env={"BOOMERANG_EGRESS_ALLOW": "127.0.0.1/32"})
    api = Api(stack.control_target)
    try:
        api.company("acme")
        cb = _deploy(api, stock_flow(upstream.url))
        response = _ready(stack, cb, sku="XYZ-9")
        assert response.status_code == 200, response.text
        assert response.json() == {"sku": "XYZ-9", "qty": 42}
        run_id = response.headers["x-boomerang-run-id"]
        seen = [s for s in upstream.requests("/stock") if dict(s.query).get("sku") == "XYZ-9"]
        assert seen[-1].headers["idempotency-key"] == f"{run_id}.stock"
        assert seen[-1].headers["x-caller"] == "acme"

        # The upstream down (a port nothing listens on): the try_catch answers 200 with the
        # failure, as vars.error.
        down = _deploy(api, guarded_flow(f"http://127.0.0.1:{free_port()}"), name="guarded")
        response = _ready(stack, down, sku="XYZ-9")
        assert response.status_code == 200, response.text
        error = response.json()
        assert (error["shape_id"], error["type"]) == ("stock", "connection"), error
        assert "127.0.0.1" in error["message"]
    finally:
        api.channel.close()
        stack.stop()


def test_loopback_is_refused_unless_the_runner_allows_it(tmp_path, upstream):
    upstream.route("/stock", stock)
    before = len(upstream.requests("/stock"))
    stack = start_stack(tmp_path)  # no BOOMERANG_EGRESS_ALLOW
    api = Api(stack.control_target)
    try:
        api.company("acme")
        cb = _deploy(api, stock_flow(upstream.url))
        response = _ready(stack, cb, sku="A")
        assert response.status_code == 502, response.text
        assert response.json()["error"] == "flow_failed"
        run = get_run(api, response.headers["x-boomerang-run-id"])
        assert run.status == r.RUN_STATUS_FAILED
        assert "egress refused: 127.0.0.1 is a loopback address" in run.error, run.error
        assert "BOOMERANG_EGRESS_ALLOW" in run.error
        assert len(upstream.requests("/stock")) == before  # nothing reached it
    finally:
        api.channel.close()
        stack.stop()


def test_a_resumed_call_repeats_its_idempotency_key(tmp_path, stack_database, upstream):
    """The connector runs after the callback; the runner is killed while the upstream holds
    the request; the next runner resumes the run and calls again, with the same key."""
    upstream.route("/slow", Reply(200, {"done": True}, delay_s=3.0))
    stack = start_stack(
        tmp_path,
        separate_runner=True,
        database_url=stack_database,
        extra_env={**FAST_LEASE, "BOOMERANG_EGRESS_ALLOW": "127.0.0.1/32"},
    )
    api = Api(stack.control_target)
    try:
        api.company("acme")
        cb = _deploy(
            api,
            shapes(
                {"id": "reply", "type": "callback"},
                {"id": "sync", "type": "connector", "url": f"{upstream.url}/slow", "timeout_s": 10},
            ),
        )
        calls_before = len(upstream.requests("/slow"))
        response = _ready(stack, cb)
        assert response.status_code == 200
        run_id = response.headers["x-boomerang-run-id"]
        eventually(lambda: len(upstream.requests("/slow")) > calls_before, timeout=10)
        stack.stop_runner(kill=True)  # while the upstream holds the first call
        stack.start_runner()
        run = final_runs(api, [run_id], timeout=30)[run_id]
        assert run.status == r.RUN_STATUS_SUCCEEDED, run
        assert run.attempts >= 2
        keys = [s.headers["idempotency-key"] for s in upstream.requests("/slow")[calls_before:]]
        assert keys == [f"{run_id}.sync", f"{run_id}.sync"], keys
    finally:
        api.channel.close()
        stack.stop()
