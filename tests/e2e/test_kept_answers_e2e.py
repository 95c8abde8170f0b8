"""Kept answers end to end (docs/answers.md): real control-plane and edge processes, real HTTP.
Idempotency-Key replays (byte for byte, across an edge restart and from a second edge), 422 and
409, `Prefer: respond-async` with its status URL, async_after_ms and webhook mode."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from boomerang.local import free_port
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rns
from tests.e2e.conftest import (
    Api,
    Running,
    eventually,
    final_runs,
    get_run,
    mapping,
    shapes,
    start_stack,
)

pytestmark = pytest.mark.e2e

RUN_ID = "x-boomerang-run-id"


def wait(seconds: float) -> dict:
    return {"id": "wait", "type": "wait", "seconds": seconds}


@pytest.fixture(scope="module")
def world(running: Running):
    api = running.api
    api.company("kept")
    echo = shapes(mapping("{sku: payload.sku}"), callback={"status": 201})
    ok_flow, ok = api.flow_with_callback("kept", "ok", echo)
    api.deploy(ok_flow.id)
    fail_flow, fail = api.flow_with_callback(
        "kept", "fail", shapes(mapping("abs(payload.sku)"), callback={})
    )
    api.deploy(fail_flow.id)
    slow_flow, slow = api.flow_with_callback(
        "kept",
        "slow",
        shapes(wait(1.5), mapping("{sku: payload.sku}"), callback={}),
        timeout_ms=10_000,
    )
    api.deploy(slow_flow.id)
    world = {"ok": ok, "fail": fail, "slow": slow}
    eventually(lambda: post(running, ok, b'{"sku": "probe"}').status_code == 201)
    eventually(lambda: post(running, fail, b'{"sku": "x"}').status_code == 502)
    return world


def path(cb) -> str:
    return f"/api/v1/{cb.company}/{cb.id}?patchworks_signature={cb.signature}"


def post(running: Running, cb, body: bytes, **headers: str) -> httpx.Response:
    return running.http.post(path(cb), content=body, headers=headers)


def raw(base_url: str, cb, body: bytes, key: str, *extra: str) -> bytes:
    """One POST on a connection of its own; everything the edge sends back, to the byte."""
    url = httpx.URL(base_url)
    lines = [
        f"POST {path(cb)} HTTP/1.1",
        f"host: {url.host}",
        "connection: close",
        "content-type: application/json",
        f"content-length: {len(body)}",
        f"idempotency-key: {key}",
        *extra,
    ]
    with socket.create_connection((url.host, url.port), timeout=15) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def head_and_body(response: bytes) -> tuple[str, bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    return head.decode(), body


def runs_of(running: Running, cb) -> list:
    page = running.api.runs.ListRuns(
        rns.ListRunsRequest(company=cb.company, flow_id=cb.flow_id, page_size=100),
        metadata=running.api.md,
    )
    return list(page.runs)


@dataclass
class SecondEdge:
    url: str
    process: object


@pytest.fixture
def second_edge(running: Running, tmp_path) -> Iterator[SecondEdge]:
    """Another `python -m edge` of the same installation, with a state dir of its own."""
    stack = running.stack
    port = free_port()
    process = stack._spawn(
        "edge-2",
        ["-m", "edge"],
        {"EDGE_PORT": str(port), "EDGE_STATE_DIR": str(tmp_path / "edge-2"), "EDGE_ID": "edge-2"},
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False

    try:
        eventually(ready, timeout=30)
        yield SecondEdge(url, process)
    finally:
        stack._stop(process, 15)


# --- Idempotency-Key -------------------------------------------------------------------------


def test_the_same_key_twice_is_one_run_and_the_same_bytes_everywhere(
    running: Running, world, second_edge: SecondEdge
):
    cb = world["ok"]
    body = b'{"sku": "K-1"}'
    first = raw(running.stack.edge_url, cb, body, '"order-1"')
    head, payload = head_and_body(first)
    assert head.startswith("HTTP/1.1 201 ") and payload == b'[{"sku":"K-1"}]'
    run_id = next(line.split(": ")[1] for line in head.split("\r\n") if line.startswith(RUN_ID))

    assert raw(running.stack.edge_url, cb, body, "order-1") == first  # bare or quoted: one key
    assert raw(second_edge.url, cb, body, '"order-1"') == first  # another edge

    running.stack.stop_edge()
    running.stack.start_edge()
    assert raw(running.stack.edge_url, cb, body, '"order-1"') == first  # a restarted edge

    keyed = [run for run in runs_of(running, cb) if run.id == run_id]
    assert len(keyed) == 1
    assert len(runs_of(running, cb)) == 2  # the probe and this one: no run for the repeats
    assert final_runs(running.api, [run_id], 10)[run_id].status == r.RUN_STATUS_SUCCEEDED


def test_a_failed_run_is_replayed_with_the_same_error(running: Running, world):
    cb = world["fail"]
    first = raw(running.stack.edge_url, cb, b'{"sku": "x"}', "fail-1")
    assert first.startswith(b"HTTP/1.1 502 ") and b'"error":"flow_failed"' in first
    assert raw(running.stack.edge_url, cb, b'{"sku": "x"}', "fail-1") == first


def test_the_same_key_for_another_request_is_422(running: Running, world):
    cb = world["ok"]
    assert post(running, cb, b'{"sku": "A"}', **{"idempotency-key": "k-422"}).status_code == 201
    other = post(running, cb, b'{"sku": "B"}', **{"idempotency-key": "k-422"})
    assert other.status_code == 422
    assert other.json()["error"] == "idempotency_key_reused" and RUN_ID not in other.headers


def test_a_repeat_while_the_first_runs_is_409_then_its_answer(running: Running, world):
    cb = world["slow"]
    results: list[bytes] = []
    first = threading.Thread(
        target=lambda: results.append(raw(running.stack.edge_url, cb, b'{"sku": 1}', "k-409"))
    )
    before = len(runs_of(running, cb))
    first.start()
    # Its run exists (it claimed the key with it) and waits 1.5 s before its callback.
    eventually(lambda: len(runs_of(running, cb)) > before)
    busy = post(running, cb, b'{"sku": 1}', **{"idempotency-key": "k-409"})
    first.join(15)

    (answer,) = results
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert busy.status_code == 409 and busy.json()["error"] == "idempotency_in_progress"
    assert busy.headers["retry-after"] == "1"
    assert f"{RUN_ID}: {busy.headers[RUN_ID]}".encode() in answer  # the first run's id
    assert raw(running.stack.edge_url, cb, b'{"sku": 1}', "k-409") == answer


def test_a_malformed_key_is_400_and_runs_nothing(running: Running, world):
    cb = world["ok"]
    before = len(runs_of(running, cb))
    response = post(running, cb, b"{}", **{"idempotency-key": '"not closed'})
    assert response.status_code == 400 and response.json()["error"] == "invalid_idempotency_key"
    assert len(runs_of(running, cb)) == before


# --- respond-async ---------------------------------------------------------------------------


def poll(base_url: str, location: str, timeout: float = 15) -> httpx.Response:
    """Follows a status URL as a client would: while 202, wait Retry-After and ask again."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, timeout=10) as http:
        while True:
            response = http.get(location)
            if response.status_code != 202 or time.monotonic() > deadline:
                return response
            time.sleep(min(float(response.headers["retry-after"]), 0.2))


