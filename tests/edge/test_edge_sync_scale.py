"""The change stream at scale, between a real control plane (in-process, both backends) and real
edges (in-process Sanic servers on loopback): issue 7's inflation through the API, a snapshot of
100,000 callbacks in chunks, and liveness (docs/sync.md)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import httpx
from edge_fakes import wait_for
from google.protobuf import field_mask_pb2

from bench.sync_bulk import populate
from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import callback_sync_service_pb2 as sync
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2
from control_plane.store.db import database
from control_plane.store.models import EdgeState
from control_plane.sync import edges, liveness
from control_plane.sync.chunks import MAX_CHUNK_BYTES
from edge import sync_client
from tests.api.helpers import CALLBACK_FLOW, Stubs, struct
from tests.conftest import ADMIN_KEY


def url(company: str, callback_id: str, signature: str, prefix: str = "") -> str:
    path = f"/api/v1/{company}/{callback_id}" + (f"/{prefix}" if prefix else "")
    return str(httpx.URL(path, params={"patchworks_signature": signature}))


async def real_edge(start_edge, plane, tmp_path: Path, edge_id: str):
    return await start_edge(
        sync_target=plane.target,
        runner_target=plane.target,
        api_key=ADMIN_KEY,
        edge_id=edge_id,
        state_dir=tmp_path / edge_id,
        wait=False,
    )


async def in_sync(edge) -> None:
    await wait_for(lambda: edge.app.ctx.cache.live, within_s=60)


async def read_set(plane, md, edge_id: str = "raw") -> list[sync.SyncCallbacksResponse]:
    """Connects as a fresh edge; returns the chunks of the first set."""
    hello = sync.SyncCallbacksRequest(hello=sync.SyncHello(edge_id=edge_id))
    done = asyncio.Event()

    async def requests():
        yield hello
        await done.wait()

    call = Stubs.on(plane.channel).sync.SyncCallbacks(requests(), metadata=md)
    chunks = [await call.read()]
    while chunks[-1].more:
        chunks.append(await call.read())
    done.set()
    call.cancel()
    return chunks


async def _flow_with_callback(s: Stubs, md, company: str):
    flow = (
        await s.flows.CreateFlow(
            fs.CreateFlowRequest(company=company, name="f", definition=struct(CALLBACK_FLOW)),
            metadata=md,
        )
    ).flow
    await s.flows.DeployVersion(fs.DeployVersionRequest(flow_id=flow.id), metadata=md)
    cb = (
        await s.callbacks.CreateCallback(cbs.CreateCallbackRequest(flow_id=flow.id), metadata=md)
    ).callback
    return flow, cb


async def test_one_tenant_inflating_its_state_leaves_every_edge_in_sync(
    plane, start_edge, tmp_path
):
    """Issue 7: 1,100 environments, a deployment to each and 1,100 callbacks of one flow, made
    with a company key, once made one 72.8 MB message that no edge could receive."""
    s, admin = Stubs.on(plane.channel), plane.metadata()
    for slug in ("hostile", "victim"):
        await s.companies.CreateCompany(
            cs.CreateCompanyRequest(name=slug, slug=slug), metadata=admin
        )
    _, victim_cb = await _flow_with_callback(s, admin, "victim")
    existing = await real_edge(start_edge, plane, tmp_path, "existing")
    await in_sync(existing)

    secret = (
        await s.keys.CreateApiKey(
            aks.CreateApiKeyRequest(company="hostile", name="k"), metadata=admin
        )
    ).secret
    md = plane.metadata(secret)
    flow, _ = await _flow_with_callback(s, md, "hostile")
    # The environments quota (50 by default) would stop this at once; an operator may raise it,
    # and the sync must cope with what quotas allow.
    await s.companies.SetQuotas(
        cs.SetQuotasRequest(
            company="hostile",
            quotas=resources_pb2.Quotas(environments=2_000),
            update_mask=field_mask_pb2.FieldMask(paths=["environments"]),
        ),
        metadata=admin,
    )

    async def inflate(i: int):
        env = (
            await s.environments.CreateEnvironment(
                es.CreateEnvironmentRequest(company="hostile", name=f"e{i}", url_prefix=f"e{i}"),
                metadata=md,
            )
        ).environment
        await s.flows.DeployVersion(
            fs.DeployVersionRequest(flow_id=flow.id, environment_id=env.id, number=1),
            metadata=md,
        )
        cb = await s.callbacks.CreateCallback(
            cbs.CreateCallbackRequest(flow_id=flow.id), metadata=md
        )
        return env, cb.callback

    made = []
    for start in range(0, 1_100, 25):
        made += await asyncio.gather(*(inflate(i) for i in range(start, start + 25)))

    # The whole state is now one set of several bounded chunks, deployments once per flow.
    chunks = await read_set(plane, admin)
    assert all(c.ByteSize() <= MAX_CHUNK_BYTES for c in chunks)
    [hostile_flow] = [f for c in chunks for f in c.flows if f.id == flow.id]
    assert len(hostile_flow.deployments) == 1_101
    assert sum(len(c.callbacks) for c in chunks) == 1_102

    fresh = await real_edge(start_edge, plane, tmp_path, "fresh")
    await in_sync(fresh)
    env, cb = made[-1]
    for edge in (fresh, existing):
        await wait_for(lambda e=edge: e.app.ctx.cache.state.callback("hostile", cb.id), 30)
        r = await edge.client.head(url("hostile", cb.id, cb.signature, env.url_prefix))
        assert r.status_code == 204

    # Another tenant rotates its signature: every edge takes it, and the wait says so.
    rotated = await s.callbacks.RegenerateSignature(
        cbs.RegenerateSignatureRequest(id=victim_cb.id, wait_for_edges_ms=20_000), metadata=admin
    )
    assert list(rotated.pending_edge_ids) == []
    new = rotated.callback.signature
    for edge in (fresh, existing):
        assert (await edge.client.head(url("victim", victim_cb.id, new))).status_code == 204
        old = await edge.client.head(url("victim", victim_cb.id, victim_cb.signature))
        assert old.status_code == 403


async def test_a_snapshot_of_100k_callbacks_reaches_a_fresh_edge_in_chunks(
    plane, start_edge, tmp_path
):
    database.connect(reuse_if_open=True)
    sample = await asyncio.to_thread(populate, 100_000, 100)

    chunks = await read_set(plane, plane.metadata())
    assert len(chunks) >= 5
    assert all(c.ByteSize() <= MAX_CHUNK_BYTES for c in chunks)
    assert [c.more for c in chunks] == [True] * (len(chunks) - 1) + [False]
    assert len({(c.epoch, c.revision, c.snapshot) for c in chunks}) == 1 and chunks[0].snapshot
    ids = [cb.id for c in chunks for cb in c.callbacks]
    assert len(ids) == len(set(ids)) == 100_000
    assert not any(cb.deployments for c in chunks for cb in c.callbacks)

    edge = await real_edge(start_edge, plane, tmp_path, "fresh")
    await in_sync(edge)
    assert len(edge.app.ctx.cache.state.callbacks) == 100_000
    good = url(sample.company, sample.callback_id, sample.signature)
    assert (await edge.client.head(good)).status_code == 204
    bad = url(sample.company, sample.callback_id, "x" * 52)
    assert (await edge.client.head(bad)).status_code == 403


async def _listed(plane, edge_id: str) -> sync.Edge | None:
    listed = (
        await Stubs.on(plane.channel).sync.ListEdges(
            sync.ListEdgesRequest(), metadata=plane.metadata()
        )
    ).edges
    return next((e for e in listed if e.edge_id == edge_id), None)


async def test_an_edge_that_stops_heartbeating_is_shown_dead_and_not_waited_for(
    plane, start_edge, tmp_path, monkeypatch
):
    monkeypatch.setattr(sync_client, "HEARTBEAT_S", 0.1)
    monkeypatch.setattr(liveness, "FLUSH_S", 0.1)
    monkeypatch.setattr(edges, "LIVENESS_S", 2.0)
    s, md = Stubs.on(plane.channel), plane.metadata()
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="a", slug="a"), metadata=md)
    _, cb = await _flow_with_callback(s, md, "a")
    edge = await real_edge(start_edge, plane, tmp_path, "edge-a")
    await in_sync(edge)

    # Heartbeats alone (no change, so no ack) move its last contact on.
    first = (await _listed(plane, "edge-a")).last_seen_time.ToDatetime()

    async def heard_since_first():
        e = await _listed(plane, "edge-a")
        return e.connected and e.last_seen_time.ToDatetime() > first

    await wait_for(heard_since_first)

    # Silence (the edge hangs, its stream still open): not connected, whatever the stream says.
    monkeypatch.setattr(sync_client, "HEARTBEAT_S", 3600.0)

    async def shown_dead():
        return not (await _listed(plane, "edge-a")).connected

    await wait_for(shown_dead, within_s=15)
    assert edge.app.ctx.cache.live  # the stream itself never ended

    # A control plane that crashed left a row saying "connected": it is not believed.
    def crashed_row():
        database.connect(reuse_if_open=True)
        edges.record("left-by-a-crash", "old-epoch", 1, True)
        old = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=5)
        EdgeState.update(last_seen_at=old).where(EdgeState.edge_id == "left-by-a-crash").execute()

    await asyncio.to_thread(crashed_row)
    assert not (await _listed(plane, "left-by-a-crash")).connected

    # Neither the silent edge nor the stale row is waited for; a live edge behind would be.
    response = await s.callbacks.RegenerateSignature(
        cbs.RegenerateSignatureRequest(id=cb.id, wait_for_edges_ms=300), metadata=md
    )
    pending = set(response.pending_edge_ids)
    assert "left-by-a-crash" not in pending
    assert "edge-a" not in pending  # dead to the control plane, or caught up by its ack


async def test_live_edges_behind_are_pending_a_dead_one_is_not(plane, monkeypatch):
    monkeypatch.setattr(liveness, "FLUSH_S", 0.1)
    monkeypatch.setattr(edges, "LIVENESS_S", 2.0)
    s, md = Stubs.on(plane.channel), plane.metadata()
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="a", slug="a"), metadata=md)
    _, cb = await _flow_with_callback(s, md, "a")

    async def edge_stream(edge_id: str, beat: bool):
        """An edge that applies nothing after its first set: with `beat` it heartbeats (alive,
        its applying stuck), without it it falls silent with its stream open (hung)."""
        stop = asyncio.Event()

        async def requests():
            yield sync.SyncCallbacksRequest(hello=sync.SyncHello(edge_id=edge_id))
            while beat and not stop.is_set():
                await asyncio.sleep(0.1)
                yield sync.SyncCallbacksRequest(heartbeat=sync.SyncHeartbeat())
            await stop.wait()

        call = s.sync.SyncCallbacks(requests(), metadata=md)
        await call.read()
        return call, stop

    behind, stop_behind = await edge_stream("alive-behind", beat=True)
    hung, stop_hung = await edge_stream("hung", beat=False)

    async def flap():
        """An edge whose every stream fails (as when it cannot apply what it is sent): it
        reconnects again and again, and between streams none is open."""
        while True:
            call, stop = await edge_stream("flapping", beat=False)
            stop.set()
            call.cancel()
            await asyncio.sleep(0.1)

    flapping = asyncio.create_task(flap())

    async def hung_shown_dead():
        e = await _listed(plane, "hung")
        return not e.connected

    await wait_for(hung_shown_dead, within_s=15)
    assert (await _listed(plane, "alive-behind")).connected
    response = await s.callbacks.RegenerateSignature(
        cbs.RegenerateSignatureRequest(id=cb.id, wait_for_edges_ms=300), metadata=md
    )
    assert list(response.pending_edge_ids) == ["alive-behind", "flapping"]
    flapping.cancel()
    for call, stop in ((behind, stop_behind), (hung, stop_hung)):
        stop.set()
        call.cancel()
