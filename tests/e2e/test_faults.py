"""Fault tests with real processes: kill the control plane, the runner, the edge, and assert
what callers see and that the edge converges afterwards (docs/design.md §3, edge cache)."""

from __future__ import annotations

import httpx
import pytest

from boomerang.v1 import callback_service_pb2 as cbs
from tests.e2e.conftest import Api, eventually, mapping, shapes, start_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def split(tmp_path):
    """Control plane, runner and edge as three processes, one callback deployed."""
    stack = start_stack(tmp_path, separate_runner=True)
    api = Api(stack.control_target)
    api.company("acme")
    flow, cb = api.flow_with_callback("acme", "f", shapes(mapping("{ok: `true`}"), callback={}))
    api.deploy(flow.id)
    http = httpx.Client(base_url=stack.edge_url, timeout=10)
    yield stack, api, http, cb
    http.close()
    api.channel.close()
    stack.stop()


def call(http: httpx.Client, cb, signature: str | None = None) -> httpx.Response:
    return http.get(
        f"/api/v1/acme/{cb.id}", params={"patchworks_signature": signature or cb.signature}
    )


def test_edge_serves_from_cache_and_last_known_good_while_the_control_plane_is_down(split):
    stack, _, http, cb = split
    eventually(lambda: call(http, cb).status_code == 200)

    stack.stop_control_plane(kill=True)
    assert call(http, cb).status_code == 200  # cached; the runner is its own process
    assert call(http, cb, "b" * 52).status_code == 403

    # Restart the edge with the control plane still down: it boots from last-known-good.
    stack.stop_edge()
    stack.start_edge()
    assert http.get("/readyz").status_code == 200
    response = call(http, cb)
    assert response.status_code == 200 and response.json() == [{"ok": True}]

    # Control plane back: the edge reconnects and converges on a change made now.
    stack.start_control_plane()
    fresh = Api(stack.control_target)
    new = fresh.callbacks.RegenerateSignature(
        cbs.RegenerateSignatureRequest(id=cb.id), metadata=fresh.md
    ).callback
    eventually(lambda: call(http, cb).status_code == 403, timeout=10)
    assert call(http, new).status_code == 200
    fresh.channel.close()


def test_runner_down_is_503_and_recovers(split):
    stack, _, http, cb = split
    eventually(lambda: call(http, cb).status_code == 200)
    stack.stop_runner(kill=True)
    eventually(lambda: call(http, cb).status_code == 503, timeout=5)
    assert call(http, cb).json()["error"] == "runner_unavailable"
    stack.start_runner()
    eventually(lambda: call(http, cb).status_code == 200, timeout=10)


def test_edge_killed_and_restarted_resumes(split):
    stack, api, http, cb = split
    eventually(lambda: call(http, cb).status_code == 200)
    stack.stop_edge(kill=True)
    api.callbacks.RegenerateSignature(cbs.RegenerateSignatureRequest(id=cb.id), metadata=api.md)
    stack.start_edge()
    # Whatever it booted from, the first sync message is authoritative: the old one is gone.
    eventually(lambda: call(http, cb).status_code == 403, timeout=5)


def test_no_state_and_no_control_plane_is_not_ready(tmp_path):
    from boomerang.local import LocalStack
    from tests.e2e.conftest import ADMIN_KEY

    stack = LocalStack(state_dir=tmp_path / "s", admin_key=ADMIN_KEY, log_dir=tmp_path / "logs")
    try:
        stack.start_edge(ready=False)
        with httpx.Client(base_url=stack.edge_url) as http:
            assert http.get("/readyz").status_code == 503
            response = http.get(f"/api/v1/acme/{'0' * 26}", params={"patchworks_signature": "x"})
            assert response.status_code == 503 and response.json()["error"] == "not_ready"
    finally:
        stack.stop()
