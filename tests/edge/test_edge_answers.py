"""Kept answers at the edge, over real HTTP against a real edge and the fake runner: Idempotency-Key
replays, `Prefer: respond-async`, webhook mode, async_after_ms and status URLs (docs/answers.md)."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from edge_fakes import (
    CB_FAIL,
    CB_OK,
    CB_WAIT,
    COMPANY,
    OTHER_COMPANY,
    RUN_ID,
    SIGNATURE,
    callback,
    deployment,
    error,
    signed,
    snapshot,
    status_token,
    wait_for,
)

from boomerang.v1 import resources_pb2
from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge import status_urls

# Callbacks for this module only (added to the fake control plane's snapshot).
CB_HOOK = "01cbhook000000000000000000"  # webhook mode, v-ok
CB_HOOK_SLOW = "01cbhookslow00000000000000"  # webhook mode, v-slow
CB_AFTER = "01cbafter00000000000000000"  # v-slow, detached after 200 ms
CB_AFTER_OK = "01cbafterok000000000000000"  # v-ok, detach time never reached
CB_AFTER_SHORT = "01cbaftershort000000000000"  # v-slow, 100 ms then times out at 600 ms
ASYNC_AFTER_MS = 200

ASYNC = {"prefer": "respond-async"}


@pytest.fixture
async def edge(start_edge, sync, runner):
    fake_sync, sync_target = sync
    first = snapshot()
    first.callbacks.extend(
        [
            callback(CB_HOOK, deployment("v-ok"), mode=resources_pb2.CALLBACK_MODE_WEBHOOK),
            callback(CB_HOOK_SLOW, deployment("v-slow"), mode=resources_pb2.CALLBACK_MODE_WEBHOOK),
            callback(CB_AFTER, deployment("v-slow"), async_after_ms=ASYNC_AFTER_MS),
            callback(CB_AFTER_OK, deployment("v-ok"), async_after_ms=ASYNC_AFTER_MS),
            callback(CB_AFTER_SHORT, deployment("v-slow"), timeout_ms=600, async_after_ms=100),
        ]
    )
    fake_sync.first = first
    edge = await start_edge(sync_target=sync_target, runner_target=runner[1])
    yield edge
    await edge.stop()


async def raw(edge, request: str) -> bytes:
    """Everything the edge sends for one request on its own connection: status line, every
    header in order, body."""
    reader, writer = await asyncio.open_connection(edge.server.host, edge.server.port)
    try:
        writer.write(request.encode())
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10)  # `connection: close`: read to EOF
    finally:
        writer.close()


def request_bytes(
    path: str, key: str | None, *, method: str = "POST", body: str = '{"sku": 1}', extra=""
) -> str:
    key_line = f"idempotency-key: {key}\r\n" if key is not None else ""
    return (
        f"{method} {path} HTTP/1.1\r\nhost: edge\r\nconnection: close\r\n{key_line}{extra}"
        f"content-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n{body}"
    )


def parse(raw_response: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = raw_response.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


# --- Idempotency-Key -------------------------------------------------------------------------


async def test_a_repeated_key_gets_the_first_answer_byte_for_byte_and_no_new_run(edge, runner):
    fake, _ = runner
    first = await raw(edge, request_bytes(signed(CB_OK), '"order-1"'))
    again = await raw(edge, request_bytes(signed(CB_OK), "order-1"))  # bare or quoted: one key

    assert again == first  # status line, every header in order, body
    status, headers, body = parse(first)
    assert status == 201 and headers[RUN_ID] == "run-1" and b"sku" in body
    assert "date" not in headers  # nothing that changes between two answers
    assert fake.run_ids == {1: "run-1"}  # the repeat started no run
    one, two = fake.starts
    assert one.idempotency_key == two.idempotency_key == "order-1"
    assert one.request_fingerprint == two.request_fingerprint and len(one.request_fingerprint) == 32
    assert one.content_type == "application/vnd.acme+json"
    assert one.answer_mode == runner_pb2.ANSWER_MODE_UNSPECIFIED


async def test_a_repeated_key_of_a_failed_run_gets_the_same_error(edge, runner):
    first = await raw(edge, request_bytes(signed(CB_FAIL), "k"))
    again = await raw(edge, request_bytes(signed(CB_FAIL), "k"))
    assert again == first
    status, headers, body = parse(first)
    assert status == 502 and b'"error":"flow_failed"' in body and headers[RUN_ID] == "run-1"


async def test_keys_work_on_get_and_are_per_request(edge, runner):
    fake, _ = runner
    a = await edge.client.get(signed(CB_OK, sku="1"), headers={"idempotency-key": "g"})
    b = await edge.client.get(signed(CB_OK, sku="1"), headers={"idempotency-key": "g"})
    assert a.status_code == b.status_code == 201 and a.content == b.content
    assert a.headers[RUN_ID] == b.headers[RUN_ID] == "run-1"
    # The signature may move from the query to the header: the same request.
    c = await edge.client.get(
        f"/api/v1/{COMPANY}/{CB_OK}?sku=1",
        headers={"idempotency-key": "g", "patchworks-signature": SIGNATURE},
    )
    assert c.headers[RUN_ID] == "run-1"
    assert len(fake.run_ids) == 1


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", signed(CB_OK), '{"sku": 2}'),  # another body
        ("GET", signed(CB_OK), ""),  # another method
        ("POST", signed(CB_OK, extra="1"), '{"sku": 1}'),  # another query
        ("POST", signed(CB_OK, "uk"), '{"sku": 1}'),  # another environment
    ],
)
async def test_a_key_reused_for_another_request_is_422(edge, runner, method, path, body):
    fake, _ = runner
    await raw(edge, request_bytes(signed(CB_OK), "k1"))
    response = await edge.client.request(
        method, path, content=body, headers={"idempotency-key": "k1"}
    )
    error(response, 422, "idempotency_key_reused")
    assert len(fake.run_ids) == 1


async def test_a_repeat_while_the_first_runs_is_409_with_its_run_id(edge, runner):
    fake, _ = runner
    first = asyncio.create_task(edge.client.get(signed(CB_WAIT), headers={"idempotency-key": "w"}))
    await wait_for(lambda: fake.run_ids)
    response = await edge.client.get(signed(CB_WAIT), headers={"idempotency-key": "w"})
    error(response, 409, "idempotency_in_progress", run_id="run-1")
    assert response.headers["retry-after"] == "1"
    first.cancel()


@pytest.mark.parametrize(
    "header",
    ["", "a b", '"unterminated', "k" * 256, "a,b", "caf\u00e9"],
)
async def test_a_malformed_key_is_400_and_starts_nothing(edge, runner, header):
    fake, _ = runner
    response = await edge.client.post(
        signed(CB_OK), content=b"{}", headers=[("idempotency-key", header.encode("utf-8"))]
    )
    error(response, 400, "invalid_idempotency_key")
    assert fake.starts == []


async def test_two_key_headers_are_400(edge, runner):
    response = await edge.client.post(
        signed(CB_OK), headers=[("idempotency-key", "a"), ("idempotency-key", "a")]
    )
    error(response, 400, "invalid_idempotency_key")
    assert runner[0].starts == []


async def test_head_with_a_key_starts_nothing(edge, runner):
    response = await edge.client.head(signed(CB_OK), headers={"idempotency-key": "bad key"})
    assert response.status_code == 204
    assert runner[0].starts == []


async def test_answers_quota_is_429_with_retry_after(edge, runner):
    fake, _ = runner
    fake.answers_full = True
    response = await edge.client.get(signed(CB_OK), headers={"idempotency-key": "q"})
    error(response, 429, "answers_quota")
    assert response.headers["retry-after"] == "60"
    error(await edge.client.get(signed(CB_OK), headers=ASYNC), 429, "answers_quota")


async def test_without_key_or_async_the_start_is_as_before(edge, runner):
    fake, _ = runner
    response = await edge.client.get(signed(CB_OK), headers={"prefer": "return=minimal"})
    assert response.status_code == 201
    (start,) = fake.starts
    assert not start.idempotency_key and not start.request_fingerprint
    assert start.answer_mode == runner_pb2.ANSWER_MODE_UNSPECIFIED
    assert fake.detaches == []


# --- Prefer: respond-async and status URLs ---------------------------------------------------


async def test_respond_async_is_202_with_a_status_url_that_gives_the_callback_answer(edge, runner):
    fake, _ = runner
    response = await edge.client.post(signed(CB_OK), content=b"hi", headers=ASYNC)

    token = status_token("run-1")
    location = f"/api/v1/{COMPANY}/runs/{token}"
    assert response.status_code == 202
    assert response.headers["location"] == location
    assert response.headers["retry-after"] == "1"
    assert response.headers["preference-applied"] == "respond-async"
    assert response.headers[RUN_ID] == "run-1"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"run_id": "run-1", "status_url": location}
    assert fake.starts[0].answer_mode == runner_pb2.ANSWER_MODE_ASYNC
    await wait_for(lambda: fake.cancel_statuses == {1: 202})

    answer = await edge.client.get(location)
    assert answer.status_code == 201
    assert answer.headers["content-type"] == "application/vnd.acme+json"
    assert answer.headers["x-extra"] == "yes" and answer.headers[RUN_ID] == "run-1"
    assert answer.json() == [{"version": "v-ok", "body": "hi"}]
    assert "x-evil" not in answer.headers  # the same filter as a live answer
    # Also from the request's path, and with HEAD (no body, same headers).
    head = await edge.client.head(location)
    assert head.status_code == 201 and head.content == b""
    assert head.headers["content-length"] == answer.headers["content-length"]
    assert [(r.company, r.status_token) for r in fake.lookups] == [(COMPANY, token)] * 2


async def test_a_status_url_answers_202_until_the_run_answers(edge, runner):
    fake, _ = runner
    response = await edge.client.get(signed(CB_WAIT), headers=ASYNC)
    location = response.headers["location"]

    pending = await edge.client.get(location)
    assert pending.status_code == 202
    assert pending.headers["location"] == location and pending.headers["retry-after"] == "1"
    assert "preference-applied" not in pending.headers
    assert pending.json() == {"run_id": "run-1", "status_url": location}

    fake.finish("run-1", runner_pb2.RunCallback(status_code=200, body=b'{"done":true}'))
    done = await edge.client.get(location)
    assert done.status_code == 200 and done.json() == {"done": True}
    assert done.headers[RUN_ID] == "run-1"


async def test_a_status_url_gives_the_error_a_run_ended_with(edge, runner):
    response = await edge.client.get(signed(CB_FAIL), headers=ASYNC)
    assert response.status_code == 202
    error(await edge.client.get(response.headers["location"]), 502, "flow_failed", "run-1")


async def test_a_malformed_token_is_404_without_a_lookup(edge, runner):
    fake, _ = runner
    good = status_token("run-1")
    for token in ("x", good[:-1], good + "a", good.upper(), good[:26] + "1" * 52):
        error(await edge.client.get(f"/api/v1/{COMPANY}/runs/{token}"), 404, "run_not_found")
    for company in ("ACME", "a" * 64, "-acme", "ac%20me"):
        error(await edge.client.get(f"/api/v1/{company}/runs/{good}"), 404, "run_not_found")
    assert fake.lookups == []


async def test_an_unknown_token_or_another_companys_is_404(edge, runner):
    fake, _ = runner
    response = await edge.client.get(signed(CB_OK), headers=ASYNC)
    token = response.headers["location"].rsplit("/", 1)[1]
    error(await edge.client.get(f"/api/v1/{OTHER_COMPANY}/runs/{token}"), 404, "run_not_found")
    unknown = status_token("run-99")
    error(await edge.client.get(f"/api/v1/{COMPANY}/runs/{unknown}"), 404, "run_not_found")
    assert len(fake.lookups) == 2


async def test_a_status_url_is_503_when_no_runner_answers(edge, runner):
    fake, _ = runner
    fake.lookups_fail = True
    response = await edge.client.get(f"/api/v1/{COMPANY}/runs/{status_token('run-1')}")
    error(response, 503, "runner_unavailable")


def frozen_clock(edge) -> None:
    """Status lookups' buckets on a clock that stands still: no refill during the test."""
    edge.app.ctx.status_limiter = status_urls.StatusLimiter(clock=lambda: 1000.0)


