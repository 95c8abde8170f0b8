"""The journal's commits on the event loop (SQLite) and the WAL checkpoints moved off them.

Real databases: a SQLite file and PostgreSQL, migrated; a second connection holds the write lock
where a test needs it held. The properties: a small flush is committed on the loop's own connection
and is in the database when its future resolves; a lock another writer holds for a moment is waited
for without blocking the loop, and the flush still commits on it; a lock held longer sends the flush
to a thread, where it lands once the lock is free; a large flush goes to a thread; the loop's
connection never checkpoints, the checkpointer does, and the WAL file stays bounded. PostgreSQL
commits a small flush on the loop too, on its own asynchronous connection (runs/pg_commit.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from concurrent.futures import ThreadPoolExecutor

import peewee
import pytest

from control_plane.domain.ids import new_id
from control_plane.runs import inline_commit
from control_plane.runs.inline_commit import Checkpointer, InlineCommit
from control_plane.runs.journal import INLINE_FLUSH_BYTES, Journal, Task
from control_plane.runs.lifecycle import LANE_CALLER, LANE_TAIL, RunRecord
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import Company, Run, RunTask

pytestmark = pytest.mark.usefixtures("db")


class _Runtime:
    """Database work on a real thread, as the control plane's Runtime does; records which."""

    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(2, thread_name_prefix="db")
        self.jobs = 0

    async def db(self, fn):
        def job():
            database.connect(reuse_if_open=True)
            try:
                return fn()
            finally:
                database.close()

        self.jobs += 1
        return await asyncio.get_running_loop().run_in_executor(self.executor, job)


@pytest.fixture
def company() -> str:
    return Company.create(id=new_id(), slug=f"c{new_id()[-8:]}", name="c", created_at=utcnow()).id


@pytest.fixture
async def journal():
    rt = _Runtime()
    journal = Journal(rt, "runner-test", 30)
    journal.start()
    yield journal
    await journal.stop()
    rt.executor.shutdown(wait=True)


def _record(company: str) -> RunRecord:
    return RunRecord(new_id(), company, "f", "v", "", "cb", dt.datetime(2026, 1, 1))


def _stored(run_id: str) -> Run | None:
    return Run.get_or_none(Run.id == run_id)


def _inline(journal: Journal) -> InlineCommit | None:
    return journal._inline


