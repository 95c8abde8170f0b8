"""Revoking a key ends the streams and waits that use it, within about a second, whichever
replica revoked it (docs/security.md). Both backends; real servers on loopback."""

from __future__ import annotations

import asyncio
import dataclasses

import grpc
import pytest

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import runner_service_pb2 as rs
from tests.api.helpers import Stubs, failure, new_callback
from tests.security.keys import Requests, bearer, hello, new_key, registered

BOUND_S = 5.0  # generous: the watcher polls every 0.5 s


def assert_revoked(err: grpc.aio.AioRpcError) -> None:
    got = failure(err)
    assert (got.code, got.reason) == (
        grpc.StatusCode.UNAUTHENTICATED,
        "ERROR_REASON_INVALID_API_KEY",
    )
    assert err.details() == "the API key was revoked"


async def revoke(stubs: Stubs, md, key_id: str) -> None:
    await stubs.keys.RevokeApiKey(aks.RevokeApiKeyRequest(id=key_id), metadata=md)


async def test_revoking_an_edge_key_ends_its_sync_stream(plane):
    stubs, md = Stubs.on(plane.channel), plane.metadata()
    key_id, secret = await new_key(stubs, md, "edge")
    requests = Requests()
    call = stubs.sync.SyncCallbacks(requests, metadata=bearer(secret))
    requests.send(hello())
    first = await asyncio.wait_for(call.read(), BOUND_S)
    assert first.snapshot  # the stream is up and serving

    await revoke(stubs, md, key_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(call.read(), BOUND_S)
    assert_revoked(err.value)
    requests.close()

    # And it cannot come back.
    again = stubs.sync.SyncCallbacks(requests, metadata=bearer(secret))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(again.read(), BOUND_S)
    assert failure(err.value).code == grpc.StatusCode.UNAUTHENTICATED


async def test_revocation_on_one_replica_ends_a_runflow_stream_on_a_runner_process(plane):
    """A runner (role runner) shares only the database with the replica that revokes."""
    from control_plane.server import ControlPlane

    stubs, md = Stubs.on(plane.channel), plane.metadata()
    runner = ControlPlane(dataclasses.replace(plane.plane.settings, role="runner"))
    port = await runner.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        key_id, secret = await new_key(stubs, md, "runner")
        requests = Requests()
        call = Stubs.on(channel).runner.RunFlow(requests, metadata=bearer(secret))
        await registered(runner, key_id)

        await revoke(stubs, md, key_id)
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await asyncio.wait_for(call.read(), BOUND_S)
        assert_revoked(err.value)
        requests.close()
    finally:
        await channel.close()
        await runner.stop(grace=0.5)


async def test_revoking_a_key_ends_its_wait_for_edges_and_nothing_else(plane):
    stubs, md = Stubs.on(plane.channel), plane.metadata()
    cb = await new_callback(stubs, md)
    # An edge that never acknowledges keeps RegenerateSignature waiting.
    edge_id, edge_secret = await new_key(stubs, md, "edge")
    requests = Requests()
    edge = stubs.sync.SyncCallbacks(requests, metadata=bearer(edge_secret))
    requests.send(hello("slow-edge"))
    await asyncio.wait_for(edge.read(), BOUND_S)

    key_id, secret = await new_key(stubs, md, "full")
    waiting = asyncio.ensure_future(
        stubs.callbacks.RegenerateSignature(
            cbs.RegenerateSignatureRequest(id=cb.id, wait_for_edges_ms=30_000),
            metadata=bearer(secret),
        )
    )
    await registered(plane.plane, key_id)
    await revoke(stubs, md, key_id)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await asyncio.wait_for(waiting, BOUND_S)
    assert_revoked(err.value)

    # The edge's stream, on a key still valid, goes on: it gets the regenerated signature.
    change = await asyncio.wait_for(edge.read(), BOUND_S)
    assert [c.id for c in change.callbacks] == [cb.id]
    assert edge_id in plane.plane.runtime.sessions._calls
    requests.close()
    edge.cancel()


async def test_a_runflow_stream_on_a_live_key_is_not_ended(plane):
    """The watcher ends only revoked keys' calls: a stream opened with a valid key stays up
    across several polls and still runs flows."""
    stubs, md = Stubs.on(plane.channel), plane.metadata()
    key_id, secret = await new_key(stubs, md, "edge")
    other_id, _ = await new_key(stubs, md, "runner")
    requests = Requests()
    call = stubs.runner.RunFlow(requests, metadata=bearer(secret))
    await registered(plane.plane, key_id)
    await revoke(stubs, md, other_id)  # some other key
    await asyncio.sleep(1.2)  # a few watcher polls
    requests.send(
        rs.RunFlowRequest(
            events=[
                rs.RunFlowClientEvent(
                    run_ref=1,
                    start=rs.RunStart(
                        company="nope",
                        callback_id="0" * 26,
                        flow_id="0" * 26,
                        version_id="0" * 26,
                        method="GET",
                    ),
                )
            ]
        )
    )
    event = (await asyncio.wait_for(call.read(), BOUND_S)).events[0]
    assert event.run_ref == 1  # answered (an unknown flow fails the run; the stream is fine)
    requests.close()
    assert await asyncio.wait_for(call.code(), BOUND_S) == grpc.StatusCode.OK
