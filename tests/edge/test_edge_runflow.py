"""RunFlowClient against a real loopback gRPC server: batching, dispatch, failure, cancel."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from edge_fakes import API_KEY, dead_target, wait_for

from boomerang.v1 import resources_pb2
from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge.app import CHANNEL_OPTIONS
from edge.backoff import Backoff
from edge.runflow_client import (
    MAX_MESSAGE_BYTES,
    NATURAL_BATCH,
    RunFlowClient,
    RunLost,
    RunnerUnavailable,
    split_batch,
)

MiB = 1 << 20


@contextlib.asynccontextmanager
async def client_for(target: str, coalesce_s: float = 0.0):
    channel = grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)
    client = RunFlowClient(
        channel,
        api_key=API_KEY,
        backoff=Backoff(base_s=0.01, cap_s=0.05),
        coalesce_s=coalesce_s,
    )
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await channel.close()


def start(version: str, body: bytes = b"") -> runner_pb2.RunStart:
    return runner_pb2.RunStart(company="acme", callback_id="cb", version_id=version, body=body)


async def test_runs_queued_together_go_out_in_one_message(runner):
    fake, target = runner
    async with client_for(target) as client:
        await wait_for(lambda: client.connected)
        runs = [client.start(start("v-ok")) for _ in range(20)]
        results = await asyncio.gather(*(run.result for run in runs))

        assert fake.batch_sizes == [20]
        assert len({run.ref for run in runs}) == 20
        assert all(isinstance(r, runner_pb2.RunCallback) for r in results)
        assert {run.run_id for run in runs} == {fake.run_ids[run.ref] for run in runs}
        assert client.open_runs == 0


@pytest.mark.parametrize(("coalesce_s", "messages"), [(0.0, [1, 1, 1, 1]), (1.0, [1, 3])])
async def test_starts_queued_while_other_runs_are_open_wait_to_share_a_message(
    runner, coalesce_s, messages
):
    fake, target = runner
    async with client_for(target, coalesce_s) as client:
        await wait_for(lambda: client.connected)
        client.start(start("v-slow"))  # alone on the stream: written at once
        await wait_for(lambda: fake.batch_sizes == [1])
        runs = []
        for _ in range(3):  # each in a later turn of the loop than the writer's last write
            runs.append(client.start(start("v-ok")))
            await asyncio.sleep(0.01)
        results = await asyncio.wait_for(asyncio.gather(*(run.result for run in runs)), 10)

        assert all(isinstance(r, runner_pb2.RunCallback) for r in results)
        assert fake.batch_sizes == messages


async def test_a_lone_start_never_waits(runner):
    fake, target = runner
    async with client_for(target, coalesce_s=60.0) as client:  # a wait would time the test out
        await wait_for(lambda: client.connected)
        for _ in range(2):
            result = await asyncio.wait_for(client.start(start("v-ok")).result, 10)
            assert isinstance(result, runner_pb2.RunCallback)
        assert fake.batch_sizes == [1, 1]


async def test_a_wait_ends_once_a_batch_is_worth_a_message(runner):
    fake, target = runner
    async with client_for(target, coalesce_s=60.0) as client:  # a wait would time the test out
        await wait_for(lambda: client.connected)
        client.start(start("v-slow"))
        await wait_for(lambda: fake.batch_sizes == [1])
        runs = []
        for _ in range(NATURAL_BATCH):
            runs.append(client.start(start("v-ok")))
            await asyncio.sleep(0.01)
        results = await asyncio.wait_for(asyncio.gather(*(run.result for run in runs)), 10)
        assert all(isinstance(r, runner_pb2.RunCallback) for r in results)
        assert fake.batch_sizes == [1, NATURAL_BATCH]


async def test_a_stream_that_batches_by_itself_never_waits(runner):
    fake, target = runner
    async with client_for(target, coalesce_s=60.0) as client:
        await wait_for(lambda: client.connected)
        # Queued in one turn of the loop: one message of NATURAL_BATCH events, as under load.
        slow = [client.start(start("v-slow")) for _ in range(NATURAL_BATCH)]
        await wait_for(lambda: all(run.run_id for run in slow))
        result = await asyncio.wait_for(client.start(start("v-ok")).result, 10)
        assert isinstance(result, runner_pb2.RunCallback)
        assert fake.batch_sizes == [NATURAL_BATCH, 1]


async def test_outcome_resolves_a_run_without_callback(runner):
    async with client_for(runner[1]) as client:
        await wait_for(lambda: client.connected)
        run = client.start(start("v-nocb"))
        result = await run.result
        assert isinstance(result, runner_pb2.RunOutcome)
        assert result.reason == resources_pb2.RUN_REASON_NO_CALLBACK


async def test_no_stream_fails_at_once():
    async with client_for(dead_target()) as client:
        await asyncio.sleep(0.05)
        assert not client.connected
        with pytest.raises(RunnerUnavailable):
            client.start(start("v-ok"))


async def test_cancel_is_sent_once_and_forgets_the_run(runner):
    fake, target = runner
    async with client_for(target) as client:
        await wait_for(lambda: client.connected)
        run = client.start(start("v-slow"))
        await wait_for(lambda: run.run_id is not None)
        client.cancel(run, 504)
        client.cancel(run, 499)
        await wait_for(lambda: fake.cancels == [run.ref])
        assert fake.cancel_statuses == {run.ref: 504}
        assert client.open_runs == 0


async def test_draining_stops_new_runs_but_not_open_ones(runner):
    fake, target = runner
    async with client_for(target) as client:
        changes: list[bool] = []
        client.on_change = lambda: changes.append(client.accepting)
        await wait_for(lambda: client.accepting)
        open_run = client.start(start("v-slow"))
        await wait_for(lambda: open_run.run_id is not None)

        fake.drain()
        await wait_for(lambda: client.draining)
        assert client.connected and not client.accepting
        assert changes == [True, False]
        assert client.open_runs == 1 and not open_run.result.done()


async def test_stopping_the_client_fails_open_runs(runner):
    async with client_for(runner[1]) as client:
        await wait_for(lambda: client.connected)
        accepted = client.start(start("v-slow"))
        await wait_for(lambda: accepted.run_id is not None)
        not_accepted = client.start(start("v-slow"))
    # Accepted runs are lost (502 for the caller); the others never started (503).
    with pytest.raises(RunLost):
        await accepted.result
    with pytest.raises(RunnerUnavailable):
        await not_accepted.result


async def test_a_burst_of_large_bodies_goes_out_in_messages_of_at_most_4_mib(runner):
    fake, target = runner
    async with client_for(target) as client:
        await wait_for(lambda: client.connected)
        runs = [client.start(start("v-nocb", b"x" * MiB)) for _ in range(10)]
        await asyncio.gather(*(run.result for run in runs))

    assert MAX_MESSAGE_BYTES == 4 * MiB
    assert fake.batch_sizes == [3, 3, 3, 1]
    assert max(fake.batch_bytes) <= 4 * MiB
    assert [s.body for s in fake.starts] == [b"x" * MiB] * 10


async def test_an_event_over_the_limit_goes_alone(runner):
    fake, target = runner
    async with client_for(target) as client:
        await wait_for(lambda: client.connected)
        bodies = [b"a" * (3 * MiB), b"b" * (5 * MiB), b"c", b"d"]
        runs = [client.start(start("v-nocb", body)) for body in bodies]
        await asyncio.gather(*(run.result for run in runs))

    assert fake.batch_sizes == [1, 1, 2]
    assert [s.body[:1] for s in fake.starts] == [b"a", b"b", b"c", b"d"]


def test_split_keeps_every_event_in_order_and_counts_bytes_exactly() -> None:
    batch = runner_pb2.RunFlowRequest()
    for ref, size in enumerate([10, 3000, 20, 2500, 1, 1, 4000], start=1):
        batch.events.add(run_ref=ref, start=start("v", b"x" * size))
    batch.events.add(run_ref=1, cancel=runner_pb2.RunCancel(caller_status=504))

    parts = split_batch(batch, 4096)
    assert [[e.run_ref for e in p.events] for p in parts] == [[1, 2, 3], [4, 5, 6], [7, 1]]
    assert all(p.ByteSize() <= 4096 for p in parts)
    assert sum(p.ByteSize() for p in parts) == batch.ByteSize()
    assert split_batch(runner_pb2.RunFlowRequest(), 4096) == [runner_pb2.RunFlowRequest()]
