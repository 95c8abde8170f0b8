"""An edge with several runners: spreading, draining, failover, over real HTTP and real gRPC."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from edge_fakes import CB_OK, CB_WAIT, RUN_ID, error, signed, wait_for
from prometheus_client.parser import text_string_to_metric_families

from edge.runflow_client import RunnerUnavailable
from edge.runner_pool import RunnerPool


@pytest.fixture
async def edge2(start_edge, sync, two_runners):
    """An edge in sync, with streams open to both fake runners."""
    a, b = two_runners
    edge = await start_edge(sync_target=sync[1], runner_target=(a.server.target, b.server.target))
    await wait_for(lambda: all(c.accepting for c in edge.app.ctx.runners.clients))
    yield edge
    await edge.stop()


def client_for(edge, runner):
    (client,) = [c for c in edge.app.ctx.runners.clients if c.name == runner.server.target]
    return client


async def get_all(edge, n: int, callback_id: str = CB_OK):
    return await asyncio.gather(*(edge.client.get(signed(callback_id, n=str(i))) for i in range(n)))


async def test_runs_are_spread_over_both_runners(edge2, two_runners):
    a, b = two_runners
    for i in range(10):  # one at a time: every runner has 0 open runs, so they take turns
        assert (await edge2.client.get(signed(CB_OK, n=str(i)))).status_code == 201
    assert len(a.fake.starts) == len(b.fake.starts) == 5

    responses = await get_all(edge2, 30)
    assert [r.status_code for r in responses] == [201] * 30
    assert len(a.fake.starts) > 5 and len(b.fake.starts) > 5
    assert len(a.fake.starts) + len(b.fake.starts) == 40


async def test_a_draining_runner_gets_no_new_runs_until_its_stream_is_new(edge2, two_runners):
    a, b = two_runners
    a.fake.drain()
    await wait_for(lambda: client_for(edge2, a).draining)
    ready = (await edge2.client.get("/readyz")).json()
    assert ready["runner_connected"] is True
    assert ready["runners"] == {a.server.target: "draining", b.server.target: "up"}

    responses = await get_all(edge2, 20)
    assert [r.status_code for r in responses] == [201] * 20
    assert all(r.headers[RUN_ID].startswith("b-") for r in responses)
    assert (len(a.fake.starts), len(b.fake.starts)) == (0, 20)

    # The runner restarts (same address): its new stream takes runs again.
    await a.server.stop()
    a.fake.draining = False
    await a.server.start()
    await wait_for(lambda: client_for(edge2, a).accepting)
    await get_all(edge2, 10)
    assert len(a.fake.starts) > 0


async def test_starts_refused_as_draining_are_started_on_the_other_runner(edge2, two_runners):
    a, b = two_runners
    a.fake.draining = True  # refuses starts without having said `draining` first

    responses = await get_all(edge2, 20)
    assert [r.status_code for r in responses] == [201] * 20
    assert all(r.headers[RUN_ID].startswith("b-") for r in responses)
    assert len(a.fake.starts) >= 1  # refused there...
    assert len(b.fake.starts) == 20  # ...and run here, once each
    assert client_for(edge2, a).draining  # the refusal counts as `draining`


async def test_runs_not_yet_accepted_when_a_runner_dies_run_on_the_other(edge2, two_runners):
    a, b = two_runners
    a.fake.hold = True  # takes starts, never accepts them

    pending = asyncio.gather(*(edge2.client.get(signed(CB_OK, n=str(i))) for i in range(10)))
    await wait_for(
        lambda: len(a.fake.starts) >= 1 and len(a.fake.starts) + len(b.fake.starts) == 10
    )
    held = len(a.fake.starts)
    await a.server.stop()

    responses = await pending
    assert [r.status_code for r in responses] == [201] * 10
    assert all(r.headers[RUN_ID].startswith("b-") for r in responses)
    assert len(b.fake.starts) == 10  # its own 10 - held, plus the held ones started again
    assert held >= 1 and len(a.fake.starts) == held


async def test_an_accepted_run_whose_runner_dies_is_502_run_lost(edge2, two_runners):
    waiting = asyncio.create_task(edge2.client.get(signed(CB_WAIT)))
    await wait_for(lambda: any(r.fake.run_ids for r in two_runners))
    (owner,) = [r for r in two_runners if r.fake.run_ids]
    (other,) = [r for r in two_runners if r is not owner]
    await owner.server.stop()

    (run_id,) = owner.fake.run_ids.values()
    error(await waiting, 502, "run_lost", run_id=run_id)
    assert other.fake.starts == []  # accepted: it is not started twice
    # New runs go to the runner that is left.
    assert (await edge2.client.get(signed(CB_OK))).headers[RUN_ID].startswith(other.fake.prefix)


async def test_with_every_runner_down_the_caller_gets_503(edge2, two_runners):
    for runner in two_runners:
        await runner.server.stop()
    await wait_for(lambda: not edge2.app.ctx.runners.connected)

    loop = asyncio.get_running_loop()
    began = loop.time()
    r = await edge2.client.get(signed(CB_OK))
    waited = loop.time() - began

    error(r, 503, "runner_unavailable")
    assert 0.9 <= waited < 3  # the grace for a stream to come back, then no longer
    assert (await edge2.client.get("/readyz")).json()["runner_connected"] is False


async def test_metrics_show_each_runner(edge2, two_runners):
    a, b = two_runners
    waiting = asyncio.create_task(edge2.client.get(signed(CB_WAIT)))
    await wait_for(lambda: edge2.app.ctx.runners.open_runs == 1)
    a.fake.drain()
    await wait_for(lambda: client_for(edge2, a).draining)

    text = (await edge2.client.get("/metrics")).text
    m = {
        (s.name, tuple(s.labels.values())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    assert m[("boomerang_edge_runner_connected", ())] == 1
    assert m[("boomerang_edge_open_runs", ())] == 1
    assert m[("boomerang_edge_runner_accepting", (a.server.target,))] == 0
    assert m[("boomerang_edge_runner_accepting", (b.server.target,))] == 1
    open_runs = [m[("boomerang_edge_runner_open_runs", (r.server.target,))] for r in (a, b)]
    assert sorted(open_runs) == [0, 1]
    waiting.cancel()


@dataclass
class StubClient:
    """What `pick` reads of a RunFlowClient."""

    name: str
    accepting: bool = True
    open_runs: int = 0


def test_pick_prefers_fewest_open_runs_and_takes_turns_on_ties() -> None:
    a, b, c = StubClient("a"), StubClient("b"), StubClient("c")
    pool = RunnerPool([a, b, c])  # type: ignore[list-item]
    assert [pool.pick().name for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]

    a.open_runs, b.open_runs, c.open_runs = 2, 1, 3
    assert {pool.pick().name for _ in range(3)} == {"b"}
    assert pool.pick(exclude=(b,)) is a

    b.accepting = False
    assert {pool.pick().name for _ in range(3)} == {"a"}
    a.accepting = c.accepting = False
    assert pool.pick() is None


async def test_wait_for_runner_gives_up_after_the_grace_or_when_all_were_tried() -> None:
    a = StubClient("a", accepting=False)
    pool = RunnerPool([a], connect_grace_s=0.05)  # type: ignore[list-item]
    with pytest.raises(RunnerUnavailable):
        await pool.wait_for_runner()

    waiting = asyncio.create_task(pool.wait_for_runner())
    await asyncio.sleep(0.01)
    a.accepting = True
    a.on_change()  # as a RunFlowClient does when its stream opens
    assert await waiting is a

    with pytest.raises(RunnerUnavailable):
        await pool.wait_for_runner(exclude=(a,))
