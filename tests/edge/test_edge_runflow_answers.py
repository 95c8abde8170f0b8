"""The RunFlow client and pool with kept answers, against real loopback gRPC fake runners: which
events answer a run, `detach` (also after failover), and GetRunAnswer across runners."""

from __future__ import annotations

import asyncio
import contextlib

import grpc
import pytest
from edge_fakes import API_KEY, Kept, dead_target, status_token, wait_for

from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge.app import CHANNEL_OPTIONS
from edge.backoff import Backoff
from edge.runflow_client import RunFlowClient, RunnerUnavailable
from edge.runner_pool import RunnerPool

ASYNC = runner_pb2.ANSWER_MODE_ASYNC
WEBHOOK = runner_pb2.ANSWER_MODE_WEBHOOK


def start(version: str, mode: int = 0, key: str = "") -> runner_pb2.RunStart:
    return runner_pb2.RunStart(
        company="acme",
        callback_id="cb",
        version_id=version,
        answer_mode=mode,
        idempotency_key=key,
        request_fingerprint=b"f" * 32 if key else b"",
        content_type="text/csv",
    )


@contextlib.asynccontextmanager
async def pool_for(*targets: str):
    channels = [grpc.aio.insecure_channel(t, options=CHANNEL_OPTIONS) for t in targets]
    clients = [
        RunFlowClient(channel, api_key=API_KEY, name=t, backoff=Backoff(base_s=0.01, cap_s=0.05))
        for t, channel in zip(targets, channels, strict=True)
    ]
    pool = RunnerPool(clients, connect_grace_s=0.5, channels=channels)
    task = asyncio.create_task(pool.keep_connected())
    try:
        yield pool
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()


async def test_an_async_start_is_answered_by_accepted_with_its_token(runner):
    fake, target = runner
    async with pool_for(target) as pool:
        await wait_for(lambda: pool.connected)
        run = pool.run(start("v-ok", ASYNC))
        accepted = await run.result()
        assert isinstance(accepted, runner_pb2.RunAccepted)
        assert (accepted.run_id, accepted.status_token) == ("run-1", status_token("run-1"))
        run.cancel(202)
        await wait_for(lambda: fake.cancel_statuses == {1: 202})


async def test_a_webhook_start_is_answered_by_accepted_alone(runner):
    async with pool_for(runner[1]) as pool:
        await wait_for(lambda: pool.connected)
        accepted = await pool.run(start("v-slow", WEBHOOK)).result()
        assert isinstance(accepted, runner_pb2.RunAccepted) and accepted.run_id == "run-1"


async def test_an_async_start_accepted_without_a_token_waits_for_the_callback(runner):
    # A runner that predates answer modes runs it as WAIT: the caller still gets an answer.
    fake, target = runner
    async with pool_for(target) as pool:
        await wait_for(lambda: pool.connected)
        play = fake._play

        def old_runner(ref, new_start, out):
            old_start = runner_pb2.RunStart()
            old_start.CopyFrom(new_start)
            old_start.ClearField("answer_mode")  # a runner that does not know the field
            return play(ref, old_start, out)

        fake._play = old_runner
        result = await pool.run(start("v-ok", ASYNC)).result()
        assert isinstance(result, runner_pb2.RunCallback) and result.status_code == 201


async def test_a_not_started_async_start_waits_for_the_outcome(runner):
    fake, target = runner
    fake.answers_full = True
    async with pool_for(target) as pool:
        await wait_for(lambda: pool.connected)
        result = await pool.run(start("v-ok", ASYNC)).result()
        assert isinstance(result, runner_pb2.RunOutcome)


async def test_replay_ends_the_run_ref(runner):
    fake, target = runner
    async with pool_for(target) as pool:
        await wait_for(lambda: pool.connected)
        first = await pool.run(start("v-ok", key="k")).result()
        assert isinstance(first, runner_pb2.RunCallback)
        again = await pool.run(start("v-ok", key="k")).result()
        assert isinstance(again, runner_pb2.RunReplay)
        assert again.run_id == "run-1" and again.answer.callback == first
        assert again.answer.content_type == "text/csv"
        assert pool.open_runs == 0 and len(fake.run_ids) == 1


async def test_detach_is_sent_when_due_and_detached_answers(runner):
    fake, target = runner
    async with pool_for(target) as pool:
        await wait_for(lambda: pool.connected)
        loop = asyncio.get_running_loop()
        began = loop.time()
        result = await pool.run(start("v-slow")).result(detach_at=began + 0.2)
        assert loop.time() - began >= 0.2
        assert result == runner_pb2.RunDetached(status_token=status_token("run-1"))
        assert fake.detaches == [1] and pool.open_runs == 0


async def test_no_detach_for_a_run_that_answered_first(runner):
    fake, target = runner
    async with pool_for(target) as pool:
        await wait_for(lambda: pool.connected)
        loop = asyncio.get_running_loop()
        result = await pool.run(start("v-ok")).result(detach_at=loop.time() + 0.1)
        assert isinstance(result, runner_pb2.RunCallback)
        await asyncio.sleep(0.2)
        assert fake.detaches == []


async def test_a_run_moved_to_another_runner_is_detached_there_too(two_runners):
    a, b = two_runners
    a.fake.draining = True  # refuses every start with RUN_REASON_RUNNER_DRAINING
    async with pool_for(a.server.target, b.server.target) as pool:
        await wait_for(lambda: all(c.accepting for c in pool.clients))
        pool._turn = 0  # runner a first
        loop = asyncio.get_running_loop()
        result = await pool.run(start("v-slow")).result(detach_at=loop.time() - 1)
        assert result == runner_pb2.RunDetached(status_token=status_token("b-run-1"))
        assert len(a.fake.starts) == 1 and len(b.fake.starts) == 1
        assert b.fake.detaches == [1]


async def test_run_answer_asks_the_next_runner_when_one_fails(two_runners):
    a, b = two_runners
    token = status_token("run-1")
    kept = runner_pb2.StoredAnswer(callback=runner_pb2.RunCallback(status_code=200, body=b"x"))
    b.fake.answers[token] = Kept("acme", "run-1", "", kept)
    a.fake.lookups_fail = True
    async with pool_for(a.server.target, b.server.target) as pool:
        await wait_for(lambda: all(c.connected for c in pool.clients))
        pool._turn = 0
        found = await pool.run_answer("acme", token)
        assert found is not None and found.run_id == "run-1" and found.answer == kept
        assert len(a.fake.lookups) == 1 and len(b.fake.lookups) == 1
        assert await pool.run_answer("globex", token) is None  # NOT_FOUND: not another's
        b.fake.lookups_fail = True
        with pytest.raises(RunnerUnavailable):
            await pool.run_answer("acme", token)


async def test_run_answer_without_a_connected_runner_is_unavailable():
    async with pool_for(dead_target()) as pool:
        with pytest.raises(RunnerUnavailable):
            await pool.run_answer("acme", status_token("run-1"))
