"""CallbackSyncService protocol over a real in-process server (both backends).

Rules under test (callback_sync_service.proto): hello first; the first answer is authoritative
(changes since a known revision, or a snapshot for an unknown epoch); later messages coalesce
changes; acks are recorded per edge; a consumer that stops acknowledging is reset.
"""

from __future__ import annotations

import asyncio
import hashlib

import grpc
import pytest

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import callback_sync_service_pb2 as sync
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import flow_service_pb2 as fs
from control_plane.sync import edges, service
from tests.api.helpers import CALLBACK_FLOW, Stubs, failure, struct


class EdgeStream:
    """A hand-driven edge end of SyncCallbacks."""

    def __init__(self, stubs: Stubs, md) -> None:
        self.out: asyncio.Queue = asyncio.Queue()
        self.call = stubs.sync.SyncCallbacks(self._requests(), metadata=md)

    async def _requests(self):
        while True:
            item = await self.out.get()
            if item is None:
                return
            yield item

    async def hello(self, edge_id="edge-1", epoch="", revision=0):
        await self.out.put(
            sync.SyncCallbacksRequest(
                hello=sync.SyncHello(edge_id=edge_id, epoch=epoch, revision=revision)
            )
        )

    async def ack(self, message):
        await self.out.put(
            sync.SyncCallbacksRequest(
                ack=sync.SyncAck(epoch=message.epoch, revision=message.revision)
            )
        )

    async def next(self) -> sync.SyncCallbacksResponse:
        return await asyncio.wait_for(self.call.read(), 5.0)

    async def close(self):
        await self.out.put(None)
        self.call.cancel()


async def _setup(s: Stubs, md):
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="Acme", slug="acme"), metadata=md)
    env = (
        await s.environments.CreateEnvironment(
            es.CreateEnvironmentRequest(company="acme", name="UK", url_prefix="uk"), metadata=md
        )
    ).environment
    flow = (
        await s.flows.CreateFlow(
            fs.CreateFlowRequest(company="acme", name="f", definition=struct(CALLBACK_FLOW)),
            metadata=md,
        )
    ).flow
    dep = await s.flows.DeployVersion(fs.DeployVersionRequest(flow_id=flow.id), metadata=md)
    cb = (
        await s.callbacks.CreateCallback(cbs.CreateCallbackRequest(flow_id=flow.id), metadata=md)
    ).callback
    return env, flow, dep, cb


