"""The change stream, the last-known-good file and readiness, against a fake control plane."""

from __future__ import annotations

import os
import time

import grpc
from edge_fakes import (
    CB_NEW,
    CB_NOCB,
    CB_OK,
    EPOCH,
    OTHER_SIGNATURE,
    FakeSync,
    callback,
    callback_url,
    dead_target,
    deployment,
    error,
    grpc_server,
    signed,
    wait_for,
)

from boomerang.v1 import callback_sync_service_pb2 as sync_pb2
from edge import lkg, sync_client


def changes(revision: int, **fields) -> sync_pb2.SyncCallbacksResponse:
    return sync_pb2.SyncCallbacksResponse(epoch=EPOCH, revision=revision, **fields)


async def test_hello_then_snapshot_is_applied_persisted_and_acked(edge, sync):
    fake, _ = sync
    (hello,) = fake.hellos
    assert (hello.edge_id, hello.epoch, hello.revision) == ("edge-test", "", 0)
    await wait_for(lambda: fake.acks == [(EPOCH, 1)])
    saved = lkg.load(edge.settings.lkg_path)
    assert saved is not None and saved.state == edge.app.ctx.cache.state


async def test_pushed_change_is_applied_then_acked_and_persisted(edge, sync):
    fake, _ = sync
    assert (await edge.client.get(signed(CB_NEW))).status_code == 403

    fake.push(changes(2, callbacks=[callback(CB_NEW, deployment("v-ok-new"))]))
    await wait_for(lambda: (EPOCH, 2) in fake.acks)

    r = await edge.client.get(signed(CB_NEW))
    assert r.status_code == 201 and r.json()[0]["version"] == "v-ok-new"
    saved = lkg.load(edge.settings.lkg_path)
    assert saved is not None and saved.state.revision == 2
    assert saved.state.callback("acme", CB_NEW) is not None

    fake.push(changes(3, deleted_callback_ids=[CB_NEW]))
    await wait_for(lambda: (EPOCH, 3) in fake.acks)
    assert (await edge.client.get(signed(CB_NEW))).status_code == 403
    assert lkg.load(edge.settings.lkg_path).state.callback("acme", CB_NEW) is None


async def test_restart_with_control_plane_down_serves_from_lkg(start_edge, sync, runner, tmp_path):
    first = await start_edge(sync_target=sync[1], runner_target=runner[1])
    await wait_for(lambda: (EPOCH, 1) in sync[0].acks)
    await first.stop()

    second = await start_edge(sync_target=dead_target(), runner_target=runner[1], wait=False)
    await wait_for(lambda: second.app.ctx.runners.connected)

    assert (await second.client.get("/readyz")).status_code == 200
    r = await second.client.get(signed(CB_OK))
    assert r.status_code == 201
    assert not second.app.ctx.cache.live


async def test_reconnect_resumes_from_the_persisted_revision(start_edge, sync, runner):
    fake, target = sync
    first = await start_edge(sync_target=target, runner_target=runner[1])
    fake.push(changes(2))
    await wait_for(lambda: (EPOCH, 2) in fake.acks)
    await first.stop()

    fake.first = changes(2)  # "nothing changed since 2"
    second = await start_edge(sync_target=target, runner_target=runner[1])
    assert (fake.hellos[-1].epoch, fake.hellos[-1].revision) == (EPOCH, 2)
    assert (await second.client.get(signed(CB_OK))).status_code == 201


async def test_slow_consumer_reset_reconnects_and_resyncs(edge, sync):
    fake, _ = sync
    fake.reset(grpc.StatusCode.RESOURCE_EXHAUSTED)
    await wait_for(lambda: len(fake.hellos) == 2 and edge.app.ctx.cache.live)

    assert (fake.hellos[1].epoch, fake.hellos[1].revision) == (EPOCH, 1)
    assert (await edge.client.get(signed(CB_OK))).status_code == 201


async def test_readyz_before_and_after_the_first_message(start_edge, runner):
    fake = FakeSync()
    fake.gate.clear()
    async with grpc_server(sync=fake) as target:
        edge = await start_edge(sync_target=target, runner_target=runner[1], wait=False)
        await wait_for(lambda: fake.streams == 1)

        r = await edge.client.get("/readyz")
        assert r.status_code == 503 and r.json()["ready"] is False
        nr = await edge.client.get(signed(CB_OK))
        assert nr.status_code == 503 and nr.json()["error"] == "not_ready"

        fake.gate.set()
        await wait_for(lambda: edge.app.ctx.cache.live)
        r = await edge.client.get("/readyz")
        assert r.status_code == 200 and r.json()["revision"] == 1
        assert (await edge.client.get("/healthz")).status_code == 200


async def test_staleness_limit_fails_closed_on_an_old_lkg(start_edge, sync, runner, tmp_path):
    first = await start_edge(sync_target=sync[1], runner_target=runner[1])
    await wait_for(lambda: (EPOCH, 1) in sync[0].acks)
    await first.stop()
    old = time.time() - 120
    os.utime(first.settings.lkg_path, (old, old))

    # Served forever by default; with a 60 s limit, a state confirmed 120 s ago is not served.
    lenient = await start_edge(sync_target=dead_target(), runner_target=runner[1], wait=False)
    await wait_for(lambda: lenient.app.ctx.runners.connected)
    assert (await lenient.client.get(signed(CB_OK))).status_code == 201
    await lenient.stop()
    strict = await start_edge(
        sync_target=dead_target(), runner_target=runner[1], wait=False, staleness_limit_s=60
    )
    assert (await strict.client.get("/readyz")).status_code == 503
    r = await strict.client.get(signed(CB_OK))
    assert r.status_code == 503 and r.json()["error"] == "not_ready"


