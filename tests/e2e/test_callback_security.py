"""Signature rotation with grace, HMAC-verified requests and CORS end to end: real control
plane, runner and edge processes, real HTTP (docs/callback-security.md)."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import time

import httpx
import pytest
from google.protobuf import duration_pb2
from standardwebhooks.webhooks import Webhook

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import resources_pb2 as r
from tests.e2e.conftest import Api, eventually, mapping, shapes, start_stack

pytestmark = pytest.mark.e2e

PW_SECRET = "patchworks-e2e-secret-0123456789"
SW_SECRET = "whsec_" + base64.b64encode(bytes(range(100, 132))).decode()
ORIGIN = "https://shop.example.com"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """Control plane, runner and edge as three processes: the control plane can be stopped
    while the edge and runner go on."""
    running = start_stack(tmp_path_factory.mktemp("security"), separate_runner=True)
    api = Api(running.control_target)
    api.company("acme")
    http = httpx.Client(base_url=running.edge_url, timeout=10)
    yield running, api, http
    http.close()
    api.channel.close()
    running.stop()


def _deployed(api: Api, name: str):
    flow, cb = api.flow_with_callback("acme", name, shapes(mapping("{ok: `true`}"), callback={}))
    api.deploy(flow.id)
    return cb


def _get(http: httpx.Client, cb, signature: str | None = None, **kw) -> httpx.Response:
    url = f"/api/v1/acme/{cb.id}"
    return http.get(url, params={"patchworks_signature": signature or cb.signature}, **kw)


def _post(http: httpx.Client, cb, body: bytes, headers: dict) -> httpx.Response:
    url = f"/api/v1/acme/{cb.id}"
    return http.post(
        url, params={"patchworks_signature": cb.signature}, content=body, headers=headers
    )


def _regenerate(api: Api, cb, grace_ms: int):
    grace = duration_pb2.Duration()
    grace.FromMilliseconds(grace_ms)
    response = api.callbacks.RegenerateSignature(
        cbs.RegenerateSignatureRequest(id=cb.id, grace_period=grace, wait_for_edges_ms=10_000),
        metadata=api.md,
    )
    assert list(response.pending_edge_ids) == []  # the edge has applied it
    return response.callback


def _wait_until(expire_time) -> None:
    left = expire_time.ToDatetime(dt.UTC) - dt.datetime.now(dt.UTC)
    time.sleep(max(0.0, left.total_seconds()) + 0.2)


def test_rotation_with_grace_also_with_the_control_plane_down(stack):
    running, api, http = stack
    cb = _deployed(api, "rotate")
    eventually(lambda: _get(http, cb).status_code == 200)

    # Control plane up: the old signature works until the grace ends, then 403.
    new = _regenerate(api, cb, 2_000)
    assert (_get(http, cb).status_code, _get(http, new).status_code) == (200, 200)
    _wait_until(new.previous_signature_expire_time)
    assert _get(http, cb).status_code == 403
    assert _get(http, new).status_code == 200

    # Control plane stopped during the grace: the edge ends it from its cache, by its clock.
    newer = _regenerate(api, new, 3_000)
    running.stop_control_plane(kill=True)
    try:
        assert _get(http, new).status_code == 200
        _wait_until(newer.previous_signature_expire_time)
        refused = _get(http, new)
        assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
        assert _get(http, newer).status_code == 200
    finally:
        running.start_control_plane()  # for the module's other tests


def _pw(body: bytes) -> str:
    return hmac.new(PW_SECRET.encode(), body, hashlib.sha256).hexdigest()


def _sw(body: bytes, msg_id: str, secret: str = SW_SECRET) -> dict[str, str]:
    stamp = int(time.time())
    when = dt.datetime.fromtimestamp(stamp, dt.UTC)
    signature = Webhook(secret).sign(msg_id, when, body.decode())
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


def _update(api: Api, cb, **fields) -> r.Callback:
    mask = ["hmac" if f.startswith("hmac") else f for f in fields]
    return api.callbacks.UpdateCallback(
        cbs.UpdateCallbackRequest(id=cb.id, update_mask=sorted(set(mask)), **fields),
        metadata=api.md,
    ).callback


def _reason(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"] if response.status_code >= 400 else ""


def test_patchworks_hmac(stack):
    _, api, http = stack
    cb = _deployed(api, "pw")
    _update(api, cb, hmac_scheme=r.HMAC_SCHEME_PATCHWORKS, hmac_secret=PW_SECRET)
    body = b'{"order": 1}'
    eventually(lambda: _reason(_post(http, cb, body, {})) == (401, "hmac_missing"))
    assert _post(http, cb, body, {"x-hmac-hash": _pw(body)}).status_code == 200
    assert _reason(_post(http, cb, body, {"x-hmac-hash": _pw(body + b"!")})) == (
        403,
        "hmac_invalid",
    )


def test_standard_webhooks_hmac(stack):
    _, api, http = stack
    cb = _deployed(api, "sw")
    _update(api, cb, hmac_scheme=r.HMAC_SCHEME_STANDARD_WEBHOOKS, hmac_secret=SW_SECRET)
    body = b'{"type": "order.created"}'
    eventually(lambda: _reason(_post(http, cb, body, {})) == (401, "hmac_missing"))
    headers = _sw(body, "msg_e2e_1")
    ok = _post(http, cb, body, headers)
    assert ok.status_code == 200 and ok.json() == [{"ok": True}]
    assert _reason(_post(http, cb, body, headers)) == (409, "hmac_replayed")
    wrong = _sw(body, "msg_e2e_2", "whsec_" + base64.b64encode(bytes(32)).decode())
    assert _reason(_post(http, cb, body, wrong)) == (403, "hmac_invalid")


def test_cors(stack):
    _, api, http = stack
    cb = _deployed(api, "cors")
    _update(api, cb, allowed_origins=[ORIGIN])
    url = f"/api/v1/acme/{cb.id}"
    asked = {
        "origin": ORIGIN,
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    eventually(lambda: http.options(url, headers=asked).status_code == 204)
    allowed = http.options(url, headers=asked)
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert allowed.headers["access-control-allow-headers"] == "content-type"
    assert allowed.headers["access-control-allow-methods"] == "GET, POST, HEAD"
    refused = http.options(url, headers={**asked, "origin": "https://evil.example.com"})
    assert _reason(refused) == (403, "origin_not_allowed")
    assert "access-control-allow-origin" not in refused.headers

    real = _get(http, cb, headers={"origin": ORIGIN})
    assert real.status_code == 200 and real.headers["x-boomerang-run-id"]
    assert real.headers["access-control-allow-origin"] == ORIGIN
    assert real.headers["access-control-expose-headers"] == (
        "x-boomerang-run-id, location, retry-after"
    )
    assert "Origin" in real.headers["vary"]
