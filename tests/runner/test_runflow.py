"""RunnerService.RunFlow over a real in-process server: per-run event order, many runs per
stream and per message, run records, and what happens on failure, no callback and cancel."""

from __future__ import annotations

import asyncio
import json

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rns
from boomerang.v1 import runner_service_pb2 as rs
from tests.api.helpers import Stubs, struct

FLOWS = {
    "ok": [
        {"id": "trigger", "type": "trigger"},
        {"id": "map", "type": "map", "expression": "{sku: payload.sku, n: `1`}"},
        {"id": "reply", "type": "callback", "status": 201, "headers": {"x-shape": "yes"}},
        {"id": "after", "type": "map", "expression": "payload"},
    ],
    "fail": [
        {"id": "trigger", "type": "trigger"},
        {"id": "boom", "type": "map", "expression": "abs(payload.sku)"},
        {"id": "reply", "type": "callback"},
    ],
    "nocb": [
        {"id": "trigger", "type": "trigger"},
        {"id": "map", "type": "map", "expression": "payload"},
    ],
    "slow": [
        {"id": "trigger", "type": "trigger"},
        {"id": "wait", "type": "wait", "seconds": 0.3},
        {"id": "reply", "type": "callback"},
    ],
}


async def _deploy_all(s: Stubs, md) -> dict[str, tuple[str, str, str]]:
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="Acme", slug="acme"), metadata=md)
    out = {}
    for name, shapes in FLOWS.items():
        flow = (
            await s.flows.CreateFlow(
                fs.CreateFlowRequest(
                    company="acme", name=name, definition=struct({"shapes": shapes})
                ),
                metadata=md,
            )
        ).flow
        dep = await s.flows.DeployVersion(fs.DeployVersionRequest(flow_id=flow.id), metadata=md)
        cb = (
            await s.callbacks.CreateCallback(
                cbs.CreateCallbackRequest(flow_id=flow.id), metadata=md
            )
        ).callback
        out[name] = (flow.id, dep.version.id, cb.id)
    return out


def _start(ref: int, ids: tuple[str, str, str], body: bytes = b'{"sku": "A1"}', timeout_ms=5000):
    flow_id, version_id, callback_id = ids
    return rs.RunFlowClientEvent(
        run_ref=ref,
        start=rs.RunStart(
            company="acme",
            callback_id=callback_id,
            flow_id=flow_id,
            version_id=version_id,
            method="POST",
            headers=[rs.HttpHeader(name="content-type", value="application/json")],
            body=body,
            timeout_ms=timeout_ms,
        ),
    )


class Stream:
    def __init__(self, s: Stubs, md) -> None:
        self.out: asyncio.Queue = asyncio.Queue()
        self.call = s.runner.RunFlow(self._requests(), metadata=md)
        self.messages: list[rs.RunFlowResponse] = []

    async def _requests(self):
        while (item := await self.out.get()) is not None:
            yield item

    async def send(self, *events):
        await self.out.put(rs.RunFlowRequest(events=list(events)))

    async def events_until_outcomes(self, refs: set[int]) -> dict[int, list]:
        by_ref: dict[int, list] = {ref: [] for ref in refs}
        pending = set(refs)
        while pending:
            message = await asyncio.wait_for(self.call.read(), 5)
            self.messages.append(message)
            for event in message.events:
                kind = event.WhichOneof("event")
                by_ref[event.run_ref].append((kind, getattr(event, kind)))
                if kind == "outcome":
                    pending.discard(event.run_ref)
        return by_ref

    async def close(self):
        await self.out.put(None)


async def _run(plane, s, md, ref, ids, **kw):
    stream = Stream(s, md)
    await stream.send(_start(ref, ids, **kw))
    events = (await stream.events_until_outcomes({ref}))[ref]
    await stream.close()
    return events


