"""A callback URL end to end: real control-plane and edge processes, real HTTP (docs/design.md
§1)."""

from __future__ import annotations

import time

import pytest

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rns
from tests.e2e.conftest import Running, eventually, mapping, shapes

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def world(running: Running):
    api = running.api
    api.company("acme")
    uk = api.environment("acme", "uk")
    ok_flow, ok = api.flow_with_callback(
        "acme", "ok", shapes(mapping("{env: 'default', sku: payload.sku}"), callback={})
    )
    api.deploy(ok_flow.id)
    api.update_draft(ok_flow.id, shapes(mapping("{env: 'uk', sku: payload.sku}"), callback={}))
    api.deploy(ok_flow.id, uk.id)
    nocb_flow, nocb = api.flow_with_callback("acme", "nocb", shapes(mapping("payload")))
    api.deploy(nocb_flow.id)
    fail_flow, fail = api.flow_with_callback(
        "acme", "fail", shapes(mapping("abs(payload.sku)"), callback={})
    )
    api.deploy(fail_flow.id)
    slow_flow, slow = api.flow_with_callback(
        "acme",
        "slow",
        shapes({"id": "wait", "type": "wait", "seconds": 1.0}, callback={}),
        timeout_ms=200,
    )
    api.deploy(slow_flow.id)
    _, undeployed = api.flow_with_callback("acme", "undeployed", shapes(callback={}))
    off_flow, off = api.flow_with_callback("acme", "off", shapes(callback={}))
    api.deploy(off_flow.id, disabled=True)
    world = {
        "uk": uk,
        "ok_flow": ok_flow,
        "ok": ok,
        "nocb": nocb,
        "fail": fail,
        "slow": slow,
        "undeployed": undeployed,
        "off": off,
    }
    # Everything reaches the edge through the change stream.
    eventually(lambda: get(running, ok).status_code == 200)
    eventually(lambda: get(running, off).status_code == 503)
    return world


def path(cb, prefix: str = "") -> str:
    return f"/api/v1/{cb.company}/{cb.id}" + (f"/{prefix}" if prefix else "")


def get(running: Running, cb, prefix: str = "", signature: str | None = None, **params):
    sig = cb.signature if signature is None else signature
    return running.http.get(path(cb, prefix), params={"patchworks_signature": sig, **params})


def test_query_signature(running, world):
    response = get(running, world["ok"], sku="A1")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [{"env": "default", "sku": "A1"}]
    assert len(response.headers["x-boomerang-run-id"]) == 26


def test_header_signature_and_post_body(running, world):
    cb = world["ok"]
    response = running.http.post(
        path(cb), headers={"patchworks-signature": cb.signature}, json={"sku": "B2"}
    )
    assert response.status_code == 200
    assert response.json() == [{"env": "default", "sku": "B2"}]


def test_missing_signature_is_401(running, world):
    response = running.http.get(path(world["ok"]))
    assert response.status_code == 401
    assert response.json() == {
        "error": "missing_signature",
        "message": response.json()["message"],
        "run_id": None,
    }


def test_wrong_signature_and_unknown_callback_are_the_same_403(running, world):
    wrong = get(running, world["ok"], signature="a" * 52)
    unknown = running.http.get(
        f"/api/v1/acme/{'0' * 26}", params={"patchworks_signature": world["ok"].signature}
    )
    assert wrong.status_code == unknown.status_code == 403
    assert wrong.json() == unknown.json()
    assert world["ok"].signature not in wrong.text


def test_unknown_prefix_is_404(running, world):
    response = get(running, world["ok"], prefix="nope")
    assert response.status_code == 404 and response.json()["error"] == "unknown_environment"


def test_ve_prefix_selects_the_ve_version(running, world):
    response = get(running, world["ok"], prefix="uk", sku="C3")
    assert response.status_code == 200
    assert response.json() == [{"env": "uk", "sku": "C3"}]


def test_not_deployed_and_disabled_are_503(running, world):
    assert get(running, world["undeployed"]).status_code == 503
    assert get(running, world["undeployed"]).json()["error"] == "not_deployed"
    assert get(running, world["off"]).json()["error"] == "disabled"
    # Deployed in the default environment only: the VE answers 503 too.
    assert get(running, world["nocb"], prefix="uk").status_code == 503


def test_flow_without_callback_is_502(running, world):
    response = get(running, world["nocb"])
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "no_callback" and len(body["run_id"]) == 26


def test_failed_flow_is_502_with_run_id(running, world):
    response = get(running, world["fail"], sku="x")
    assert response.status_code == 502
    body = response.json()
    assert body["error"] == "flow_failed"
    assert response.headers["x-boomerang-run-id"] == body["run_id"]


