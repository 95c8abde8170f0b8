"""The journal's order: a change a caller waits for is committed before tail checkpoints, and a
tail flush is bounded in bytes, so a caller never waits behind a backlog of tails; writes of one
run are coalesced, never reordered. A flush PostgreSQL rolls back for a deadlock is tried
again. On PostgreSQL a flush's rows go as a few multi-row statements, not one per row."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import psycopg2
import pytest
from playhouse.db_url import parse

from boomerang.v1 import resources_pb2 as r
from control_plane.domain.ids import new_id
from control_plane.runs.journal import ROWS_PER_STATEMENT, TAIL_FLUSH_BYTES, Journal, Task, _write
from control_plane.runs.lifecycle import LANE_CALLER, LANE_TAIL, RunRecord
from control_plane.runs.pg_commit import LoopCommit
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import Company, Run, RunTask
from tests.api.helpers import insert_run


class _Runtime:
    async def db(self, fn):
        return fn()


@pytest.fixture
def batches(monkeypatch) -> list[list[str]]:
    written: list[list[str]] = []
    monkeypatch.setattr(
        "control_plane.runs.journal._write",
        lambda runs, tasks, finals, kept: written.append([row[0] for row in runs]),
    )
    return written


def _record(run_id: str) -> RunRecord:
    return RunRecord(run_id, "c", "f", "v", "", "cb", dt.datetime(2026, 1, 1))


async def test_urgent_changes_go_first_and_tail_flushes_are_bounded(batches) -> None:
    journal = Journal(_Runtime(), "me", 10)
    big = "x" * (TAIL_FLUSH_BYTES * 6 // 10)
    tails = [journal.save(_record(f"t{i}"), Task(LANE_TAIL, big), urgent=False) for i in range(3)]
    waiting = journal.save(_record("caller"), Task(LANE_CALLER, ""))
    await journal.flush()
    assert batches == [["caller"]] and waiting.done() and not any(t.done() for t in tails)
    await journal.flush_all()
    assert batches[1:] == [["t0"], ["t1"], ["t2"]]  # each over half the budget: one a flush
    assert all(t.done() for t in tails)


async def test_a_run_has_one_entry_and_keeps_its_urgency(batches) -> None:
    journal = Journal(_Runtime(), "me", 10)
    record = _record("r")
    first = journal.save(record, Task(LANE_CALLER, ""))
    record.response_status = 504
    second = journal.save(record, urgent=False)
    journal.save(_record("other"), Task(LANE_TAIL, "{}"), urgent=False)
    await journal.flush()
    assert batches == [["r"]] and first.done() and second.done()


class _ThreadRuntime:
    """The runtime's database pool as a thread, so the loop goes on while a flush waits."""

    async def db(self, fn):
        def job():
            database.connect(reuse_if_open=True)
            return fn()

        return await asyncio.to_thread(job)


@pytest.mark.parametrize("on_loop", [False, True], ids=["thread", "loop"])
@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_a_flush_rolled_back_by_a_deadlock_is_tried_again(
    db, db_url, caplog, on_loop
) -> None:
    """A real deadlock: another transaction holds the second run's row while the flush has
    locked the first, then asks for the first. PostgreSQL rolls one back, here the flush (the
    other sets a long deadlock_timeout, so the flush's backend runs the check first). Before,
    every run in that flush failed with the error; now the flush is tried again and commits.
    Both ways a flush goes: on a database thread, and on the loop's own connection."""
    company = Company.create(id=new_id(), slug="acme", name="acme", created_at=utcnow()).id
    first, second = sorted(insert_run(company, new_id(), status="running") for _ in range(2))
    records = [RunRecord(i, company, "f", "v", "", "cb", utcnow()) for i in (first, second)]
    for record in records:
        record.end(r.RUN_STATUS_SUCCEEDED)
    # A driver connection of its own: peewee's are per thread, and the second statement runs
    # on another thread (it blocks) but must be in the same transaction.
    other = psycopg2.connect(**parse(db_url))
    cursor = other.cursor()  # psycopg2 opens a transaction with the first statement
    cursor.execute("SET LOCAL deadlock_timeout = '20s'")
    cursor.execute('UPDATE "run" SET "error" = %s WHERE "id" = %s', ("other", second))

    journal = Journal(_ThreadRuntime(), "me", 10)
    if on_loop:
        journal._loop_commit = LoopCommit.for_database(database.obj)
    done = [journal.save(record) for record in records]  # written in this order: first, second
    flush = asyncio.create_task(journal.flush())
    waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND pid <> pg_backend_pid()"
    for _ in range(500):  # until the flush waits for the second row
        cursor.execute(waiting)
        if cursor.fetchone()[0]:
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the flush never waited for the row the other transaction holds")
    # Closes the cycle; returns once PostgreSQL has rolled the flush back (after its 1 s).
    await asyncio.to_thread(
        cursor.execute, 'UPDATE "run" SET "error" = %s WHERE "id" = %s', ("other", first)
    )
    other.commit()
    other.close()
    with caplog.at_level(logging.WARNING, "control_plane.runs.journal"):
        await asyncio.wait_for(flush, 10)
    assert all(d.done() and d.exception() is None for d in done)
    assert "trying again" in caplog.text
    rows = {row.id: row for row in Run.select()}
    assert {rows[i].status for i in (first, second)} == {"succeeded"}
    assert {rows[i].error for i in (first, second)} == {""}  # the flush's, committed after
    if on_loop:
        assert journal._loop_commit.conn is not None  # kept: the server answered the statements
        journal._loop_commit.close()


