"""Kept answers through the real RunnerService on loopback, on every backend: Idempotency-Key
claims (one run per key, replays, mismatches, pending keys, expiry, racing starts), async answers
and GetRunAnswer, detach, webhook mode resumed from its start, the answer_bytes quota, retention
and DeleteCompany."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json

import grpc
import pytest

from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rns
from boomerang.v1 import runner_service_pb2 as rs
from control_plane.domain import quotas
from control_plane.domain.tenancy import Principal
from control_plane.runs import answers
from control_plane.runs.driver import RunDriver
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import AnswerUsage, Company, KeptAnswer, Run, RunTask
from tests.api.helpers import Stubs, failure
from tests.runner import test_runflow
from tests.runner.test_runflow import FLOWS, Stream, _start

FINGERPRINT = hashlib.sha256(b"POST\n\n{}").digest()
ADMIN = Principal(key_id="test", company_id=None)

# The runflow tests' flows, and one that needs its request body: abs(null) fails, so a run
# that lost its body fails.
ANSWER_FLOWS = {
    **FLOWS,
    "needs_body": [
        {"id": "trigger", "type": "trigger"},
        {"id": "map", "type": "map", "expression": "abs(payload.n)"},
        {"id": "reply", "type": "callback", "status": 200},
    ],
    "slow_tail": [
        {"id": "trigger", "type": "trigger"},
        {"id": "reply", "type": "callback"},
        {"id": "wait", "type": "wait", "seconds": 0.5},
    ],
}


async def _deploy_all(s: Stubs, md) -> dict[str, tuple[str, str, str]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_runflow, "FLOWS", ANSWER_FLOWS)
        return await test_runflow._deploy_all(s, md)


def _keyed(ref, ids, key="key-1", *, fingerprint=FINGERPRINT, mode=rs.ANSWER_MODE_WAIT, **kw):
    event = _start(ref, ids, **kw)
    event.start.idempotency_key = key
    event.start.request_fingerprint = fingerprint
    event.start.answer_mode = mode
    event.start.content_type = "application/json"
    return event


async def _events(stream: Stream, refs: set[int], last=("outcome", "replay", "detached")):
    """Events per ref until each ref's last event (outcome, replay or detached)."""
    by_ref: dict[int, list] = {ref: [] for ref in refs}
    pending = set(refs)
    while pending:
        message = await asyncio.wait_for(stream.call.read(), 10)
        for event in message.events:
            kind = event.WhichOneof("event")
            by_ref[event.run_ref].append((kind, getattr(event, kind)))
            if kind in last:
                pending.discard(event.run_ref)
    return by_ref


async def _one(s, md, event) -> list:
    stream = Stream(s, md)
    await stream.send(event)
    got = (await _events(stream, {event.run_ref}))[event.run_ref]
    await stream.close()
    return got


def _db():
    database.connect(reuse_if_open=True)


def _runs() -> int:
    _db()
    return Run.select().count()


def _usage_is_the_rows_sum() -> int:
    """The usage counter equals the bytes its rows count: nothing leaks either way."""
    _db()
    total = sum(row.bytes for row in KeptAnswer.select())
    used = sum(row.bytes for row in AnswerUsage.select())
    assert used == total
    return used


async def _answer(s, md, status_token: str, company: str = "acme") -> rs.GetRunAnswerResponse:
    request = rs.GetRunAnswerRequest(company=company, status_token=status_token)
    return await s.runner.GetRunAnswer(request, metadata=md)


async def _until_answered(s, md, status_token: str) -> rs.GetRunAnswerResponse:
    async with asyncio.timeout(10):
        while True:
            got = await _answer(s, md, status_token)
            if got.HasField("answer"):
                return got
            await asyncio.sleep(0.05)


async def _missing(s, md, status_token: str, company: str = "acme") -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _answer(s, md, status_token, company)
    got = failure(caught.value)
    assert (got.code, got.reason) == (grpc.StatusCode.NOT_FOUND, "ERROR_REASON_RUN_NOT_FOUND")