def test_slow_flow_is_504_and_its_run_completes(running, world):
    response = get(running, world["slow"])
    assert response.status_code == 504
    run_id = response.json()["run_id"]
    assert len(run_id) == 26

    def finished():
        run = running.api.runs.GetRun(rns.GetRunRequest(id=run_id), metadata=running.api.md).run
        return run.status == r.RUN_STATUS_SUCCEEDED and run.response_status == 504

    eventually(finished, timeout=5)


def test_body_over_the_limit_is_413(running, world):
    cb = world["ok"]
    response = running.http.post(
        path(cb),
        headers={"patchworks-signature": cb.signature},
        content=b"x" * (1024 * 1024 + 1),
    )
    assert response.status_code == 413 and response.json()["error"] == "body_too_large"


def test_content_type_change_is_reflected(running, world):
    cb = world["nocb"]  # any callback; use a fresh one to keep others unchanged
    api = running.api
    flow_id = cb.flow_id
    extra = api.callbacks.CreateCallback(
        cbs.CreateCallbackRequest(flow_id=world["ok"].flow_id), metadata=api.md
    ).callback
    eventually(lambda: get(running, extra).status_code == 200)
    api.callbacks.UpdateCallback(
        cbs.UpdateCallbackRequest(
            id=extra.id,
            content_type=cbs.CONTENT_TYPE_CUSTOM,
            custom_content_type="application/vnd.acme+json",
            update_mask=["content_type"],
        ),
        metadata=api.md,
    )
    eventually(
        lambda: get(running, extra).headers.get("content-type") == "application/vnd.acme+json"
    )
    assert flow_id  # the other callbacks kept their type
    assert get(running, world["ok"]).headers["content-type"] == "application/json"


def test_regenerate_rejects_the_old_signature_within_a_second(running, world):
    api = running.api
    cb = api.callbacks.CreateCallback(
        cbs.CreateCallbackRequest(flow_id=world["ok"].flow_id), metadata=api.md
    ).callback
    eventually(lambda: get(running, cb).status_code == 200)
    new = api.callbacks.RegenerateSignature(
        cbs.RegenerateSignatureRequest(id=cb.id), metadata=api.md
    ).callback
    took = eventually(lambda: get(running, cb).status_code == 403, timeout=1.0)
    assert took < 1.0
    assert get(running, new).status_code == 200


def test_disable_and_enable_reach_the_edge(running, world):
    api, cb = running.api, world["ok"]
    api.flows.SetDeploymentEnabled(
        fs.SetDeploymentEnabledRequest(flow_id=cb.flow_id, enabled=False), metadata=api.md
    )
    eventually(lambda: get(running, cb).status_code == 503)
    api.flows.SetDeploymentEnabled(
        fs.SetDeploymentEnabledRequest(flow_id=cb.flow_id, enabled=True), metadata=api.md
    )
    eventually(lambda: get(running, cb).status_code == 200)


def test_options_and_unknown_routes(running, world):
    options = running.http.options(path(world["ok"]))
    assert options.status_code == 204
    assert "POST" in options.headers["allow"]
    missing = running.http.get("/nowhere")
    assert missing.status_code == 404 and "Traceback" not in missing.text


def test_logs_never_hold_a_signature(running, world):
    get(running, world["ok"])
    edge_log = running.stack.log_dir / "edge.log"
    eventually(lambda: f"GET /api/v1/acme/{world['ok'].id} 200" in edge_log.read_text())
    logs = edge_log.read_text()
    logs += (running.stack.log_dir / "control-plane.log").read_text()
    for name in ("ok", "fail", "slow", "off"):
        assert world[name].signature not in logs
    assert "patchworks_signature" not in logs


def test_rate_limit_is_429_with_retry_after_and_can_be_lifted(running, world):
    api = running.api
    cb = api.callbacks.CreateCallback(
        cbs.CreateCallbackRequest(flow_id=world["ok"].flow_id, rate_limit_per_minute=60),
        metadata=api.md,
    ).callback
    assert cb.rate_limit_per_minute == 60
    eventually(lambda: get(running, cb).status_code in (200, 429))
    time.sleep(1.1)  # a full bucket: one request's worth
    assert get(running, cb).status_code == 200
    limited = get(running, cb)
    assert limited.status_code == 429
    assert limited.headers["retry-after"] == "1"
    assert limited.json() == {
        "error": "rate_limited",
        "message": limited.json()["message"],
        "run_id": None,
    }
    assert get(running, world["ok"]).status_code == 200  # other callbacks are not limited

    api.callbacks.UpdateCallback(
        cbs.UpdateCallbackRequest(
            id=cb.id, rate_limit_per_minute=0, update_mask=["rate_limit_per_minute"]
        ),
        metadata=api.md,
    )
    eventually(lambda: all(get(running, cb).status_code == 200 for _ in range(5)))