async def test_sync_needs_the_api_key(start_edge, runner):
    fake = FakeSync()
    async with grpc_server(sync=fake) as target:
        edge = await start_edge(
            sync_target=target, runner_target=runner[1], wait=False, api_key="wrong-key"
        )
        await wait_for(lambda: fake.rejected >= 1)
        assert fake.hellos == []
        assert (await edge.client.get("/readyz")).status_code == 503


def rotated(revision: int, **fields) -> sync_pb2.SyncCallbacksResponse:
    """Changes at `revision` giving CB_OK the other signature."""
    record = callback(CB_OK, deployment("v-ok"), signature=OTHER_SIGNATURE)
    return changes(revision, callbacks=[record], **fields)


def other_signed(callback_id: str) -> str:
    return callback_url(callback_id, patchworks_signature=OTHER_SIGNATURE)


async def test_a_change_set_in_chunks_is_applied_when_its_last_chunk_arrives(edge, sync):
    fake, _ = sync
    fake.push(rotated(2, more=True))
    await wait_for(lambda: CB_OK in edge.app.ctx.cache.held.callback_ids)
    # Named by a set in transit: refused, neither the old signature nor the new one served.
    for url in (signed(CB_OK), other_signed(CB_OK)):
        error(await edge.client.get(url), 503, "not_ready")
    assert (await edge.client.head(signed(CB_NOCB))).status_code == 204  # not named: served
    assert edge.app.ctx.cache.state.revision == 1

    fake.push(changes(2, deleted_callback_ids=[CB_NOCB]))  # the last chunk
    await wait_for(lambda: (EPOCH, 2) in fake.acks)
    assert fake.acks.count((EPOCH, 2)) == 1  # one ack for the set, not one per chunk
    assert (await edge.client.head(other_signed(CB_OK))).status_code == 204
    assert (await edge.client.head(signed(CB_OK))).status_code == 403
    assert (await edge.client.head(signed(CB_NOCB))).status_code == 403
    assert not edge.app.ctx.cache.held.callback_ids
    assert lkg.load(edge.settings.lkg_path).state == edge.app.ctx.cache.state


async def test_a_stream_cut_mid_set_applies_nothing_and_fails_closed_until_resync(edge, sync):
    fake, _ = sync
    fake.push(rotated(2, more=True))
    await wait_for(lambda: CB_OK in edge.app.ctx.cache.held.callback_ids)

    fake.gate.clear()  # the next stream's first set waits until the test lets it go
    fake.first = rotated(2)  # what the control plane has since revision 1
    fake.reset(grpc.StatusCode.UNAVAILABLE)
    await wait_for(lambda: len(fake.hellos) == 2)

    # Nothing of the cut set was applied or persisted; what it named stays refused.
    assert (fake.hellos[1].epoch, fake.hellos[1].revision) == (EPOCH, 1)
    assert edge.app.ctx.cache.state.revision == 1
    assert lkg.load(edge.settings.lkg_path).state.revision == 1
    error(await edge.client.get(signed(CB_OK)), 503, "not_ready")
    assert (await edge.client.head(signed(CB_NOCB))).status_code == 204

    fake.gate.set()
    await wait_for(lambda: (EPOCH, 2) in fake.acks)
    assert (await edge.client.head(other_signed(CB_OK))).status_code == 204
    assert (await edge.client.head(signed(CB_OK))).status_code == 403


async def test_a_snapshot_in_transit_leaves_the_previous_state_served(edge, sync):
    fake, _ = sync
    fake.push(
        sync_pb2.SyncCallbacksResponse(
            epoch="epoch-2",
            revision=9,
            snapshot=True,
            more=True,
            callbacks=[rotated(9).callbacks[0]],
        )
    )
    await wait_for(lambda: fake.streams == 1 and edge.app.ctx.cache.live)
    fake.gate.clear()
    fake.reset(grpc.StatusCode.UNAVAILABLE)
    await wait_for(lambda: len(fake.hellos) == 2)
    # A snapshot names everything; refusing what it names would refuse every callback. The
    # previous state is served until a whole snapshot arrives (docs/sync.md).
    assert not edge.app.ctx.cache.held.callback_ids
    assert (await edge.client.head(signed(CB_OK))).status_code == 204
    assert edge.app.ctx.cache.state.epoch == EPOCH
    # The new last-known-good file it had begun is gone; the old one is as it was.
    lkg_path = edge.settings.lkg_path
    assert [p.name for p in lkg_path.parent.iterdir() if p.name.endswith(".tmp")] == []
    assert lkg.load(lkg_path).state == edge.app.ctx.cache.state
    fake.gate.set()


async def test_chunks_of_different_sets_end_the_stream_without_applying(edge, sync):
    fake, _ = sync
    fake.push(rotated(2, more=True))
    fake.push(changes(3))  # not the set the staged chunk belongs to: a protocol error
    await wait_for(lambda: len(fake.hellos) == 2 and edge.app.ctx.cache.live)
    assert edge.app.ctx.cache.state.revision == 1
    assert (EPOCH, 3) not in fake.acks


async def test_the_edge_heartbeats_on_its_stream(edge, sync, monkeypatch):
    fake, _ = sync
    monkeypatch.setattr(sync_client, "HEARTBEAT_S", 0.05)
    await wait_for(lambda: fake.heartbeats >= 2)