class _Sent:
    """The models' database with the statements its cursors send counted: psycopg2's
    executemany sends one statement (and waits for its answer) per row, its execute one."""

    def __init__(self, db) -> None:
        self.db, self.statements = db, 0

    def __getattr__(self, name):
        return getattr(self.db, name)

    def cursor(self):
        return _SentCursor(self, self.db.cursor())


class _SentCursor:
    def __init__(self, sent: _Sent, cursor) -> None:
        self.sent, self.cursor = sent, cursor

    def __getattr__(self, name):
        return getattr(self.cursor, name)

    def execute(self, sql, params=None):
        self.sent.statements += 1
        return self.cursor.execute(sql, params)

    def executemany(self, sql, rows):
        rows = list(rows)
        self.sent.statements += len(rows)
        return self.cursor.executemany(sql, rows)


async def test_a_flush_writes_every_row_and_on_postgres_in_few_statements(db, backend) -> None:
    """250 runs in one flush: 50 already written (updated), 200 new, 100 of them keeping a task
    row. Every row lands on both backends; on PostgreSQL the runs go in 3 statements (100 rows
    each at most) and the tasks in 1, where one a row took 350 round trips before."""
    company = Company.create(id=new_id(), slug="acme", name="acme", created_at=utcnow()).id
    old = [insert_run(company, "f", status="running") for _ in range(50)]
    records = [RunRecord(i, company, "f", "v", "", "cb", utcnow()) for i in old]
    records += [RunRecord(new_id(), company, "f", "v", "", "cb", utcnow()) for _ in range(200)]
    for record in records[:150]:
        record.end(r.RUN_STATUS_SUCCEEDED)
    now = utcnow()
    tasks = [(x.id, company, LANE_TAIL, "{}", "me", now, 1, now) for x in records[150:]]
    sent = _Sent(database.obj)

    _write([x.row() for x in records], tasks, [], [], db=sent)

    assert {row.id: row.status for row in Run.select()} == {
        x.id: "succeeded" if i < 150 else "running" for i, x in enumerate(records)
    }
    assert {t.run_id for t in RunTask.select()} == {x.id for x in records[150:]}
    if backend == "postgres":
        assert ROWS_PER_STATEMENT == 100
        assert sent.statements == 3 + 1


async def test_a_row_whose_company_is_gone_does_not_lose_the_others(db, caplog) -> None:
    """The rows of a flush go in one statement (PostgreSQL) or one transaction (both): when one
    breaks the company key (its company was deleted mid-run), the others are written alone."""
    company = Company.create(id=new_id(), slug="acme", name="acme", created_at=utcnow()).id
    records = [RunRecord(new_id(), c, "f", "v", "", "cb", utcnow()) for c in (company, "gone")]
    records.append(RunRecord(new_id(), company, "f", "v", "", "cb", utcnow()))

    with caplog.at_level(logging.WARNING, "control_plane.runs.journal"):
        _write([x.row() for x in records], [], [], [])

    assert {row.id for row in Run.select()} == {records[0].id, records[2].id}
    assert f"dropping the record of run {records[1].id}" in caplog.text


class _CountingRuntime(_ThreadRuntime):
    """Database jobs on a thread, counted: the flushes that did not commit on the loop."""

    def __init__(self) -> None:
        self.jobs = 0

    async def db(self, fn):
        self.jobs += 1
        return await super().db(fn)


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
async def test_on_postgres_flushes_commit_on_the_loop_and_fall_back_to_a_thread(db) -> None:
    """A started journal commits its flushes on the loop's own connection, every row of them in
    one transaction; a row that breaks the company key and a lost connection send that flush to
    a thread (which writes what it can), and the next flush is on the loop again."""
    company = Company.create(id=new_id(), slug="acme", name="acme", created_at=utcnow()).id
    runtime = _CountingRuntime()
    journal = Journal(runtime, "me", 10)
    journal.start()
    try:

        def record(owner: str = company) -> RunRecord:
            return RunRecord(new_id(), owner, "f", "v", "", "cb", utcnow())

        # New runs with a task row, then the same runs ended (their task rows deleted).
        first = [record() for _ in range(3)]
        await asyncio.gather(*(journal.commit(x, Task(LANE_TAIL, "{}")) for x in first))
        assert {t.run_id for t in RunTask.select()} == {x.id for x in first}
        for x in first:
            x.end(r.RUN_STATUS_SUCCEEDED)
        await asyncio.gather(*(journal.commit(x) for x in first))
        assert RunTask.select().count() == 0
        assert runtime.jobs == 0

        # One bad row: nothing of the loop's statement is written; the thread writes the rest.
        mixed = [record(), record("gone"), record()]
        done = [journal.save(x) for x in mixed]
        await journal.flush()
        assert [d.exception() for d in done] == [None] * 3
        assert runtime.jobs == 1
        ids = {row.id for row in Run.select()}
        assert {mixed[0].id, mixed[2].id} <= ids and mixed[1].id not in ids

        # The loop's connection is ended by the server: that flush goes to a thread.
        pid = journal._loop_commit.conn.get_backend_pid()
        database.execute_sql("SELECT pg_terminate_backend(%s)", (pid,))
        lost = record()
        await journal.commit(lost)
        assert runtime.jobs == 2 and Run.get_by_id(lost.id).status == "running"
        again = record()
        await journal.commit(again)
        assert runtime.jobs == 2 and Run.get_by_id(again.id).status == "running"
    finally:
        await journal.stop()
