"""The change stream, the last-known-good file and readiness, against a fake control plane."""

from __future__ import annotations

import os
import time

import grpc
from edge_fakes import (
    CB_NEW,
    CB_OK,
    EPOCH,
    FakeSync,
    callback,
    dead_target,
    deployment,
    grpc_server,
    signed,
    wait_for,
)

from boomerang.v1 import callback_sync_service_pb2 as sync_pb2
from edge import lkg


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