def test_respond_async_is_202_then_the_status_url_gives_the_callback_answer(
    running: Running, world, second_edge: SecondEdge
):
    cb = world["slow"]
    began = time.monotonic()
    accepted = post(running, cb, b'{"sku": "AS-1"}', prefer="respond-async")
    assert time.monotonic() - began < 1.0  # not the 1.5 s the flow takes
    assert accepted.status_code == 202
    assert accepted.headers["preference-applied"] == "respond-async"
    assert accepted.headers["retry-after"] == "1"
    run_id = accepted.headers[RUN_ID]
    location = accepted.headers["location"]
    assert location.startswith(f"/api/v1/kept/runs/{run_id}") and len(location) == 18 + 78
    assert accepted.json() == {"run_id": run_id, "status_url": location}

    pending = running.http.get(location)
    assert pending.status_code == 202 and pending.headers["location"] == location

    done = poll(running.stack.edge_url, location)
    assert done.status_code == 200 and done.json() == [{"sku": "AS-1"}]
    assert done.headers["content-type"] == "application/json"
    assert done.headers[RUN_ID] == run_id
    # Any edge answers it, and the same way.
    again = httpx.get(second_edge.url + location, timeout=10)
    assert (again.status_code, again.content) == (200, done.content)
    run = final_runs(running.api, [run_id], 10)[run_id]
    assert run.status == r.RUN_STATUS_SUCCEEDED and run.response_status == 202


def test_a_repeated_key_of_an_async_request_gets_the_same_202(running: Running, world):
    cb = world["slow"]
    first = raw(running.stack.edge_url, cb, b'{"sku": "AK"}', "ak-1", "prefer: respond-async")
    assert first.startswith(b"HTTP/1.1 202 ") and b"preference-applied: respond-async" in first
    again = raw(running.stack.edge_url, cb, b'{"sku": "AK"}', "ak-1", "prefer: respond-async")
    assert again == first  # the same status URL, no second run
    location = next(
        line.split(": ")[1] for line in first.decode().split("\r\n") if line.startswith("location")
    )
    assert poll(running.stack.edge_url, location).json() == [{"sku": "AK"}]