async def test_run_answers_accepted_callback_outcome_in_order(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    events = await _run(plane, s, md, 7, ids)
    assert [k for k, _ in events] == ["accepted", "callback", "outcome"]
    run_id = events[0][1].run_id
    callback = events[1][1]
    assert callback.status_code == 201
    assert [(h.name, h.value) for h in callback.headers] == [("x-shape", "yes")]
    assert json.loads(callback.body) == [{"sku": "A1", "n": 1}]
    assert events[2][1].status == r.RUN_STATUS_SUCCEEDED

    run = (await s.runs.GetRun(rns.GetRunRequest(id=run_id), metadata=md)).run
    assert run.status == r.RUN_STATUS_SUCCEEDED and run.response_status == 201
    assert run.callback_id == ids[2] and run.version_id == ids[1] and run.flow_id == ids[0]
    assert [(sh.shape_id, sh.status) for sh in run.shapes] == [
        ("trigger", "ok"),
        ("map", "ok"),
        ("reply", "ok"),
        ("after", "ok"),  # the flow went on after the callback
    ]
    assert run.HasField("respond_time") and run.HasField("end_time")


async def test_failed_flow_and_no_callback(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    flows = await _deploy_all(s, md)
    failed = await _run(plane, s, md, 1, flows["fail"])
    assert [k for k, _ in failed] == ["accepted", "outcome"]
    assert (
        failed[1][1].status == r.RUN_STATUS_FAILED
        and failed[1][1].reason == r.RUN_REASON_FLOW_FAILED
    )
    assert "boom" in failed[1][1].error

    nocb = await _run(plane, s, md, 2, flows["nocb"])
    assert [k for k, _ in nocb] == ["accepted", "outcome"]
    assert nocb[1][1].reason == r.RUN_REASON_NO_CALLBACK

    run = (await s.runs.GetRun(rns.GetRunRequest(id=failed[0][1].run_id), metadata=md)).run
    assert run.status == r.RUN_STATUS_FAILED and run.response_status == 502
    assert [(sh.shape_id, sh.status) for sh in run.shapes] == [
        ("trigger", "ok"),
        ("boom", "failed"),
    ]


async def test_unknown_version_fails_without_a_run(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    flow_id, _, callback_id = (await _deploy_all(s, md))["ok"]
    events = await _run(plane, s, md, 3, (flow_id, "0" * 26, callback_id))
    assert [k for k, _ in events] == ["accepted", "outcome"]
    assert events[0][1].run_id == "" and events[1][1].reason == r.RUN_REASON_VERSION_NOT_FOUND


async def test_many_runs_share_one_stream_and_messages(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    flows = await _deploy_all(s, md)
    stream = Stream(s, md)
    refs = set(range(1, 51))
    await stream.send(
        *[_start(ref, flows["ok"], body=f'{{"sku": "S{ref}"}}'.encode()) for ref in refs]
    )
    by_ref = await stream.events_until_outcomes(refs)
    await stream.close()
    for ref in refs:
        assert [k for k, _ in by_ref[ref]] == ["accepted", "callback", "outcome"]
        assert json.loads(by_ref[ref][1][1].body) == [{"sku": f"S{ref}", "n": 1}]
    # 150 events; the writer packs whatever is queued, so far fewer messages than events.
    assert len(stream.messages) < 150 / 2


async def test_caller_timeout_is_recorded_and_the_run_completes(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["slow"]
    stream = Stream(s, md)
    await stream.send(_start(9, ids, timeout_ms=50))
    accepted = await asyncio.wait_for(stream.call.read(), 5)
    run_id = accepted.events[0].accepted.run_id
    await asyncio.sleep(0.1)
    await stream.send(rs.RunFlowClientEvent(run_ref=9, cancel=rs.RunCancel(caller_status=504)))
    await asyncio.sleep(0.5)  # the flow's wait shape ends; the run finishes server-side
    run = (await s.runs.GetRun(rns.GetRunRequest(id=run_id), metadata=md)).run
    assert run.status == r.RUN_STATUS_SUCCEEDED and run.response_status == 504
    assert [sh.shape_id for sh in run.shapes] == ["trigger", "wait", "reply"]
    await stream.close()


async def test_a_cancel_before_the_run_starts_is_what_the_record_says(plane):
    # The edge may give up (its timeout, the caller leaving) while the runner is still loading
    # the version: the status it gave the caller must still be the run's response_status.
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    stream = Stream(s, md)
    await stream.send(
        _start(4, ids), rs.RunFlowClientEvent(run_ref=4, cancel=rs.RunCancel(caller_status=499))
    )
    await asyncio.sleep(0.5)
    await stream.close()
    runs = (await s.runs.ListRuns(rns.ListRunsRequest(company="acme"), metadata=md)).runs
    assert [(x.status, x.response_status) for x in runs] == [(r.RUN_STATUS_SUCCEEDED, 499)]


async def test_an_oversize_callback_fails_its_run_and_spares_the_stream(plane):
    # Five copies of a 1 MiB body: over the 4 MiB callback budget, never written to the stream
    # that other runs share; the next run on the same stream is answered.
    s, md = Stubs.on(plane.channel), plane.metadata()
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="B", slug="big"), metadata=md)
    flow = (
        await s.flows.CreateFlow(
            fs.CreateFlowRequest(
                company="big",
                name="big",
                definition=struct(
                    {
                        "shapes": [
                            {"id": "t", "type": "trigger"},
                            {
                                "id": "m",
                                "type": "map",
                                "expression": "[payload, payload, payload, payload, payload]",
                            },
                            {"id": "reply", "type": "callback"},
                        ]
                    }
                ),
            ),
            metadata=md,
        )
    ).flow
    dep = await s.flows.DeployVersion(fs.DeployVersionRequest(flow_id=flow.id), metadata=md)
    cb = (
        await s.callbacks.CreateCallback(cbs.CreateCallbackRequest(flow_id=flow.id), metadata=md)
    ).callback
    ok_ids = (await _deploy_all(s, md))["ok"]
    big = rs.RunFlowClientEvent(
        run_ref=1,
        start=rs.RunStart(
            company="big",
            callback_id=cb.id,
            flow_id=flow.id,
            version_id=dep.version.id,
            method="POST",
            body=json.dumps("z" * (1 << 20)).encode(),
            timeout_ms=5000,
        ),
    )
    stream = Stream(s, md)
    await stream.send(big, _start(2, ok_ids))
    by_ref = await stream.events_until_outcomes({1, 2})
    await stream.close()
    assert [k for k, _ in by_ref[1]] == ["accepted", "outcome"]
    assert by_ref[1][1][1].reason == r.RUN_REASON_BUDGET_CALLBACK_SIZE
    assert [k for k, _ in by_ref[2]] == ["accepted", "callback", "outcome"]


async def test_a_database_that_fails_the_commit_gets_the_caller_an_answer_now(plane, monkeypatch):
    # Nothing could be recorded, so no run id is given, and the caller is not left waiting for
    # its timeout.
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]

    def broken(*args) -> None:
        raise RuntimeError("the database is gone")

    # A flush is written on a thread (_write) or, on PostgreSQL, on the loop (_flush_sql).
    monkeypatch.setattr("control_plane.runs.journal._write", broken)
    monkeypatch.setattr("control_plane.runs.journal._flush_sql", broken)
    events = await _run(plane, s, md, 5, ids)
    assert [k for k, _ in events] == ["accepted", "outcome"]
    assert events[0][1].run_id == "" and events[1][1].reason == r.RUN_REASON_INTERNAL


async def test_a_finished_run_leaves_no_garbage_for_the_cyclic_collector(plane):
    """A run's objects are freed by reference counting once it ends: under load, reference
    cycles per run (run <-> stream run, run <-> its child starter) made the cyclic GC run often,
    and its collections held the loop for milliseconds (docs/design.md §3, "Garbage")."""
    import gc

    s, md = Stubs.on(plane.channel), plane.metadata()
    flows = await _deploy_all(s, md)
    await _run(plane, s, md, 1, flows["ok"])  # warm: first-use caches are not per-run garbage
    driver = plane.plane.driver
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        stream = Stream(s, md)
        refs = set(range(1, 21))
        await stream.send(*[_start(ref, flows[("ok", "fail", "nocb")[ref % 3]]) for ref in refs])
        await stream.events_until_outcomes(refs)
        for _ in range(100):
            if not driver.runs:
                break
            await asyncio.sleep(0.01)
        await stream.close()
        gc.collect()
        leaked = sorted(
            {type(o).__name__ for o in gc.garbage}
            & {"ActiveRun", "_StreamRun", "RunState", "RunRecord", "RunInput", "Meter"}
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert not driver.runs and leaked == []