async def test_status_lookups_are_rate_limited_per_company(edge, runner):
    fake, _ = runner
    frozen_clock(edge)
    token = status_token("run-1")
    burst = status_urls.LOOKUPS_PER_COMPANY_PER_S
    for _ in range(burst):
        r = await edge.client.get(f"/api/v1/{COMPANY}/runs/{token}")
        assert r.status_code == 404
    limited = await edge.client.get(f"/api/v1/{COMPANY}/runs/{token}")
    error(limited, 429, "rate_limited")
    assert int(limited.headers["retry-after"]) >= 1
    assert len(fake.lookups) == burst
    # Another company's callers are not held back by this one's.
    other = await edge.client.get(f"/api/v1/{OTHER_COMPANY}/runs/{token}")
    assert other.status_code == 404 and len(fake.lookups) == burst + 1


async def test_status_lookups_are_limited_per_edge_whatever_the_company(edge, runner):
    fake, _ = runner
    frozen_clock(edge)
    token = status_token("run-1")
    statuses = [
        (await edge.client.get(f"/api/v1/c{i}/runs/{token}")).status_code
        for i in range(status_urls.LOOKUPS_PER_EDGE_PER_S + 3)
    ]
    assert statuses == [404] * status_urls.LOOKUPS_PER_EDGE_PER_S + [429] * 3
    assert len(fake.lookups) == status_urls.LOOKUPS_PER_EDGE_PER_S


