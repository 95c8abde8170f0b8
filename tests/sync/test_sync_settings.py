"""The callback settings of issue 8 travel to edges (both backends): grace periods, the HMAC
scheme and secret, allowed origins, mode and async_after_ms, in snapshots and in changes."""

from __future__ import annotations

import asyncio
import base64
import hashlib

from google.protobuf import duration_pb2

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import resources_pb2 as res
from tests.api.helpers import Stubs
from tests.sync.test_sync_protocol import EdgeStream, _setup

WHSEC = "whsec_" + base64.b64encode(bytes(range(24))).decode()


def _sha(signature: str) -> bytes:
    return hashlib.sha256(signature.encode()).digest()


async def test_settings_travel_in_changes_and_snapshots(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    _, _, _, cb = await _setup(s, md)
    edge = EdgeStream(s, md)
    await edge.hello()
    first = await edge.next()
    [record] = first.callbacks
    assert (record.hmac_scheme, record.hmac_secret, list(record.allowed_origins)) == (0, b"", [])
    assert (record.mode, record.async_after_ms, record.previous_signature_digest) == (0, 0, b"")
    assert not record.HasField("previous_signature_expire_time")
    await edge.ack(first)

    await s.callbacks.UpdateCallback(
        cbs.UpdateCallbackRequest(
            id=cb.id,
            update_mask=["hmac", "allowed_origins", "mode", "async_after_ms"],
            hmac_scheme=res.HMAC_SCHEME_STANDARD_WEBHOOKS,
            hmac_secret=WHSEC,
            allowed_origins=["https://app.example.com"],
            mode=res.CALLBACK_MODE_WEBHOOK,
            async_after_ms=1_500,
        ),
        metadata=md,
    )
    change = await edge.next()
    [record] = change.callbacks
    assert (record.hmac_scheme, record.hmac_secret) == (
        res.HMAC_SCHEME_STANDARD_WEBHOOKS,
        WHSEC.encode(),
    )
    assert list(record.allowed_origins) == ["https://app.example.com"]
    assert (record.mode, record.async_after_ms) == (res.CALLBACK_MODE_WEBHOOK, 1_500)
    await edge.ack(change)

    grace = duration_pb2.Duration(seconds=3600)
    regenerated = (
        await s.callbacks.RegenerateSignature(
            cbs.RegenerateSignatureRequest(id=cb.id, grace_period=grace), metadata=md
        )
    ).callback
    change = await edge.next()
    [record] = change.callbacks
    assert list(record.signature_digests) == [_sha(regenerated.signature)]
    assert record.previous_signature_digest == _sha(cb.signature)
    assert record.previous_signature_expire_time == regenerated.previous_signature_expire_time
    assert record.mode == res.CALLBACK_MODE_WEBHOOK  # the other settings are sent whole again
    await edge.ack(change)
    await edge.close()

    # A new edge's snapshot carries the same.
    fresh = EdgeStream(s, md)
    await fresh.hello(edge_id="edge-2")
    [record] = (await fresh.next()).callbacks
    assert record.previous_signature_digest == _sha(cb.signature)
    assert record.hmac_secret == WHSEC.encode()
    await fresh.close()


async def test_an_expired_grace_is_not_sent(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    _, _, _, cb = await _setup(s, md)
    await s.callbacks.RegenerateSignature(
        cbs.RegenerateSignatureRequest(
            id=cb.id, grace_period=duration_pb2.Duration(nanos=200_000_000)
        ),
        metadata=md,
    )
    await asyncio.sleep(0.3)
    edge = EdgeStream(s, md)
    await edge.hello()
    [record] = (await edge.next()).callbacks
    assert record.previous_signature_digest == b""
    assert not record.HasField("previous_signature_expire_time")
    await edge.close()
