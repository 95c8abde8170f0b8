"""What a runner does with runs another runner left behind (a real in-process runner and its
queue loop, on every backend): a run whose caller was waiting is recorded run_lost, a poison run
that already crashed its runners too often fails instead of looping, a tail resumes from its
checkpoint and finishes."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rns
from control_plane.engine import Progress, RunInput, ShapeLog
from control_plane.runs import checkpoint, journal
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import Run, RunTask
from tests.api.helpers import Stubs, insert_run
from tests.runner.test_runflow import _deploy_all


def _leave_behind(
    company_id: str, ids: tuple[str, str, str], *, lane: int, attempts: int, state=""
):
    database.connect(reuse_if_open=True)
    flow_id, version_id, callback_id = ids
    run_id = insert_run(
        company_id,
        flow_id,
        version_id=version_id,
        callback_id=callback_id,
        status="running" if lane == 0 else "responded",
        response_status=0 if lane == 0 else 201,
    )
    RunTask.create(
        run=run_id,
        company_id=company_id,
        lane=lane,
        state=state,
        owner="runner-that-died",
        lease_until=utcnow() - dt.timedelta(seconds=1),
        attempts=attempts,
        updated_at=utcnow(),
    )
    return run_id


async def _final(s: Stubs, md, run_id: str):
    async with asyncio.timeout(10):
        while True:
            run = (await s.runs.GetRun(rns.GetRunRequest(id=run_id), metadata=md)).run
            if run.status in (r.RUN_STATUS_SUCCEEDED, r.RUN_STATUS_FAILED, r.RUN_STATUS_TIMED_OUT):
                return run
            await asyncio.sleep(0.1)


async def test_runs_left_behind_are_lost_failed_as_poison_or_resumed(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    company_id = Run._meta.database.execute_sql("SELECT id FROM company").fetchone()[0]

    waiting = _leave_behind(company_id, ids, lane=0, attempts=1)
    poison = _leave_behind(company_id, ids, lane=1, attempts=3)
    run_input = RunInput("x", "acme", ids[0], ids[2], "", "POST", (), (), b'{"sku": "A1"}')
    progress = Progress(
        position=3,  # after the callback: only the "after" map is left
        bucket=[{"sku": "A1", "n": 1}],
        responded=True,
        shapes=[ShapeLog("trigger", "trigger", "ok", 1, 0, 1)],
    )
    tail = _leave_behind(
        company_id, ids, lane=1, attempts=1, state=checkpoint.dump(run_input, progress)
    )

    lost = await _final(s, md, waiting)
    assert (lost.status, lost.reason, lost.response_status) == (
        r.RUN_STATUS_FAILED,
        r.RUN_REASON_RUN_LOST,
        502,
    )
    crashed = await _final(s, md, poison)
    assert (crashed.status, crashed.reason, crashed.attempts) == (
        r.RUN_STATUS_FAILED,
        r.RUN_REASON_CRASHED,
        4,
    )
    assert crashed.response_status == 201  # the caller's answer stays what it was
    resumed = await _final(s, md, tail)
    assert resumed.status == r.RUN_STATUS_SUCCEEDED and resumed.attempts == 2
    assert [x.shape_id for x in resumed.shapes] == ["trigger", "after"]
    database.connect(reuse_if_open=True)
    assert RunTask.select().count() == 0  # nothing stuck


@pytest.mark.parametrize("plane_settings", [{"run_lease_s": 1.5}])
async def test_a_resumed_run_whose_commit_fails_goes_back_to_the_queue(plane, monkeypatch):
    """A resumed tail whose checkpoint cannot be written (a database error) is not left leased:
    the runner renews every task row it owns, so it used to stay RESPONDED for as long as the
    runner lived. Now its lease lapses and it is taken up again, counting an attempt."""
    s, md = Stubs.on(plane.channel), plane.metadata()
    ids = (await _deploy_all(s, md))["ok"]
    company_id = Run._meta.database.execute_sql("SELECT id FROM company").fetchone()[0]
    run_input = RunInput("x", "acme", ids[0], ids[2], "", "POST", (), (), b'{"sku": "A1"}')
    progress = Progress(
        position=3,
        bucket=[{"sku": "A1", "n": 1}],
        responded=True,
        shapes=[ShapeLog("trigger", "trigger", "ok", 1, 0, 1)],
    )
    tail = _leave_behind(
        company_id, ids, lane=1, attempts=1, state=checkpoint.dump(run_input, progress)
    )
    failed: list[str] = []

    def fails_once(write):
        def failing(runs, *args, **kwargs):
            if not failed and any(row[0] == tail for row in runs):
                failed.append(tail)
                raise RuntimeError("the database failed this once")
            return write(runs, *args, **kwargs)

        return failing

    # A flush is written on a thread (_write) or, on PostgreSQL, on the loop (_flush_sql).
    for name in ("_write", "_flush_sql"):
        failing = fails_once(getattr(journal, name))
        monkeypatch.setattr(f"control_plane.runs.journal.{name}", failing)
    resumed = await _final(s, md, tail)
    assert failed == [tail]
    assert resumed.status == r.RUN_STATUS_SUCCEEDED and resumed.attempts == 3
    assert [x.shape_id for x in resumed.shapes] == ["trigger", "after"]
    assert plane.plane.driver.given_up == set()  # claimed again: renewed again
    database.connect(reuse_if_open=True)
    assert RunTask.select().count() == 0