async def test_the_access_log_never_shows_a_status_token(edge, runner, caplog):
    caplog.set_level(logging.INFO, logger="edge.access")
    response = await edge.client.get(signed(CB_OK), headers=ASYNC)
    location = response.headers["location"]
    assert (await edge.client.get(location)).status_code == 201
    token = location.rsplit("/", 1)[1]
    await wait_for(lambda: f"runs/{token[:26]}..." in caplog.text)
    assert token not in caplog.text and token[26:] not in caplog.text


async def test_a_repeated_key_of_an_async_request_gets_the_same_202(edge, runner):
    fake, _ = runner
    headers = "prefer: respond-async\r\n"
    first = await raw(edge, request_bytes(signed(CB_OK), "a1", extra=headers))
    again = await raw(edge, request_bytes(signed(CB_OK), "a1", extra=headers))
    assert again == first
    status, response_headers, _ = parse(first)
    assert status == 202 and response_headers["preference-applied"] == "respond-async"
    assert len(fake.run_ids) == 1


# --- webhook mode ----------------------------------------------------------------------------


async def test_webhook_mode_is_202_with_the_run_id_once_queued(edge, runner):
    fake, _ = runner
    response = await edge.client.post(signed(CB_HOOK), content=b"{}")
    assert response.status_code == 202
    assert response.json() == {"run_id": "run-1"}
    assert response.headers[RUN_ID] == "run-1"
    assert "location" not in response.headers and "preference-applied" not in response.headers
    assert fake.starts[0].answer_mode == runner_pb2.ANSWER_MODE_WEBHOOK
    await wait_for(lambda: fake.cancel_statuses == {1: 202})


