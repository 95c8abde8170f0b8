"""Control and error shapes end to end (docs/flows.md): real control-plane and edge processes,
flows set up through the gRPC API, called over real HTTP. A route picks its path from the
request; a try_catch answers 200 with `vars.error` when a shape in `try` fails; notify's
notices show in GetRun; run_flow starts a child run, linked to its parent, that succeeds."""

from __future__ import annotations

import pytest

from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rns
from tests.e2e.conftest import Running, eventually, final_runs, get_run

pytestmark = pytest.mark.e2e

TRIGGER = {"id": "trigger", "type": "trigger"}


def flow(*shapes: dict) -> dict:
    return {"shapes": [TRIGGER, *shapes]}


ROUTE = flow(
    {
        "id": "by-kind",
        "type": "route",
        "paths": [
            {
                "condition": "meta.query.kind == 'order'",
                "shapes": [{"id": "order", "type": "map", "expression": "{path: 'order'}"}],
            },
            {
                "condition": "meta.query.kind == 'refund'",
                "shapes": [
                    {"id": "refund", "type": "map", "expression": "{path: 'refund'}"},
                    {"id": "refund-reply", "type": "callback", "status": 202, "unwrap": True},
                ],
            },
        ],
        "otherwise": [{"id": "other", "type": "map", "expression": "{path: 'other'}"}],
    },
    {"id": "reply", "type": "callback", "unwrap": True},
)

TRY_CATCH = flow(
    {
        "id": "guard",
        "type": "try_catch",
        "try": [
            {"id": "total", "type": "map", "expression": "abs(payload.amount)"},
            {"id": "ok-reply", "type": "callback", "unwrap": True},
        ],
        "catch": [
            {"id": "why", "type": "map", "expression": "{error: vars.error, input: payload}"},
            {"id": "error-reply", "type": "callback", "status": 200, "unwrap": True},
        ],
    }
)

NOTIFY = flow(
    {"id": "note", "type": "notify", "level": "warning", "message": "got {{ payload.n }}"},
    {"id": "reply", "type": "callback"},
)


@pytest.fixture(scope="module")
def world(running: Running):
    api = running.api
    api.company("ctl")
    callbacks = {}
    for name, definition in (("route", ROUTE), ("try", TRY_CATCH), ("notify", NOTIFY)):
        created, cb = api.flow_with_callback("ctl", name, definition)
        api.deploy(created.id)
        callbacks[name] = cb
    child, _ = api.flow_with_callback(
        "ctl",
        "child",
        flow(
            {"id": "seen", "type": "notify", "message": "{{ payload }} for {{ vars.who }}"},
            {"id": "shape", "type": "map", "expression": "{who: vars.who, n: payload}"},
        ),
    )
    api.deploy(child.id)
    undeployed, _ = api.flow_with_callback("ctl", "undeployed", flow())
    parent, cb = api.flow_with_callback(
        "ctl",
        "parent",
        flow(
            {"id": "n", "type": "map", "expression": "payload.n"},
            {"id": "start", "type": "run_flow", "flow": child.id, "variables": {"who": "'parent'"}},
            {
                "id": "refused",
                "type": "try_catch",
                "try": [{"id": "start-undeployed", "type": "run_flow", "flow": undeployed.id}],
                "catch": [{"id": "why", "type": "map", "expression": "vars.error"}],
            },
            {"id": "reply", "type": "callback", "unwrap": True},
        ),
    )
    api.deploy(parent.id)
    callbacks["parent"] = cb
    callbacks["child_flow"] = child
    # Every callback synced to the edge and routable: HEAD checks that without starting a run
    # (a GET of the parent would start a child the test then counts).
    for name in ("route", "try", "notify", "parent"):
        eventually(lambda cb=callbacks[name]: head(running, cb).status_code == 204)
    return callbacks


def head(running: Running, cb):
    params = {"patchworks_signature": cb.signature}
    return running.http.head(f"/api/v1/{cb.company}/{cb.id}", params=params)


def get(running: Running, cb, params: dict, body: bytes = b""):
    params = {"patchworks_signature": cb.signature, **params}
    path = f"/api/v1/{cb.company}/{cb.id}"
    if body:
        return running.http.post(path, params=params, content=body)
    return running.http.get(path, params=params)


def test_a_route_picks_its_path_from_the_request(running: Running, world):
    cb = world["route"]
    assert get(running, cb, {"kind": "order"}).json() == {"path": "order"}
    refund = get(running, cb, {"kind": "refund"})
    assert (refund.status_code, refund.json()) == (202, {"path": "refund"})
    other = get(running, cb, {"kind": "nothing"})
    assert (other.status_code, other.json()) == (200, {"path": "other"})
    run = get_run(running.api, other.headers["x-boomerang-run-id"])
    logged = [s.shape_id for s in run.shapes]
    assert logged == ["trigger", "by-kind", "other", "reply"]


def test_try_catch_answers_200_with_the_error(running: Running, world):
    cb = world["try"]
    good = get(running, cb, {}, b'{"amount": -5}')
    assert (good.status_code, good.json()) == (200, 5)
    bad = get(running, cb, {}, b'{"amount": "lots"}')
    assert bad.status_code == 200
    body = bad.json()
    assert body["input"] == {"amount": "lots"}
    assert body["error"]["shape_id"] == "total" and body["error"]["type"] == "expression"
    assert "abs()" in body["error"]["message"]
    run = final_runs(running.api, [bad.headers["x-boomerang-run-id"]], 10).popitem()[1]
    assert run.status == r.RUN_STATUS_SUCCEEDED
    statuses = {s.shape_id: s.status for s in run.shapes}
    assert statuses["total"] == "failed" and statuses["error-reply"] == "ok"


def test_notices_show_in_get_run(running: Running, world):
    answer = get(running, world["notify"], {}, b'{"n": 42}')
    run = final_runs(running.api, [answer.headers["x-boomerang-run-id"]], 10).popitem()[1]
    [notice] = run.notices
    assert (notice.shape_id, notice.level, notice.message) == ("note", "warning", "got 42")
    assert notice.time.seconds > 0


def test_run_flow_starts_a_linked_child_that_succeeds(running: Running, world):
    answer = get(running, world["parent"], {}, b'{"n": 7}')
    assert answer.status_code == 200
    refused = answer.json()
    assert refused["shape_id"] == "start-undeployed" and refused["type"] == "run_flow"
    assert "is not a deployed and enabled flow" in refused["message"]
    parent_id = answer.headers["x-boomerang-run-id"]
    api, child_flow = running.api, world["child_flow"]

    def children():
        listed = api.runs.ListRuns(
            rns.ListRunsRequest(company="ctl", flow_id=child_flow.id), metadata=api.md
        ).runs
        return [run for run in listed if run.parent_run_id == parent_id]

    eventually(lambda: len(children()) == 1, timeout=15)
    [child] = children()
    child = final_runs(api, [child.id], 15)[child.id]
    assert child.status == r.RUN_STATUS_SUCCEEDED
    assert child.parent_run_id == parent_id and child.environment_id == ""
    assert [n.message for n in child.notices] == ["7 for parent"]
    assert [s.shape_id for s in child.shapes] == ["seen", "shape"]
    assert get_run(api, parent_id).parent_run_id == ""
