"""Signature grace, HMAC-verified requests and CORS at a real edge, with the fake control plane
and fake runner (docs/callback-security.md): each check, its answer, and that no run starts."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import time

import pytest
from edge_fakes import (
    CB_OK,
    OTHER_SIGNATURE,
    RUN_ID,
    SIGNATURE,
    callback,
    callback_url,
    deployment,
    error,
    signed,
    snapshot,
)
from standardwebhooks.webhooks import Webhook

from boomerang.v1 import resources_pb2 as res
from edge import request_hmac

CB_GRACE = "01cbgrace00000000000000000"  # current OTHER_SIGNATURE, previous SIGNATURE in grace
CB_PW = "01cbpw00000000000000000000"  # Patchworks HMAC
CB_SW = "01cbsw00000000000000000000"  # Standard Webhooks HMAC
CB_CORS = "01cbcors000000000000000000"  # one allowed origin
CB_ANY = "01cbany0000000000000000000"  # any origin
CB_FUTURE = "01cbfuture0000000000000000"  # an HMAC scheme this edge does not know
PW_SECRET = b"patchworks-secret-0123456789"
SW_SECRET = "whsec_" + base64.b64encode(bytes(range(32))).decode()
ORIGIN = "https://app.example.com"


def _record(cb_id: str, **fields):
    record = callback(cb_id, deployment("v-ok"))
    for name, value in fields.items():
        if name == "previous_expires_ms":
            record.previous_signature_expire_time.FromMilliseconds(value)
        elif name == "allowed_origins":
            record.allowed_origins.extend(value)
        else:
            setattr(record, name, value)
    return record


def _grace(expires_ms: int):
    record = _record(
        CB_GRACE,
        previous_signature_digest=hashlib.sha256(SIGNATURE.encode()).digest(),
        previous_expires_ms=expires_ms,
    )
    del record.signature_digests[:]
    record.signature_digests.append(hashlib.sha256(OTHER_SIGNATURE.encode()).digest())
    return record


def _snapshot(grace_ms: int = 60_000):
    first = snapshot()
    first.callbacks.extend(
        [
            _grace(int(time.time() * 1000) + grace_ms),
            _record(CB_PW, hmac_scheme=res.HMAC_SCHEME_PATCHWORKS, hmac_secret=PW_SECRET),
            _record(
                CB_SW, hmac_scheme=res.HMAC_SCHEME_STANDARD_WEBHOOKS, hmac_secret=SW_SECRET.encode()
            ),
            _record(CB_CORS, allowed_origins=[ORIGIN]),
            _record(CB_ANY, allowed_origins=["*"]),
            _record(CB_FUTURE, hmac_scheme=7, hmac_secret=PW_SECRET),
        ]
    )
    return first


@pytest.fixture
async def secure_edge(start_edge, sync, runner):
    sync[0].first = _snapshot()
    edge = await start_edge(sync_target=sync[1], runner_target=runner[1])
    yield edge
    await edge.stop()


# --- rotation with grace ----------------------------------------------------------------------


async def test_previous_signature_works_until_its_grace_ends_by_the_edge_clock(
    start_edge, sync, runner
):
    sync[0].first = _snapshot(grace_ms=1_500)
    edge = await start_edge(sync_target=sync[1], runner_target=runner[1])
    ok_new = await edge.client.get(callback_url(CB_GRACE, patchworks_signature=OTHER_SIGNATURE))
    ok_old = await edge.client.get(signed(CB_GRACE))
    assert (ok_new.status_code, ok_old.status_code) == (201, 201)
    # No message from the control plane: the edge's own clock ends the grace.
    await asyncio.sleep(1.6)
    error(await edge.client.get(signed(CB_GRACE)), 403, "forbidden")
    assert (
        await edge.client.get(callback_url(CB_GRACE, patchworks_signature=OTHER_SIGNATURE))
    ).status_code == 201
    assert len(runner[0].starts) == 3


# --- Patchworks HMAC ------------------------------------------------------------------------


def _pw(body: bytes, secret: bytes = PW_SECRET) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


async def test_patchworks_hmac(secure_edge, runner):
    body = b'{"sku": 7}'
    url = signed(CB_PW)
    ok = await secure_edge.client.post(url, content=body, headers={"x-hmac-hash": _pw(body)})
    upper = await secure_edge.client.post(
        url, content=body, headers={"x-hmac-hash": _pw(body).upper()}
    )
    assert (ok.status_code, upper.status_code) == (201, 201)
    starts = len(runner[0].starts)
    error(await secure_edge.client.post(url, content=body), 401, "hmac_missing")
    for wrong in (_pw(body + b" "), _pw(body, b"another-secret-0123456"), "zz", "é" * 64):
        r = await secure_edge.client.post(
            url, content=body, headers={"x-hmac-hash": wrong.encode()}
        )
        error(r, 403, "hmac_invalid")
        assert PW_SECRET.decode() not in r.text and _pw(body) not in r.text
    assert len(runner[0].starts) == starts  # no run for any refusal


async def test_hmac_comes_after_the_signature(secure_edge, runner):
    # A wrong signature is the plain 403, whatever the HMAC: nothing tells the callback needs one.
    r = await secure_edge.client.post(callback_url(CB_PW, patchworks_signature=OTHER_SIGNATURE))
    error(r, 403, "forbidden")


# --- Standard Webhooks ----------------------------------------------------------------------


def _sw_headers(body: bytes, msg_id: str, ts: float | None = None, secret: str = SW_SECRET):
    ts = time.time() if ts is None else ts
    stamp = int(ts)
    signature = Webhook(secret).sign(
        msg_id, dt.datetime.fromtimestamp(stamp, dt.UTC), body.decode()
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(stamp), "webhook-signature": signature}


async def test_standard_webhooks(secure_edge, runner):
    body = b'{"event": "order.created"}'
    url = signed(CB_SW)
    ok = await secure_edge.client.post(url, content=body, headers=_sw_headers(body, "msg_1"))
    assert ok.status_code == 201 and ok.headers[RUN_ID]
    starts = len(runner[0].starts)

    replay = await secure_edge.client.post(url, content=body, headers=_sw_headers(body, "msg_1"))
    error(replay, 409, "hmac_replayed")
    error(await secure_edge.client.post(url, content=body), 401, "hmac_missing")
    partial = {"webhook-id": "msg_2", "webhook-timestamp": str(int(time.time()))}
    error(await secure_edge.client.post(url, content=body, headers=partial), 401, "hmac_missing")
    bad_cases = [
        _sw_headers(body + b"x", "msg_3"),  # signed another body
        _sw_headers(body, "msg_4", ts=time.time() - 301),  # too old
        _sw_headers(body, "msg_5", ts=time.time() + 301),  # too new
        _sw_headers(body, "msg_6", secret="whsec_" + base64.b64encode(bytes(32)).decode()),
        {**_sw_headers(body, "msg_7"), "webhook-timestamp": "nan"},
        {**_sw_headers(body, "msg_8"), "webhook-signature": "v1,###"},
        {**_sw_headers(body, "msg_9"), "webhook-signature": "garbage"},
    ]
    for headers in bad_cases:
        error(
            await secure_edge.client.post(url, content=body, headers=headers), 403, "hmac_invalid"
        )
    latin = b"caf\xe9"  # not UTF-8: the package verifies text only
    headers = {**_sw_headers(b"cafe", "msg_10")}
    r = await secure_edge.client.post(url, content=latin, headers=headers)
    error(r, 403, "hmac_invalid")
    assert len(runner[0].starts) == starts


async def test_a_webhook_id_is_not_spent_by_a_request_that_started_no_run(secure_edge, runner):
    body = b"{}"
    headers = _sw_headers(body, "msg_head")
    head = await secure_edge.client.head(signed(CB_SW), headers=_sw_headers(b"", "msg_head"))
    assert head.status_code == 204  # no run: the id stays usable
    error(
        await secure_edge.client.post(signed(CB_SW, "de"), content=body, headers=headers),
        503,
        "not_deployed",
    )
    ok = await secure_edge.client.post(signed(CB_SW), content=body, headers=headers)
    assert ok.status_code == 201
    error(
        await secure_edge.client.post(signed(CB_SW), content=body, headers=headers),
        409,
        "hmac_replayed",
    )


async def test_replay_memory_is_bounded_per_callback(secure_edge, runner, monkeypatch):
    monkeypatch.setattr(request_hmac, "MAX_IDS_PER_CALLBACK", 3)
    body = b"{}"
    for i in range(3):
        r = await secure_edge.client.post(
            signed(CB_SW), content=body, headers=_sw_headers(body, f"m{i}")
        )
        assert r.status_code == 201
    full = await secure_edge.client.post(
        signed(CB_SW), content=body, headers=_sw_headers(body, "m3")
    )
    error(full, 429, "rate_limited")
    assert 1 <= int(full.headers["retry-after"]) <= 2 * request_hmac.SW_TOLERANCE_S
    assert len(secure_edge.app.ctx.replays) == 3


def test_replay_memory_expires_and_has_a_total_bound(monkeypatch):
    monkeypatch.setattr(request_hmac, "MAX_IDS_TOTAL", 2)
    memory = request_hmac.ReplayMemory()
    now = 1_000_000.0
    memory.claim("a", "x", now, now)
    with pytest.raises(request_hmac.errors.HmacReplayed):
        memory.claim("a", "x", now, now + 10)
    memory.claim("b", "x", now, now)  # per callback: b's "x" is not a's
    with pytest.raises(request_hmac.errors.RateLimited) as full:
        memory.claim("c", "y", now, now + 1)
    assert full.value.headers["retry-after"] == str(request_hmac.SW_TOLERANCE_S - 1)
    # Once the tolerance window has passed, the ids are forgotten (and a replay of one is
    # refused by its timestamp instead).
    later = now + request_hmac.SW_TOLERANCE_S + 1
    memory.claim("c", "y", later, later)
    memory.claim("a", "x", later, later)
    assert len(memory) == 2


# --- CORS -----------------------------------------------------------------------------------


def _preflight_headers(origin: str = ORIGIN, method: str = "POST", headers: str = ""):
    out = {"origin": origin, "access-control-request-method": method}
    if headers:
        out["access-control-request-headers"] = headers
    return out


async def test_preflight_from_an_allowed_origin(secure_edge, runner):
    r = await secure_edge.client.options(
        callback_url(CB_CORS), headers=_preflight_headers(headers="Content-Type, X-HMAC-HASH")
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert r.headers["vary"] == "Origin"
    assert r.headers["access-control-allow-methods"] == "GET, POST, HEAD"
    assert r.headers["access-control-allow-headers"] == "content-type, x-hmac-hash"
    assert r.headers["access-control-max-age"] == "600"
    signed_ok = await secure_edge.client.options(signed(CB_ANY), headers=_preflight_headers())
    assert signed_ok.status_code == 204
    assert signed_ok.headers["access-control-allow-origin"] == ORIGIN
    assert runner[0].starts == []


@pytest.mark.parametrize(
    ("cb_id", "query", "preflight"),
    [
        (CB_CORS, {}, _preflight_headers(origin="https://evil.example.com")),
        (CB_OK, {}, _preflight_headers()),  # no origins allowed
        ("01cbunknown000000000000000", {}, _preflight_headers()),
        (CB_ANY, {"patchworks_signature": OTHER_SIGNATURE}, _preflight_headers()),
        (CB_CORS, {}, _preflight_headers(method="DELETE")),
        (CB_CORS, {}, _preflight_headers(headers="content-type, x-custom")),
    ],
)
async def test_preflight_refused(secure_edge, runner, cb_id, query, preflight):
    r = await secure_edge.client.options(callback_url(cb_id, **query), headers=preflight)
    error(r, 403, "origin_not_allowed")
    assert "access-control-allow-origin" not in r.headers
    assert runner[0].starts == []


async def test_options_without_origin_is_unchanged(secure_edge):
    r = await secure_edge.client.options(callback_url(CB_CORS))
    assert r.status_code == 204 and r.headers["allow"] == "GET, POST, HEAD, OPTIONS"
    assert "access-control-allow-origin" not in r.headers


EXPOSED = "x-boomerang-run-id, location, retry-after"


async def test_cors_headers_on_answers_and_errors(secure_edge, runner):
    origin = {"origin": ORIGIN}
    ok = await secure_edge.client.get(signed(CB_CORS), headers=origin)
    assert ok.status_code == 201
    assert ok.headers["access-control-allow-origin"] == ORIGIN
    assert ok.headers["access-control-expose-headers"] == EXPOSED
    assert "Origin" in ok.headers["vary"]
    # An error after authentication carries them too, so the browser can read it.
    wrong_env = await secure_edge.client.get(signed(CB_CORS, "de"), headers=origin)
    error(wrong_env, 503, "not_deployed")
    assert wrong_env.headers["access-control-allow-origin"] == ORIGIN
    any_origin = await secure_edge.client.get(signed(CB_ANY), headers={"origin": "https://x.io"})
    assert any_origin.headers["access-control-allow-origin"] == "*"
    # Not before authentication, and not for other origins or callbacks without origins.
    for r in (
        await secure_edge.client.get(
            callback_url(CB_CORS, patchworks_signature=OTHER_SIGNATURE), headers=origin
        ),
        await secure_edge.client.get(
            signed(CB_CORS), headers={"origin": "https://evil.example.com"}
        ),
        await secure_edge.client.get(signed(CB_OK), headers=origin),
    ):
        assert "access-control-allow-origin" not in r.headers


async def test_a_flow_cannot_set_cors_headers_itself(secure_edge, runner):
    # The fake runner's callback sets x-extra; CORS headers come only from the callback setting.
    r = await secure_edge.client.get(signed(CB_OK), headers={"origin": ORIGIN})
    assert r.status_code == 201 and "access-control-allow-origin" not in r.headers


def test_signature_checks_compare_the_same_number_of_digests(monkeypatch):
    """Unknown callback, no grace, grace: always COMPARED comparisons (constant time)."""
    from edge import signatures
    from edge.cache import CallbackRecord

    calls = []
    real = signatures.hmac.compare_digest
    monkeypatch.setattr(
        signatures.hmac, "compare_digest", lambda a, b: calls.append(1) or real(a, b)
    )
    now_ms = int(time.time() * 1000)
    records = [
        None,
        CallbackRecord.from_proto(callback(CB_OK, deployment("v-ok"))),
        CallbackRecord.from_proto(_grace(now_ms + 60_000)),
        CallbackRecord.from_proto(_grace(now_ms - 1)),
    ]
    for record in records:
        calls.clear()
        signatures.matches(SIGNATURE, signatures.accepted_digests(record))
        assert len(calls) == signatures.COMPARED
    grace, expired = records[2], records[3]
    assert signatures.matches(SIGNATURE, signatures.accepted_digests(grace))
    assert not signatures.matches(SIGNATURE, signatures.accepted_digests(expired))


async def test_an_unknown_hmac_scheme_fails_closed(secure_edge, runner):
    body = b"{}"
    r = await secure_edge.client.post(
        signed(CB_FUTURE), content=body, headers={"x-hmac-hash": _pw(body)}
    )
    error(r, 403, "hmac_invalid")
    assert runner[0].starts == []