async def test_webhook_mode_wins_over_respond_async(edge, runner):
    fake, _ = runner
    response = await edge.client.get(signed(CB_HOOK_SLOW), headers=ASYNC)
    assert response.status_code == 202 and response.json() == {"run_id": "run-1"}
    assert "location" not in response.headers and "preference-applied" not in response.headers
    assert fake.starts[0].answer_mode == runner_pb2.ANSWER_MODE_WEBHOOK


async def test_webhook_mode_errors_before_the_run_are_as_usual(edge, runner):
    fake, _ = runner
    fake.draining = True  # the only runner refuses: no run
    error(await edge.client.get(signed(CB_HOOK)), 503, "runner_unavailable")


# --- async_after_ms --------------------------------------------------------------------------


async def test_async_after_ms_turns_a_long_wait_into_202_then_the_answer(edge, runner):
    fake, _ = runner
    began = time.monotonic()
    response = await edge.client.get(signed(CB_AFTER))
    waited = time.monotonic() - began

    assert ASYNC_AFTER_MS / 1000 <= waited < 2.0
    assert response.status_code == 202
    token = status_token("run-1")
    assert response.headers["location"] == f"/api/v1/{COMPANY}/runs/{token}"
    assert response.headers["retry-after"] == "1" and response.headers[RUN_ID] == "run-1"
    assert "preference-applied" not in response.headers  # the caller did not ask
    assert fake.detaches == [1] and fake.cancels == []  # `detached` ends the run_ref
    assert fake.starts[0].answer_mode == runner_pb2.ANSWER_MODE_UNSPECIFIED

    assert (await edge.client.get(response.headers["location"])).status_code == 202
    fake.finish("run-1", runner_pb2.RunCallback(status_code=200, body=b"[1]"))
    done = await edge.client.get(response.headers["location"])
    assert done.status_code == 200 and done.json() == [1]


async def test_a_run_answering_before_async_after_ms_is_answered_as_usual(edge, runner):
    fake, _ = runner
    response = await edge.client.get(signed(CB_AFTER_OK))
    assert response.status_code == 201 and response.headers[RUN_ID] == "run-1"
    await asyncio.sleep(ASYNC_AFTER_MS / 1000 + 0.1)
    assert fake.detaches == []


async def test_a_detach_the_runner_cannot_keep_waits_for_the_timeout(edge, runner):
    fake, _ = runner
    fake.answers_full = True  # no `detached` comes: the caller keeps waiting, then 504
    began = time.monotonic()
    response = await edge.client.get(signed(CB_AFTER_SHORT))
    assert 0.55 <= time.monotonic() - began < 3
    error(response, 504, "timeout", run_id="run-1")
    assert fake.detaches == [1]
    await wait_for(lambda: fake.cancel_statuses == {1: 504})


async def test_respond_async_skips_the_detach(edge, runner):
    fake, _ = runner
    response = await edge.client.get(signed(CB_AFTER), headers=ASYNC)
    assert response.status_code == 202
    assert response.headers["preference-applied"] == "respond-async"
    await asyncio.sleep(ASYNC_AFTER_MS / 1000 + 0.1)
    assert fake.detaches == []
    assert fake.starts[0].answer_mode == runner_pb2.ANSWER_MODE_ASYNC


async def test_the_status_route_does_not_shadow_callbacks(edge):
    # A VE-prefixed callback URL has the same number of segments as a status URL.
    response = await edge.client.get(signed(CB_OK, "uk"))
    assert response.status_code == 201 and response.json()[0]["version"] == "v-ok-uk"
