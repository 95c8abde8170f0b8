"""Packing a set into bounded chunks (protocol point 4), and a resumed change set too large for
one chunk, over a real control plane."""

from __future__ import annotations

import pytest

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import callback_sync_service_pb2 as sync
from control_plane.sync import chunks
from control_plane.sync.chunks import ChunkPacker
from control_plane.sync.records import SetHeader
from tests.api.helpers import Stubs
from tests.sync.test_sync_protocol import EdgeStream, _setup

HEADER = SetHeader(epoch="e" * 26, revision=123_456, snapshot=True)


def record(n: int, company_len: int = 10) -> sync.CallbackRecord:
    return sync.CallbackRecord(
        id=f"{n:026d}", company="c" * company_len, flow_id="f" * 26, signature_digests=[b"d" * 32]
    )


def pack(items, max_bytes: int) -> list[sync.SyncCallbacksResponse]:
    packer = ChunkPacker(HEADER, max_bytes)
    out = [c for field, value in items if (c := packer.add(field, value)) is not None]
    return [*out, packer.finish()]


@pytest.mark.parametrize("max_bytes", [300, 1_000, 4_096, 1 << 20])
def test_chunks_stay_within_the_bound_and_carry_the_set(max_bytes) -> None:
    items = [("callbacks", record(i, company_len=i % 40 + 1)) for i in range(500)]
    items += [("deleted_callback_ids", f"{i:026d}") for i in range(300)]
    out = pack(items, max_bytes)

    assert all(c.ByteSize() <= max_bytes for c in out)
    assert [c.more for c in out] == [True] * (len(out) - 1) + [False]
    assert {(c.epoch, c.revision, c.snapshot) for c in out} == {
        (HEADER.epoch, HEADER.revision, True)
    }
    # Nothing lost, nothing repeated, order kept.
    assert [r.id for c in out for r in c.callbacks] == [f"{i:026d}" for i in range(500)]
    assert [i for c in out for i in c.deleted_callback_ids] == [f"{i:026d}" for i in range(300)]
    if max_bytes == 1 << 20:
        assert len(out) == 1
    else:
        # Each chunk but the last was full: the next record would not have fitted.
        largest = max(value.ByteSize() if field == "callbacks" else 26 for field, value in items)
        assert all(c.ByteSize() + largest + 3 > max_bytes for c in out[:-1])


def test_an_empty_set_is_one_chunk_without_more() -> None:
    [only] = pack([], 1_000)
    assert not only.more and only.revision == HEADER.revision and not only.callbacks


def test_a_record_larger_than_the_bound_travels_alone() -> None:
    big = sync.FlowRecord(
        id="f",
        company="c",
        deployments=[sync.DeploymentRecord(environment_id=f"{i:026d}") for i in range(100)],
    )
    out = pack([("callbacks", record(1)), ("flows", big), ("callbacks", record(2))], 1_000)
    assert [(len(c.callbacks), len(c.flows)) for c in out] == [(1, 0), (0, 1), (1, 0)]


async def test_a_resumed_change_set_larger_than_a_chunk_comes_in_chunks(plane, monkeypatch):
    monkeypatch.setattr(chunks, "MAX_CHUNK_BYTES", 2_000)
    s, md = Stubs.on(plane.channel), plane.metadata()
    _, flow, _, _ = await _setup(s, md)
    edge = EdgeStream(s, md)
    await edge.hello()
    first = await edge.next()
    await edge.close()

    made = []
    for _ in range(60):
        made.append(
            (
                await s.callbacks.CreateCallback(
                    cbs.CreateCallbackRequest(flow_id=flow.id), metadata=md
                )
            ).callback.id
        )
    resumed = EdgeStream(s, md)
    await resumed.hello(epoch=first.epoch, revision=first.revision)
    got = [await resumed.next()]
    while got[-1].more:
        got.append(await resumed.next())
    await resumed.close()

    assert len(got) > 1 and all(c.ByteSize() <= 2_000 for c in got)
    assert {(c.revision, c.snapshot) for c in got} == {(first.revision + 60, False)}
    assert sorted(cb.id for c in got for cb in c.callbacks) == sorted(made)