async def test_a_small_flush_is_committed_on_the_loop(backend, journal, company) -> None:
    record = _record(company)
    await journal.commit(record, Task(LANE_CALLER, ""))
    stored = _stored(record.id)
    assert stored is not None and stored.status == "running"
    # On PostgreSQL, on the loop's asynchronous connection (runs/pg_commit.py).
    assert (_inline(journal) is None) == (backend == "postgres")
    assert journal.rt.jobs == 0
    assert RunTask.get(RunTask.run == record.id).lane == LANE_CALLER


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_held_write_lock_sends_the_flush_to_a_thread_without_blocking_the_loop(
    db_url, journal, company
) -> None:
    holder = peewee.SqliteDatabase(db_url.removeprefix("sqlite:///"))
    holder.connect()
    holder.execute_sql("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        record = _record(company)
        done = journal.save(record, Task(LANE_CALLER, ""))
        ticks = 0
        while not done.done() and ticks < 20:  # the loop stays free while the flush waits
            await asyncio.sleep(0.01)
            ticks += 1
        assert ticks == 20 and not done.done()
        assert _inline(journal).deferred >= 1 and journal.rt.jobs >= 1
    finally:
        holder.execute_sql("ROLLBACK")
        holder.close()
    await asyncio.wait_for(done, 10)  # the thread got the lock once it was free
    assert _stored(record.id) is not None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_lock_held_for_a_moment_is_waited_for_on_the_loop(db_url, journal, company) -> None:
    holder = peewee.SqliteDatabase(db_url.removeprefix("sqlite:///"))
    holder.connect()
    holder.execute_sql("BEGIN IMMEDIATE")  # the run queue's renewal, say
    asyncio.get_running_loop().call_later(0.002, holder.execute_sql, "ROLLBACK")
    try:
        record = _record(company)
        await asyncio.wait_for(journal.commit(record, Task(LANE_CALLER, "")), 10)
    finally:
        holder.close()
    assert _stored(record.id) is not None
    inline = _inline(journal)
    assert inline.waited == 1 and inline.deferred == 0 and journal.rt.jobs == 0


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_stopping_while_a_flush_waits_for_the_lock_loses_nothing(db_url, company) -> None:
    rt = _Runtime()
    journal = Journal(rt, "runner-test", 30)
    journal.start()
    holder = peewee.SqliteDatabase(db_url.removeprefix("sqlite:///"))
    holder.connect()
    holder.execute_sql("BEGIN IMMEDIATE")
    asyncio.get_running_loop().call_later(0.003, holder.execute_sql, "ROLLBACK")
    try:
        record = _record(company)
        done = journal.save(record, Task(LANE_CALLER, ""))
        await asyncio.sleep(0)  # the flush has taken the entry and waits for the lock
        await asyncio.wait_for(journal.stop(), 10)
    finally:
        holder.close()
        rt.executor.shutdown(wait=True)
    assert done.done() and done.exception() is None
    assert _stored(record.id) is not None


async def test_a_large_flush_goes_to_a_thread(backend, journal, company) -> None:
    record = _record(company)
    big = "x" * (INLINE_FLUSH_BYTES + 1)
    await journal.commit(record, Task(LANE_TAIL, big), urgent=False)
    assert journal.rt.jobs >= 1
    if backend == "sqlite":
        assert _inline(journal).deferred == 0
    assert RunTask.get(RunTask.run == record.id).state == big


#: Bytes of one WAL frame: a page and its header.
_FRAME = 4096 + 24


def _size(path: str) -> int:
    return os.stat(path).st_size  # a stat of a local file: no need to leave the loop for it


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_loop_never_checkpoints_and_the_checkpointer_bounds_the_wal(
    db_url, journal, company, monkeypatch
) -> None:
    wal = db_url.removeprefix("sqlite:///") + "-wal"
    journal.checkpointer._task.cancel()  # this test runs the checkpoints itself
    for _ in range(400):  # a few pages a run: past SQLite's automatic 1,000-page threshold
        await journal.commit(_record(company), Task(LANE_CALLER, ""))
    grown = _size(wal)
    assert grown > 1_000 * _FRAME  # the loop's connection never checkpointed (nor rewound)

    busy, frames, copied = await journal.checkpointer.checkpoint()
    assert busy == 0 and frames > 1_000 and copied == frames  # all of it, off the loop
    for _ in range(100):  # the first of these rewinds the WAL: it is reused, not grown
        await journal.commit(_record(company), Task(LANE_CALLER, ""))
    assert _size(wal) == grown

    # Past RESTART_FRAMES a RESTART follows the PASSIVE one (continuous writes can keep a
    # PASSIVE checkpoint from ever copying the WAL whole): it copies everything too.
    monkeypatch.setattr(inline_commit, "RESTART_FRAMES", 1)
    busy, frames, copied = await journal.checkpointer.checkpoint()
    assert busy == 0 and copied == frames


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_the_checkpointer_runs_only_after_writes(journal, company, monkeypatch) -> None:
    monkeypatch.setattr(inline_commit, "CHECK_INTERVAL_S", 0.01)
    checkpointer = Checkpointer(journal.rt, lambda: journal.commits)
    checkpointer.start()
    try:
        await asyncio.sleep(0.1)
        assert checkpointer.checkpoints == 0  # idle: nothing to copy, no thread woken
        await journal.commit(_record(company), Task(LANE_CALLER, ""))
        for _ in range(100):
            if checkpointer.checkpoints:
                break
            await asyncio.sleep(0.01)
        assert checkpointer.checkpoints >= 1
    finally:
        await checkpointer.stop()


def test_an_in_memory_database_gets_no_second_connection() -> None:
    assert InlineCommit.for_database(peewee.SqliteDatabase(":memory:")) is None
    assert InlineCommit.for_database(peewee.PostgresqlDatabase("x")) is None


async def test_a_run_whose_company_is_gone_does_not_take_another_tenants_run_with_it(
    backend, journal, company
) -> None:
    """One flush holds a run of a company deleted mid-run (its row fails the foreign key) and
    another company's run: the other run is committed, and both commits return (the orphan's
    record is dropped, as its company's rows are)."""
    orphan = _record(new_id())  # no such company
    other = _record(company)
    dropped = journal.save(orphan, Task(LANE_CALLER, ""))
    kept = journal.save(other, Task(LANE_CALLER, ""))
    await asyncio.wait_for(asyncio.gather(dropped, kept), 10)
    assert _stored(other.id) is not None and _stored(orphan.id) is None
    assert RunTask.get(RunTask.run == other.id).lane == LANE_CALLER
