"""The run queue: runners claim unfinished runs whose lease expired, renew their own, and hand
them back when they drain. Blocking; called on a database thread.

The same pattern as the well-kept PostgreSQL queues (procrastinate, pgqueuer): a claim is
`SELECT … FOR UPDATE SKIP LOCKED` then an UPDATE of owner and lease in the same transaction, so
two runners never take the same row and neither waits for the other's locked rows. On SQLite
the write transaction (BEGIN IMMEDIATE) already admits one writer at a time. Neither library
serves both backends, and the queue is this one file.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass

from control_plane.runs import answers
from control_plane.runs.lifecycle import STATUSES, RunRecord
from control_plane.store.clock import utcnow
from control_plane.store.db import is_sqlite, write_transaction
from control_plane.store.models import Run, RunTask


@dataclass(frozen=True, slots=True)
class Claimed:
    record: RunRecord
    lane: int
    state: str  # the checkpoint ("" for a run whose caller was waiting)


def claim(owner: str, lease_s: float, limit: int) -> list[Claimed]:
    """Takes up to `limit` runs whose lease has expired; counts an attempt on each."""
    now = utcnow()
    # Almost always there is none: a read (beside the writers, in WAL mode and on PostgreSQL)
    # says so without taking the write lock, which every runner's journal wants for its next
    # commit (runs/inline_commit.py). The transaction below checks again.
    if not RunTask.select().where(RunTask.lease_until < now).exists():
        return []
    with write_transaction():
        query = (
            RunTask.select(RunTask.run, RunTask.lane, RunTask.state)
            .where(RunTask.lease_until < now)
            .order_by(RunTask.lease_until)
            .limit(limit)
        )
        if not is_sqlite():
            query = query.for_update("FOR UPDATE SKIP LOCKED")
        rows = list(query.tuples())
        if not rows:
            return []
        ids = [run_id for run_id, _, _ in rows]
        RunTask.update(
            owner=owner,
            lease_until=now + dt.timedelta(seconds=lease_s),
            attempts=RunTask.attempts + 1,
            updated_at=now,
        ).where(RunTask.run.in_(ids)).execute()
        attempts = dict(
            RunTask.select(RunTask.run, RunTask.attempts).where(RunTask.run.in_(ids)).tuples()
        )
        records = {row.id: row for row in Run.select().where(Run.id.in_(ids))}
        kept = answers.kept(ids)
    claimed = []
    for run_id, lane, state in rows:
        row = records[run_id]
        record = _record(row)
        record.attempts = attempts[run_id]
        record.keeps_answer = run_id in kept
        claimed.append(Claimed(record, lane, state))
    return claimed


def renew(owner: str, lease_s: float, skip: Sequence[str] = ()) -> int:
    """Extends the lease on every run this runner owns but those in `skip` (runs it gave up
    on, runs/driver.py); returns how many.

    On PostgreSQL, rows another transaction holds are skipped rather than waited for. Nearly
    always the holder is this runner's own journal flush (runs/journal.py), on another database
    thread, which gives the rows it writes a fresh lease itself or deletes them. Waiting was a
    deadlock: the UPDATE locked the runner's rows in table order while the flush locked its
    rows in the order of its runs, and PostgreSQL aborted one of the two. When it aborted the
    flush, every run in it failed with RUN_REASON_INTERNAL, after their callers had their
    answers. A row skipped here is renewed on the next pass (every lease/3, at most 1 s).
    """
    now = utcnow()
    mine = RunTask.select(RunTask.run).where(RunTask.owner == owner)
    if skip:
        mine = mine.where(RunTask.run.not_in(list(skip)))
    if not is_sqlite():  # SQLite's single writer (BEGIN IMMEDIATE) cannot deadlock
        mine = mine.for_update("FOR UPDATE SKIP LOCKED")
    with write_transaction():
        return (
            RunTask.update(lease_until=now + dt.timedelta(seconds=lease_s), updated_at=now)
            .where(RunTask.run.in_(mine))
            .execute()
        )


def owned(owner: str, run_ids: list[str]) -> set[str]:
    """Those of `run_ids` whose task row `owner` still holds."""
    query = RunTask.select(RunTask.run).where(RunTask.owner == owner, RunTask.run.in_(run_ids))
    return {run_id for (run_id,) in query.tuples()}


def release(owner: str) -> int:
    """Hands this runner's runs back at once (a drain): any runner may claim them now."""
    now = utcnow()
    with write_transaction():
        return (
            RunTask.update(owner="", lease_until=now - dt.timedelta(seconds=1), updated_at=now)
            .where(RunTask.owner == owner)
            .execute()
        )


def _record(row: Run) -> RunRecord:
    return RunRecord(
        id=row.id,
        company_id=row.company_id,
        flow_id=row.flow_id,
        version_id=row.version_id,
        environment_id=row.environment_id,
        callback_id=row.callback_id,
        started_at=row.started_at,
        status=STATUSES[row.status],
        reason=row.reason,
        responded_at=row.responded_at,
        ended_at=row.ended_at,
        response_status=row.response_status,
        error=row.error,
        shapes=json.loads(row.shapes),
        attempts=row.attempts,
        has_task=True,
        notices=json.loads(row.notices),
        parent_run_id=row.parent_run_id,
        depth=row.depth,
    )