def test_a_status_url_of_another_company_or_a_made_up_one_is_404(running: Running, world):
    accepted = post(running, world["ok"], b'{"sku": "AS-2"}', prefer="respond-async")
    token = accepted.headers["location"].rsplit("/", 1)[1]
    assert poll(running.stack.edge_url, accepted.headers["location"]).status_code == 201
    for location in (
        f"/api/v1/acme/runs/{token}",
        f"/api/v1/kept/runs/{token[:26]}{'a' * 52}",
        "/api/v1/kept/runs/nope",
    ):
        response = running.http.get(location)
        assert response.status_code == 404 and response.json()["error"] == "run_not_found"


# --- callback settings: async_after_ms and webhook mode --------------------------------------


def update(running: Running, cb, **fields):
    return running.api.callbacks.UpdateCallback(
        cbs.UpdateCallbackRequest(id=cb.id, update_mask=list(fields), **fields),
        metadata=running.api.md,
    ).callback


def test_async_after_ms_turns_a_long_wait_into_202_then_the_answer(running: Running, world):
    api = running.api
    flow, cb = api.flow_with_callback(
        "kept",
        "after",
        shapes(wait(3.0), mapping("{sku: payload.sku}"), callback={}),
        timeout_ms=10_000,
    )
    api.deploy(flow.id)
    update(running, cb, async_after_ms=300)
    eventually(lambda: post(running, cb, b'{"sku": "warm"}').status_code == 202, 15)

    began = time.monotonic()
    accepted = post(running, cb, b'{"sku": "AA-1"}')
    waited = time.monotonic() - began
    assert accepted.status_code == 202, accepted.text
    assert 0.3 <= waited < 2.5  # after async_after_ms, well before the flow's 3 s
    assert "preference-applied" not in accepted.headers
    run_id = accepted.headers[RUN_ID]
    done = poll(running.stack.edge_url, accepted.headers["location"])
    assert done.status_code == 200 and done.json() == [{"sku": "AA-1"}]
    assert done.headers[RUN_ID] == run_id
    run = final_runs(api, [run_id], 10)[run_id]
    assert run.status == r.RUN_STATUS_SUCCEEDED and run.response_status == 202

    # With a key, a repeat gets the same 202 (the same status URL), not a second run.
    first = raw(running.stack.edge_url, cb, b'{"sku": "AA-2"}', "aa-2")
    assert first.startswith(b"HTTP/1.1 202 ") and b"preference-applied" not in first
    assert raw(running.stack.edge_url, cb, b'{"sku": "AA-2"}', "aa-2") == first


def test_webhook_mode_answers_202_and_the_run_finishes_afterwards(running: Running, world):
    api = running.api
    flow, cb = api.flow_with_callback(
        "kept", "hook", shapes(wait(2.0), mapping("{sku: payload.sku}"), callback={})
    )
    api.deploy(flow.id)
    update(running, cb, mode=r.CALLBACK_MODE_WEBHOOK)

    def webhook_answer() -> bool:
        response = post(running, cb, b'{"sku": "warm"}')
        return response.status_code == 202 and "run_id" in response.json()

    eventually(webhook_answer, 15)
    began = time.monotonic()
    accepted = post(running, cb, b'{"sku": "W-1"}', prefer="respond-async")
    assert time.monotonic() - began < 1.5  # queued, not run
    assert accepted.status_code == 202
    run_id = accepted.headers[RUN_ID]
    assert accepted.json() == {"run_id": run_id}  # webhook mode wins: no status URL
    assert "location" not in accepted.headers
    assert get_run(api, run_id).status != r.RUN_STATUS_SUCCEEDED  # still waiting its 2 s
    run = final_runs(api, [run_id], 10)[run_id]
    assert run.status == r.RUN_STATUS_SUCCEEDED and run.response_status == 202


def test_keys_and_status_urls_on_each_backend(tmp_path, stack_database):
    """The same through a stack of its own on SQLite and on PostgreSQL: a replay byte for byte,
    422, and an async answer fetched from its status URL."""
    stack = start_stack(tmp_path, database_url=stack_database)
    api = Api(stack.control_target)
    try:
        api.company("db")
        flow, cb = api.flow_with_callback(
            "db", "echo", shapes(mapping("{sku: payload.sku}"), callback={})
        )
        api.deploy(flow.id)
        with httpx.Client(base_url=stack.edge_url, timeout=10) as http:
            eventually(lambda: http.post(path(cb), content=b"{}").status_code == 200, 15)
            first = raw(stack.edge_url, cb, b'{"sku": "D"}', "db-1")
            assert first.startswith(b"HTTP/1.1 200 ")
            assert raw(stack.edge_url, cb, b'{"sku": "D"}', "db-1") == first
            other = http.post(
                path(cb), content=b'{"sku": "E"}', headers={"idempotency-key": "db-1"}
            )
            assert other.status_code == 422
            accepted = http.post(
                path(cb), content=b'{"sku": "F"}', headers={"prefer": "respond-async"}
            )
            assert accepted.status_code == 202
            done = poll(stack.edge_url, accepted.headers["location"])
            assert done.status_code == 200 and done.json() == [{"sku": "F"}]
    finally:
        api.channel.close()
        stack.stop()
