"""RunFlowClient against a real loopback gRPC server: batching, dispatch, failure, cancel."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from edge_fakes import API_KEY, dead_target, wait_for

from boomerang.v1 import resources_pb2
from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge.backoff import Backoff
from edge.runflow_client import RunFlowClient, RunLost, RunnerUnavailable


@contextlib.asynccontextmanager
async def client_for(target: str):
    channel = grpc.aio.insecure_channel(target)
    client = RunFlowClient(channel, api_key=API_KEY, backoff=Backoff(base_s=0.01, cap_s=0.05))
    task = asyncio.create_task(client.run())
    try:
        yield client
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await channel.close()


def start(version: str) -> runner_pb2.RunStart:
    return runner_pb2.RunStart(company="acme", callback_id="cb", version_id=version)


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