async def test_snapshot_then_changes_then_resume(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    env, flow, dep, cb = await _setup(s, md)

    edge = EdgeStream(s, md)
    await edge.hello()
    first = await edge.next()
    assert first.snapshot and first.revision > 0 and first.epoch
    [record] = first.callbacks
    assert record.id == cb.id and record.company == "acme" and record.flow_id == flow.id
    assert list(record.signature_digests) == [hashlib.sha256(cb.signature.encode()).digest()]
    assert cb.signature.encode() not in first.SerializeToString()  # never the secret itself
    assert not record.deployments  # deployments travel once per flow
    [flow_record] = first.flows
    assert (flow_record.id, flow_record.company) == (flow.id, "acme")
    assert [(d.environment_id, d.version_id, d.enabled) for d in flow_record.deployments] == [
        ("", dep.version.id, True)
    ]
    assert not first.more
    assert [(e.id, e.company, e.url_prefix) for e in first.environments] == [(env.id, "acme", "uk")]
    await edge.ack(first)

    regenerated = (
        await s.callbacks.RegenerateSignature(cbs.RegenerateSignatureRequest(id=cb.id), metadata=md)
    ).callback
    change = await edge.next()
    assert not change.snapshot and change.revision == first.revision + 1
    assert [c.id for c in change.callbacks] == [cb.id]
    assert list(change.callbacks[0].signature_digests) == [
        hashlib.sha256(regenerated.signature.encode()).digest()
    ]
    await edge.ack(change)
    await asyncio.sleep(0.2)
    edges = (await s.sync.ListEdges(sync.ListEdgesRequest(), metadata=md)).edges
    assert [(e.edge_id, e.revision, e.connected) for e in edges] == [
        ("edge-1", change.revision, True)
    ]
    await edge.close()

    # Offline changes: the edge resumes from its revision and gets only what it missed.
    await s.callbacks.DeleteCallback(cbs.DeleteCallbackRequest(id=cb.id), metadata=md)
    await s.flows.SetDeploymentEnabled(
        fs.SetDeploymentEnabledRequest(flow_id=flow.id, enabled=False), metadata=md
    )
    resumed = EdgeStream(s, md)
    await resumed.hello(epoch=change.epoch, revision=change.revision)
    first_again = await resumed.next()
    assert not first_again.snapshot
    assert list(first_again.deleted_callback_ids) == [cb.id]
    assert [(f.id, [d.enabled for d in f.deployments]) for f in first_again.flows] == [
        (flow.id, [False])
    ]
    assert first_again.revision == change.revision + 2
    await resumed.close()


async def _first_reply(s: Stubs, md, **hello) -> sync.SyncCallbacksResponse:
    """Connects as an edge with `hello`, returns the authoritative first message."""
    edge = EdgeStream(s, md)
    await edge.hello(**hello)
    first = await edge.next()
    await edge.close()
    return first


async def test_unknown_epoch_gets_a_full_snapshot(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await _setup(s, md)
    first = await _first_reply(s, md, epoch="from-another-database", revision=3)
    assert first.snapshot and len(first.callbacks) == 1


async def test_revision_ahead_of_head_gets_a_snapshot(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await _setup(s, md)
    first = await _first_reply(s, md)
    ahead = await _first_reply(s, md, epoch=first.epoch, revision=first.revision + 100)
    assert ahead.snapshot


async def test_up_to_date_edge_gets_an_empty_authoritative_message(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await _setup(s, md)
    first = await _first_reply(s, md)
    current = await _first_reply(s, md, epoch=first.epoch, revision=first.revision)
    assert not current.snapshot and current.revision == first.revision
    assert not current.callbacks and not current.deleted_callback_ids


async def test_hello_must_come_first(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    edge = EdgeStream(s, md)
    await edge.out.put(sync.SyncCallbacksRequest(ack=sync.SyncAck(epoch="x", revision=1)))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await edge.next()
    f = failure(err.value)
    assert f.code == grpc.StatusCode.INVALID_ARGUMENT
    assert f.reason == "ERROR_REASON_PROTOCOL_VIOLATION"


async def test_sync_needs_an_installation_wide_key(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="Acme", slug="acme"), metadata=md)
    from boomerang.v1 import api_key_service_pb2 as aks

    secret = (
        await s.keys.CreateApiKey(aks.CreateApiKeyRequest(company="acme", name="k"), metadata=md)
    ).secret
    edge = EdgeStream(s, plane.metadata(secret))
    # No hello: the key is refused before the stream's first message is read, and a hello in
    # flight raced the refusal (grpc.aio then reported INTERNAL "Internal error from Core", with
    # no details, about one run in 40).
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await edge.next()
    assert failure(err.value).reason == "ERROR_REASON_ADMIN_KEY_REQUIRED"


async def test_a_consumer_that_stops_acking_is_reset_and_resyncs(plane, monkeypatch):
    monkeypatch.setattr(service, "ACK_TIMEOUT_S", 0.5)
    s, md = Stubs.on(plane.channel), plane.metadata()
    _, _, _, cb = await _setup(s, md)
    edge = EdgeStream(s, md)
    await edge.hello()
    received = [await edge.next()]  # never acknowledged

    async def regenerate():
        await s.callbacks.RegenerateSignature(cbs.RegenerateSignatureRequest(id=cb.id), metadata=md)

    # One change at a time, each read before the next is made: exactly one set per change, so
    # the window fills after MAX_UNACKED sets whatever the timing (coalescing several changes
    # into one set once left the window short of full, and the stream waiting forever).
    while len(received) < service.MAX_UNACKED:
        await regenerate()
        received.append(await edge.next())
    await regenerate()  # the window is full: this one is held back
    with pytest.raises(grpc.aio.AioRpcError) as err:
        received.append(await edge.next())
    f = failure(err.value)
    assert f.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert f.reason == "ERROR_REASON_SLOW_CONSUMER"
    assert len(received) == service.MAX_UNACKED  # the window held; nothing sent beyond it
    # Reconnecting from the last revision it applied brings it current.
    latest = (await s.callbacks.GetCallback(cbs.GetCallbackRequest(id=cb.id), metadata=md)).callback
    again = EdgeStream(s, md)
    await again.hello(epoch=received[-1].epoch, revision=received[-1].revision)
    current = await again.next()
    assert list(current.callbacks[0].signature_digests) == [
        hashlib.sha256(latest.signature.encode()).digest()
    ]
    await again.close()


async def test_changes_are_coalesced(plane):
    """Ten writes while the edge is between reads arrive as few messages, not ten."""
    s, md = Stubs.on(plane.channel), plane.metadata()
    _, _, _, cb = await _setup(s, md)
    edge = EdgeStream(s, md)
    await edge.hello()
    first = await edge.next()
    await edge.ack(first)
    for _ in range(10):
        await s.callbacks.RegenerateSignature(cbs.RegenerateSignatureRequest(id=cb.id), metadata=md)
    seen = []
    while not seen or seen[-1].revision < first.revision + 10:
        message = await edge.next()
        seen.append(message)
        await edge.ack(message)
    assert len(seen) < 10
    assert seen[-1].revision == first.revision + 10
    await edge.close()


async def shown_connected(s: Stubs, md, edge_id: str, connected: bool = True) -> bool:
    """ListEdges lists `edge_id` with that `connected`."""
    listed = (await s.sync.ListEdges(sync.ListEdgesRequest(), metadata=md)).edges
    return any(e.edge_id == edge_id and e.connected == connected for e in listed)


async def until(check, within_s: float = 10.0) -> None:
    """Waits until the async `check()` is true; fails the test after `within_s`."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"condition not met within {within_s}s")
        await asyncio.sleep(0.05)


async def test_regenerate_can_wait_for_connected_edges(plane, monkeypatch):
    s, md = Stubs.on(plane.channel), plane.metadata()
    _, _, _, cb = await _setup(s, md)
    acking, silent = EdgeStream(s, md), EdgeStream(s, md)
    await acking.hello(edge_id="acking")
    await acking.ack(await acking.next())
    await silent.hello(edge_id="silent")
    await silent.next()  # never acknowledged

    async def ack_what_comes():
        while True:
            await acking.ack(await acking.next())

    acker = asyncio.create_task(ack_what_comes())
    response = await s.callbacks.RegenerateSignature(
        cbs.RegenerateSignatureRequest(id=cb.id, wait_for_edges_ms=300), metadata=md
    )
    assert list(response.pending_edge_ids) == ["silent"]  # "acking" applied it in time

    # An edge gone silent for the liveness window is dead: not waited for. ("acking" is heard
    # from again when it acknowledges the next change.)
    await silent.close()
    monkeypatch.setattr(edges, "LIVENESS_S", 0.5)
    await until(lambda: shown_connected(s, md, "silent", connected=False))
    response = await s.callbacks.RegenerateSignature(
        cbs.RegenerateSignatureRequest(id=cb.id, wait_for_edges_ms=2000), metadata=md
    )
    assert list(response.pending_edge_ids) == []
    acker.cancel()
    await acking.close()


async def test_regenerate_wait_is_bounded(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    _, _, _, cb = await _setup(s, md)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await s.callbacks.RegenerateSignature(
            cbs.RegenerateSignatureRequest(id=cb.id, wait_for_edges_ms=30_001), metadata=md
        )
    f = failure(err.value)
    assert (f.code, f.fields) == (grpc.StatusCode.INVALID_ARGUMENT, ["wait_for_edges_ms"])
    # Nothing changed: the signature is the one it had.
    again = (await s.callbacks.GetCallback(cbs.GetCallbackRequest(id=cb.id), metadata=md)).callback
    assert again.signature == cb.signature