async def test_the_same_key_twice_is_one_run_and_the_same_answer(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    first = await _one(s, md, _keyed(1, ids))
    assert [k for k, _ in first] == ["accepted", "callback", "outcome"]
    run_id, callback = first[0][1].run_id, first[1][1]

    again = await _one(s, md, _keyed(2, ids))
    assert [k for k, _ in again] == ["accepted", "replay"]
    assert again[0][1].run_id == ""
    replay = again[1][1]
    assert replay.run_id == run_id
    assert replay.answer.callback == callback  # status, headers and body, byte for byte
    assert replay.answer.content_type == "application/json"
    assert _runs() == 1
    # Another key, or none, is another run.
    assert (await _one(s, md, _keyed(3, ids, key="key-2")))[0][1].run_id not in ("", run_id)
    assert _runs() == 2
    _usage_is_the_rows_sum()


async def test_the_same_key_with_another_request_is_a_mismatch(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    await _one(s, md, _keyed(1, ids))
    other = hashlib.sha256(b"POST\n\n{other}").digest()
    got = await _one(s, md, _keyed(2, ids, fingerprint=other))
    assert [k for k, _ in got] == ["accepted", "outcome"]
    assert got[0][1].run_id == "" and got[1][1].reason == r.RUN_REASON_IDEMPOTENCY_MISMATCH
    assert _runs() == 1


async def test_a_key_whose_run_has_not_answered_replays_without_an_answer(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["slow"]
    stream = Stream(s, md)
    await stream.send(_keyed(1, ids))
    accepted = await asyncio.wait_for(stream.call.read(), 5)
    run_id = accepted.events[0].accepted.run_id
    pending = await _one(s, md, _keyed(2, ids))
    assert [k for k, _ in pending] == ["accepted", "replay"]
    assert pending[1][1].run_id == run_id and not pending[1][1].HasField("answer")
    await _events(stream, {1})
    await stream.close()
    done = await _one(s, md, _keyed(3, ids))
    assert done[1][1].answer.callback.status_code == 200


async def test_a_timed_out_first_caller_leaves_the_key_the_real_answer(plane):
    # The edge answered the first caller 504 (cancel); a retry then gets what the run answered.
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["slow"]
    stream = Stream(s, md)
    await stream.send(_keyed(1, ids, timeout_ms=50))
    await asyncio.wait_for(stream.call.read(), 5)
    await stream.send(rs.RunFlowClientEvent(run_ref=1, cancel=rs.RunCancel(caller_status=504)))
    async with asyncio.timeout(10):
        while True:
            got = await _one(s, md, _keyed(2, ids))
            if got[1][1].HasField("answer"):
                break
            await asyncio.sleep(0.05)
    assert got[1][1].answer.callback.status_code == 200
    await stream.close()


async def test_an_expired_key_is_claimed_afresh(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    first = (await _one(s, md, _keyed(1, ids)))[0][1].run_id
    _db()
    KeptAnswer.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    again = await _one(s, md, _keyed(2, ids, fingerprint=b"another request"))
    assert [k for k, _ in again] == ["accepted", "callback", "outcome"]
    assert again[0][1].run_id not in ("", first)
    _db()
    assert [row.run_id for row in KeptAnswer.select()] == [again[0][1].run_id]
    _usage_is_the_rows_sum()


async def test_racing_starts_with_one_key_make_exactly_one_run(plane):
    # Twenty starts of one key at once, over four streams: one run, nineteen replays of it.
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["slow"]
    streams = [Stream(s, md) for _ in range(4)]
    refs = [set(range(i * 5 + 1, i * 5 + 6)) for i in range(4)]
    for stream, mine in zip(streams, refs, strict=True):
        await stream.send(*[_keyed(ref, ids) for ref in mine])
    results = await asyncio.gather(
        *(_events(st, mine) for st, mine in zip(streams, refs, strict=True))
    )
    for stream in streams:
        await stream.close()
    events = [got for by_ref in results for got in by_ref.values()]
    runs = {got[0][1].run_id for got in events if got[0][1].run_id}
    assert len(runs) == 1
    replays = [got[1][1] for got in events if got[1][0] == "replay"]
    assert len(replays) == 19 and {x.run_id for x in replays} == runs
    assert _runs() == 1


async def test_an_async_run_is_accepted_with_a_token_and_answers_at_its_status_url(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["slow"]
    stream = Stream(s, md)
    await stream.send(_keyed(1, ids, key="", mode=rs.ANSWER_MODE_ASYNC))
    message = await asyncio.wait_for(stream.call.read(), 5)
    accepted = message.events[0].accepted
    assert accepted.run_id and len(accepted.status_token) == 78
    assert accepted.status_token.startswith(accepted.run_id)
    await stream.send(rs.RunFlowClientEvent(run_ref=1, cancel=rs.RunCancel(caller_status=202)))
    pending = await _answer(s, md, accepted.status_token)
    assert pending.run_id == accepted.run_id and not pending.HasField("answer")
    done = await _until_answered(s, md, accepted.status_token)
    assert done.answer.callback.status_code == 200
    assert json.loads(done.answer.callback.body) == [{"sku": "A1"}]
    assert done.answer.content_type == "application/json"
    run = (await s.runs.GetRun(rns.GetRunRequest(id=accepted.run_id), metadata=md)).run
    assert run.response_status == 202
    await stream.close()
    _usage_is_the_rows_sum()


async def test_an_async_run_that_fails_keeps_its_error(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["fail"]
    got = await _one(s, md, _keyed(1, ids, key="", mode=rs.ANSWER_MODE_ASYNC))
    token = got[0][1].status_token
    done = await _until_answered(s, md, token)
    assert done.answer.outcome.reason == r.RUN_REASON_FLOW_FAILED


async def test_an_async_key_repeats_its_202(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    first = await _one(s, md, _keyed(1, ids, mode=rs.ANSWER_MODE_ASYNC))
    token = first[0][1].status_token
    again = await _one(s, md, _keyed(2, ids, mode=rs.ANSWER_MODE_ASYNC))
    assert again[1][1].answer.queued.status_token == token


async def test_a_status_token_is_found_only_whole_for_its_company_and_in_time(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="B", slug="beta"), metadata=md)
    token = (await _one(s, md, _keyed(1, ids, key="", mode=rs.ANSWER_MODE_ASYNC)))[0][1]
    token = token.status_token
    await _until_answered(s, md, token)
    flipped = token[:-1] + ("a" if token[-1] != "a" else "b")
    await _missing(s, md, flipped)
    await _missing(s, md, token, company="beta")
    await _missing(s, md, token, company="nope")
    for malformed in ("", token[:-1], token + "a", token.upper(), "\x00" * 78):
        await _missing(s, md, malformed)
    _db()
    KeptAnswer.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    await _missing(s, md, token)


async def test_detach_before_the_callback_keeps_the_answer_for_a_status_url(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["slow"]
    stream = Stream(s, md)
    await stream.send(_start(1, ids))
    accepted = (await asyncio.wait_for(stream.call.read(), 5)).events[0].accepted
    await stream.send(rs.RunFlowClientEvent(run_ref=1, detach=rs.RunDetach()))
    got = (await _events(stream, {1}))[1]
    assert [k for k, _ in got] == ["detached"]  # and nothing after it
    token = got[0][1].status_token
    assert token.startswith(accepted.run_id)
    done = await _until_answered(s, md, token)
    assert done.answer.callback.status_code == 200
    run = (await s.runs.GetRun(rns.GetRunRequest(id=accepted.run_id), metadata=md)).run
    assert run.response_status == 202
    await asyncio.sleep(0.2)
    with pytest.raises(TimeoutError):  # no callback or outcome follows `detached`
        await asyncio.wait_for(stream.call.read(), 0.3)
    await stream.close()
    _usage_is_the_rows_sum()


async def test_a_detach_after_the_callback_is_ignored(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["slow_tail"]
    stream = Stream(s, md)
    await stream.send(_start(1, ids))
    seen = []
    while "callback" not in seen:
        message = await asyncio.wait_for(stream.call.read(), 5)
        seen += [e.WhichOneof("event") for e in message.events]
    await stream.send(rs.RunFlowClientEvent(run_ref=1, detach=rs.RunDetach()))
    seen += [k for k, _ in (await _events(stream, {1}))[1]]
    assert seen == ["accepted", "callback", "outcome"]
    await stream.close()
    _db()
    assert KeptAnswer.select().count() == 0


async def test_a_detach_racing_the_callback_gives_the_edge_one_consistent_answer(plane):
    # Sent a little after the start, later each time: the run may answer first (the edge gets
    # the callback, no detached) or the detach may win (detached only, and the status URL gets
    # the callback). Either way the edge and the kept answer agree.
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    for ref in range(1, 13):
        stream = Stream(s, md)
        await stream.send(_start(ref, ids))
        await asyncio.sleep((ref - 1) * 0.002)
        await stream.send(rs.RunFlowClientEvent(run_ref=ref, detach=rs.RunDetach()))
        got = (await _events(stream, {ref}))[ref]
        kinds = [k for k, _ in got]
        if "detached" in kinds:
            assert kinds == ["accepted", "detached"]
            done = await _until_answered(s, md, got[1][1].status_token)
            assert done.answer.callback.status_code == 201
        else:
            assert kinds == ["accepted", "callback", "outcome"]
        await stream.close()


async def test_a_webhook_run_is_durable_before_202_and_resumed_from_its_start(plane, monkeypatch):
    # The runner "dies" right after `accepted`: its run hangs and its lease is left to expire
    # (owner changed so this process does not renew it). The queue hands the run to a runner
    # (this process's loop, as another runner would), which starts it over from the checkpoint
    # written with the claim: the body is in it, so the trigger sees the request.
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["needs_body"]
    original, calls = RunDriver._tail, []

    async def dies_the_first_time(self, run):
        calls.append(run.record.id)
        if len(calls) == 1:
            _db()
            RunTask.update(owner="dead", lease_until=utcnow()).execute()
            await asyncio.Event().wait()  # never resumes here
        return await original(self, run)

    monkeypatch.setattr(RunDriver, "_tail", dies_the_first_time)
    event = _keyed(1, ids, mode=rs.ANSWER_MODE_WEBHOOK, body=b'{"n": -3}')
    stream = Stream(s, md)
    await stream.send(event)
    accepted = (await asyncio.wait_for(stream.call.read(), 5)).events[0].accepted
    assert accepted.run_id and accepted.status_token == ""
    await stream.send(rs.RunFlowClientEvent(run_ref=1, cancel=rs.RunCancel(caller_status=202)))
    async with asyncio.timeout(10):
        while True:
            run = (await s.runs.GetRun(rns.GetRunRequest(id=accepted.run_id), metadata=md)).run
            if run.status == r.RUN_STATUS_SUCCEEDED:
                break
            assert run.status in (r.RUN_STATUS_RUNNING, r.RUN_STATUS_RESPONDED)
            await asyncio.sleep(0.1)
    assert calls == [accepted.run_id, accepted.run_id]
    assert run.attempts == 2 and run.response_status == 202
    assert [x.shape_id for x in run.shapes] == ["trigger", "map", "reply"]
    # A repeat of the key gets 202 again, without a run.
    again = await _one(s, md, _keyed(2, ids, mode=rs.ANSWER_MODE_WEBHOOK, body=b'{"n": -3}'))
    assert again[1][1].run_id == accepted.run_id and again[1][1].answer.HasField("queued")
    await stream.close()


async def test_answer_bytes_refuses_new_claims_and_pruning_frees_room(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    await _one(s, md, _keyed(1, ids))
    kept = _usage_is_the_rows_sum()
    assert kept > answers.RESERVE_BYTES  # the reservation and the kept callback
    _db()
    company_id = Company.get(Company.slug == "acme").id
    quotas.set_quotas(ADMIN, "acme", quotas.Quotas(answer_bytes=64 << 10), ["answer_bytes"])
    AnswerUsage.update(bytes=(64 << 10) - 100).execute()  # as if other answers were kept
    refused = await _one(s, md, _keyed(2, ids, key="key-2"))
    assert [k for k, _ in refused] == ["accepted", "outcome"]
    assert refused[0][1].run_id == "" and refused[1][1].reason == r.RUN_REASON_ANSWERS_QUOTA
    assert _runs() == 1
    # A run without a key needs no room.
    assert (await _one(s, md, _start(3, ids)))[0][1].run_id
    # Its retention over, the answer is pruned and its bytes leave the usage.
    _db()
    KeptAnswer.update(expires_at=utcnow() - dt.timedelta(seconds=1)).execute()
    assert await plane.plane.retention.sweep_answers() == 1
    _db()
    assert answers.usage(company_id) == (64 << 10) - 100 - kept
    assert KeptAnswer.select().count() == 0


def test_prune_takes_only_expired_answers_in_batches(db):
    from tests.runner.test_queue import _company

    company_id = _company()
    now = utcnow()
    for i in range(5):
        KeptAnswer.create(
            run_id=f"{i:026d}",
            company=company_id,
            callback_id="c" * 26,
            idempotency_key=f"k{i}",
            request_fingerprint=b"",
            bytes=100,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=-10 if i < 3 else 10),
        )
    AnswerUsage.create(company=company_id, bytes=500)
    assert answers.prune(now, batch=2) == 3
    assert sorted(row.run_id for row in KeptAnswer.select()) == [f"{i:026d}" for i in (3, 4)]
    assert answers.usage(company_id) == 200


async def test_delete_company_removes_its_kept_answers(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    await _one(s, md, _keyed(1, ids))
    _db()
    assert KeptAnswer.select().count() == 1 and AnswerUsage.select().count() == 1
    await s.companies.DeleteCompany(cs.DeleteCompanyRequest(slug="acme"), metadata=md)
    _db()
    assert KeptAnswer.select().count() == 0 and AnswerUsage.select().count() == 0


async def test_a_keyed_run_lost_with_its_runner_keeps_run_lost_for_its_key(plane, monkeypatch):
    # Its runner "dies" before the callback (the run hangs, its lease left to expire): the queue
    # fails it run_lost, and that ending is what a repeat of its key gets.
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]

    async def dies(self, run):
        _db()
        RunTask.update(owner="dead", lease_until=utcnow()).execute()
        await asyncio.Event().wait()

    monkeypatch.setattr(RunDriver, "_before_callback", dies)
    stream = Stream(s, md)
    await stream.send(_keyed(1, ids))
    run_id = (await asyncio.wait_for(stream.call.read(), 5)).events[0].accepted.run_id
    assert run_id  # durable before the flow runs
    async with asyncio.timeout(10):
        while True:
            got = await _one(s, md, _keyed(2, ids))
            if got[1][1].HasField("answer"):
                break
            await asyncio.sleep(0.1)
    assert got[1][1].run_id == run_id
    assert got[1][1].answer.outcome.reason == r.RUN_REASON_RUN_LOST
    await stream.close()
    _usage_is_the_rows_sum()


@pytest.mark.parametrize(
    "change",
    [
        {"idempotency_key": "x" * 256},
        {"idempotency_key": "with space"},
        {"idempotency_key": "nul\x00"},
        {"request_fingerprint": b"f" * 65},
        {"content_type": "t" * 256},
        {"callback_id": ""},
    ],
)
async def test_a_start_the_edge_should_not_have_sent_is_refused_and_keeps_nothing(plane, change):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    event = _keyed(1, ids)
    for name, value in change.items():
        setattr(event.start, name, value)
    got = await _one(s, md, event)
    assert [k for k, _ in got] == ["accepted", "outcome"] and got[0][1].run_id == ""
    assert _runs() == 0
    _db()
    assert KeptAnswer.select().count() == 0


async def test_get_run_answer_takes_edge_and_runner_keys_and_no_company_key(plane):
    from tests.security.keys import bearer, new_key

    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    token = (await _one(s, md, _keyed(1, ids, key="", mode=rs.ANSWER_MODE_ASYNC)))[0][1]
    token = token.status_token
    await _until_answered(s, md, token)
    for scope in ("edge", "runner"):
        _, secret = await new_key(s, md, scope)
        assert (await _answer(s, bearer(secret), token)).answer.callback.status_code == 201
    _, secret = await new_key(s, md, "full", company="acme")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _answer(s, bearer(secret), token)
    got = failure(caught.value)
    assert (got.code, got.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "ERROR_REASON_ADMIN_KEY_REQUIRED",
    )


def test_answer_retention_is_configured_and_must_be_positive():
    from control_plane.config import Settings

    assert Settings().answer_retention_s == 86400
    assert Settings.from_env({"BOOMERANG_ANSWER_RETENTION_S": "60"}).answer_retention_s == 60
    with pytest.raises(ValueError, match="BOOMERANG_ANSWER_RETENTION_S"):
        Settings.from_env({"BOOMERANG_ANSWER_RETENTION_S": "0"})
