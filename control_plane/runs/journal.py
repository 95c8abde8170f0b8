"""Durable run state, written with group commit.

Every change a runner makes to a run (its record, and its checkpoint in run_task) goes through
`Journal.commit`, which returns once the change is in the database. Changes queued while a
flush is running are coalesced per run and written together by the next flush, in one
transaction: under load one commit covers many runs (group commit); with nothing else queued a
change is flushed at once, so a lone run pays one commit and no batching delay.

A run's record and its task row are written in the same transaction, which keeps the invariant
that a run has a task row exactly while it is not final (a final record deletes it). So is the
answer a run gives, for a run that keeps one (runs/answers.py): a kept answer is never lost
between the run's change and its answer.

Writes a caller waits for (`urgent`: the record before `accepted`, the checkpoint before the
callback, a run that ends before its callback) go first: a flush takes every urgent change, and
only when none is queued does it write tail checkpoints, at most TAIL_FLUSH_BYTES of them at
once. So a caller's commit waits for at most one bounded tail transaction, never for a backlog
of them (measured with bench/priority.py: without it, a light caller's p99 went from 7 ms to
over 400 ms behind a backlog of heavy tails).

A flush of at most INLINE_FLUSH_BYTES with no kept answer is committed from the event loop
itself: on SQLite on the loop's own connection when the write lock is free at once
(runs/inline_commit.py), on PostgreSQL as one message on the loop's own asynchronous connection
(runs/pg_commit.py); otherwise on a database thread. A one-run commit costs ~0.25 ms on the loop
on SQLite, against ~1.1 ms (median; tens of ms at p99) through a thread, whose every step waits
for the GIL the busy loop holds (docs/design.md §3, "The run record's commit", "On
PostgreSQL").

A flush PostgreSQL rolls back for a conflict with another transaction (deadlock, serialization
failure) is tried again (`transient`, FLUSH_TRIES): the rows are upserts and nothing of the
first try remains, so writing them again is what the first try would have done.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import peewee
import psycopg2
from psycopg2.extras import execute_values

from control_plane.runs import answers
from control_plane.runs.inline_commit import Checkpointer, InlineCommit
from control_plane.runs.lifecycle import RunRecord
from control_plane.runs.pg_commit import LoopCommit
from control_plane.store.clock import utcnow
from control_plane.store.db import database, write_transaction
from control_plane.store.models import Run, RunTask

if TYPE_CHECKING:
    from control_plane.grpckit.servicer import Runtime

log = logging.getLogger(__name__)

#: Checkpoint bytes one flush of tail changes writes at most (one change is always taken).
TAIL_FLUSH_BYTES = 1 << 20
#: Bytes of checkpoints and shape logs a flush may write on the event loop (SQLite): bigger
#: flushes go to a database thread, so the loop is never held for more than ~1 ms by one.
INLINE_FLUSH_BYTES = 64 << 10


#: How many times a flush is tried when PostgreSQL rolls it back for a reason that may not
#: recur (`transient`), and the pause before the second try (the third waits twice as long).
FLUSH_TRIES = 3
RETRY_PAUSE_S = 0.01
# PostgreSQL's SQLSTATEs for a transaction rolled back whole by a conflict with another one:
# deadlock_detected and serialization_failure. The same transaction, tried again, may succeed.
_TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})


def transient(exc: Exception) -> bool:
    """Whether `exc` rolled its transaction back for a conflict that trying again may not meet.
    peewee wraps psycopg2's error (the driver's is the wrapper's `orig`); the driver's own is
    recognised too, for a statement run on its cursor outside the wrapper."""
    for error in (exc, getattr(exc, "orig", None)):
        if getattr(error, "pgcode", None) in _TRANSIENT_SQLSTATES:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Task:
    """The run_task row a commit leaves behind for a run that is not final."""

    lane: int
    state: str  # the JSON checkpoint; "" when the run cannot be resumed (a caller waits)


class _Entry:
    __slots__ = ("answer", "done", "record", "row", "task", "urgent")

    def __init__(self, record: RunRecord) -> None:
        self.row: tuple = ()
        self.record = record
        self.task: Task | None = None
        self.answer: bytes | None = None
        self.urgent = False
        self.done: list[asyncio.Future[None]] = []

    @property
    def size(self) -> int:
        return len(self.task.state) if self.task is not None else 0

    @property
    def inline_size(self) -> int:
        """Roughly what writing this entry copies: its checkpoint, shape log and notices."""
        return self.size + len(self.row[12]) + len(self.row[17])


class Journal:
    def __init__(self, runtime: Runtime, owner: str, lease_s: float) -> None:
        self.rt = runtime
        self.owner = owner
        self.lease_s = lease_s
        self._pending: dict[str, _Entry] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # One flush at a time: two in flight on different database threads could commit out of
        # order and leave a run's older state on top of its newer one.
        self._flushing = asyncio.Lock()
        self.commits = 0  # flushes done, for the bench's group-commit figure
        #: SQLite: commits on the loop's own connection (None on PostgreSQL, set in start()).
        self._inline: InlineCommit | None = None
        #: With it, the WAL's checkpoints, which the inline connection leaves to a thread.
        self.checkpointer: Checkpointer | None = None
        #: PostgreSQL: commits on the loop's own asynchronous connection (set in start()).
        self._loop_commit: LoopCommit | None = None

    def save(
        self,
        record: RunRecord,
        task: Task | None = None,
        *,
        urgent: bool = True,
        answer: bytes | None = None,
    ) -> asyncio.Future[None]:
        """Queues the run's current state; the future resolves once it is committed.

        `task` is the checkpoint to keep for a run that is not final (ignored for a final one,
        whose task row is deleted); `urgent` when a caller waits for this commit. The row is
        taken now, on the loop, so the database thread never reads a record the loop is
        changing. A run has one queued entry: a later save replaces its state and keeps the
        earlier one's futures and urgency, so writes of one run are never reordered.

        `answer`: the run's answer (a serialized StoredAnswer) to keep in the same transaction,
        for a run whose answer is kept (record.keeps_answer); see answers.fill."""
        entry = self._pending.get(record.id)
        if entry is None:
            entry = self._pending[record.id] = _Entry(record)
        entry.row = record.row()
        entry.urgent = entry.urgent or urgent
        if task is not None or record.final:
            entry.task = None if record.final else task
        if answer is not None and record.keeps_answer:
            entry.answer = answer
        done = asyncio.get_running_loop().create_future()
        entry.done.append(done)
        self._wake.set()
        return done

    async def commit(
        self,
        record: RunRecord,
        task: Task | None = None,
        *,
        urgent: bool = True,
        answer: bytes | None = None,
    ) -> None:
        await self.save(record, task, urgent=urgent, answer=answer)

    def writer(self, record: RunRecord, task: Task) -> Callable[[], None]:
        """Writes a new run's first rows (record and task) in a transaction the caller holds,
        beside other writes (answers.claim): for a run with no change queued here yet."""
        run_row = record.row()

        def write() -> None:
            now = utcnow()
            lease_until = now + dt.timedelta(seconds=self.lease_s)
            task_row = (
                record.id,
                record.company_id,
                task.lane,
                task.state,
                self.owner,
                lease_until,
                1,
                now,
            )
            write_rows(Run._meta.database, [run_row], [task_row], [])

        return write

    def start(self) -> None:
        self._loop_commit = LoopCommit.for_database(database.obj)
        self._inline = InlineCommit.for_database(database.obj)
        if self._inline is not None:
            self.checkpointer = Checkpointer(self.rt, lambda: self.commits)
            self.checkpointer.start()
        self._task = asyncio.create_task(self._run(), name="run-journal")

    async def stop(self) -> None:
        if self._task is not None:
            # Not in the middle of a flush: its entries are out of `_pending` by then, and one
            # cancelled while it waits for the write lock would be written by nobody.
            async with self._flushing:
                self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush_all()
        if self._inline is not None:
            self._inline.close()
        if self._loop_commit is not None:
            self._loop_commit.close()
        if self.checkpointer is not None:
            await self.checkpointer.stop()

    async def flush_all(self) -> None:
        while self._pending:
            await self.flush()

    async def flush(self) -> None:
        async with self._flushing:
            if not self._pending:
                return
            entries = self._take()
            runs = [e.row for e in entries]
            tasks: list[tuple] = []
            keep = [e for e in entries if e.task is not None and not e.record.final]
            if keep:  # most runs end in the commit that answers them: no task row, no clock
                now = utcnow()
                lease_until = now + dt.timedelta(seconds=self.lease_s)
                tasks = [
                    (e.row[0], e.row[1], e.task.lane, e.task.state, self.owner, lease_until, 1, now)
                    for e in keep
                ]
            # Only runs that ever had a task row: most runs end in the commit that answers them.
            finals = [e.row[0] for e in entries if e.record.final and e.record.has_task]
            kept = [(e.row[0], e.answer) for e in entries if e.answer is not None]
            try:
                await self._commit(entries, runs, tasks, finals, kept)
                self.commits += 1
            except Exception as exc:
                for entry in entries:
                    for done in entry.done:
                        if not done.done():
                            done.set_exception(exc)
                raise
            for entry in entries:
                if entry.task is not None and not entry.record.final:
                    entry.record.has_task = True
                for done in entry.done:
                    if not done.done():
                        done.set_result(None)

    async def _commit(self, entries: list[_Entry], runs, tasks, finals, kept) -> None:
        """One flush's transaction, tried again after a rollback that may not recur."""
        for attempt in range(1, FLUSH_TRIES + 1):
            try:
                return await self._write_once(entries, runs, tasks, finals, kept)
            except Exception as exc:
                if attempt == FLUSH_TRIES or not transient(exc):
                    raise
                log.warning(
                    "runs' flush of %d runs rolled back (%s); trying again",
                    len(entries),
                    type(exc).__name__,
                )
                await asyncio.sleep(RETRY_PAUSE_S * attempt)

    async def _write_once(self, entries: list[_Entry], runs, tasks, finals, kept) -> None:
        # Kept answers are written through the shared models' connection: on a thread.
        small = not kept and sum(e.inline_size for e in entries) <= INLINE_FLUSH_BYTES
        if small and self._loop_commit is not None:
            try:
                return await self._loop_commit.execute(partial(_flush_sql, runs, tasks, finals))
            except psycopg2.IntegrityError:
                pass  # nothing was written: the thread writes the rows one by one
            except (psycopg2.OperationalError, psycopg2.InterfaceError) as exc:
                if transient(exc):
                    raise  # a deadlock: _commit tries the flush again
                log.warning("runs' PostgreSQL connection failed (%s): flushing on a thread", exc)
        inline = self._inline
        if (
            inline is None
            or not small
            or not await inline.write_soon(partial(_write, runs, tasks, finals, kept))
        ):
            await self.rt.db(lambda: _write(runs, tasks, finals, kept))

    def _take(self) -> list[_Entry]:
        """The next flush's entries: every urgent one, else tails up to TAIL_FLUSH_BYTES."""
        pending = self._pending
        taken = [e for e in pending.values() if e.urgent]
        if not taken:
            size = 0
            for entry in pending.values():
                if taken and size + entry.size > TAIL_FLUSH_BYTES:
                    break
                taken.append(entry)
                size += entry.size
        for entry in taken:
            del pending[entry.record.id]
        return taken

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                if self._pending:
                    self._wake.set()  # tails left for the next flush
            except Exception:
                log.exception("cannot write runs")
                await asyncio.sleep(0.1)  # the database is failing: do not spin


# The run table's columns, in RunRecord.row() order.
RUN_COLUMNS = (
    Run.id,
    Run.company,
    Run.flow_id,
    Run.version_id,
    Run.environment_id,
    Run.callback_id,
    Run.status,
    Run.started_at,
    Run.responded_at,
    Run.ended_at,
    Run.response_status,
    Run.error,
    Run.shapes,
    Run.reason,
    Run.attempts,
    Run.parent_run_id,
    Run.depth,
    Run.notices,
)
TASK_COLUMNS = (
    RunTask.run,
    RunTask.company_id,
    RunTask.lane,
    RunTask.state,
    RunTask.owner,
    RunTask.lease_until,
    RunTask.attempts,
    RunTask.updated_at,
)
# What an upsert of a task row overwrites: the key, the company and the attempts (which claims
# count) never are.
TASK_UPDATE = (
    RunTask.lane,
    RunTask.state,
    RunTask.owner,
    RunTask.lease_until,
    RunTask.updated_at,
)
_UPSERTS = {
    "run": (Run, RUN_COLUMNS, RUN_COLUMNS[1:]),
    "task": (RunTask, TASK_COLUMNS, TASK_UPDATE),
}
#: The upserts' text by (placeholder, table): built once per backend, not per flush (~11 µs of
#: string building each time, on a database thread but holding the GIL the loop needs).
_SQL: dict[tuple[str, str], str] = {}
#: PostgreSQL: rows per multi-row statement (psycopg2's execute_values `page_size`).
ROWS_PER_STATEMENT = 100


def _upsert(db: peewee.Database, table: str) -> str:
    key = (db.param, table)
    sql = _SQL.get(key)
    if sql is None:
        sql = _SQL[key] = _upsert_sql(db, *_UPSERTS[table])
    return sql


def _upsert_sql(db: peewee.Database, model: type[peewee.Model], columns, update) -> str:
    """INSERT ... ON CONFLICT DO UPDATE of the `update` columns, built by hand: peewee's query
    builder spent ~90 µs a row generating the same text. Shared by SQLite (3.24+) and
    PostgreSQL; on PostgreSQL its VALUES is execute_values's one `%s` for all the rows."""
    names = [f'"{c.column_name}"' for c in columns]
    marks = "%s" if _multi_row(db) else "(" + ", ".join([db.param] * len(names)) + ")"
    updates = ", ".join(f'"{c.column_name}" = EXCLUDED."{c.column_name}"' for c in update)
    key = model._meta.primary_key.column_name
    return (
        f'INSERT INTO "{model._meta.table_name}" ({", ".join(names)}) VALUES {marks} '
        f'ON CONFLICT ("{key}") DO UPDATE SET {updates}'
    )


def _multi_row(db: peewee.Database) -> bool:
    """Whether rows go as multi-row statements (execute_values): on PostgreSQL, where
    psycopg2's executemany sends each row as a statement of its own and waits for its answer
    (docs/design.md §3, "The run record's commit"). SQLite's executemany steps one prepared
    statement per row inside this process: there is no round trip to save."""
    return db.param == "%s"


def _upsert_rows(db: peewee.Database, cursor, table: str, rows: list[tuple]) -> None:
    if _multi_row(db):
        execute_values(cursor, _upsert(db, table), rows, page_size=ROWS_PER_STATEMENT)
    else:
        cursor.executemany(_upsert(db, table), rows)


def write_rows(
    db: peewee.Database,
    runs: list[tuple],
    tasks: list[tuple],
    finals: list[str],
    kept: list[tuple[str, bytes]] = (),
) -> None:
    """Writes run rows (RUN_COLUMNS), task rows (TASK_COLUMNS), deletes the task rows of
    `finals` and keeps answers, in the caller's transaction.

    The statements go through the driver's cursor, so its errors are the driver's (sqlite3's,
    psycopg2's); peewee's own wrapper turns them into peewee's, as its execute_sql does, so a
    row that breaks a constraint raises peewee.IntegrityError on both backends (_write).

    The rows are bound as they are: RunRecord.row() and the task rows hold only str, int,
    datetime and None, which both drivers bind as peewee would (its per-column db_value is the
    identity for them, and cost ~10 µs a row on the loop)."""
    cursor = db.cursor()
    with peewee.__exception_wrapper__:
        _upsert_rows(db, cursor, "run", runs)
        if tasks:
            _upsert_rows(db, cursor, "task", tasks)
        if finals:
            cursor.execute(_delete_tasks_sql(db.param, len(finals)), list(finals))
    if kept:
        answers.fill(list(kept))


def _delete_tasks_sql(param: str, count: int) -> str:
    # By hand too, like the upserts: peewee's builder costs more than the statement.
    marks = ", ".join([param] * count)
    return (
        f'DELETE FROM "{RunTask._meta.table_name}" WHERE "{RunTask.run.column_name}" IN ({marks})'
    )


def _flush_sql(runs: list[tuple], tasks: list[tuple], finals: list[str], cursor) -> bytes:
    """PostgreSQL: a flush's statements as one text, its rows bound by psycopg2's `mogrify` (as
    its execute binds them), for runs/pg_commit.py to send as one transaction."""
    parts = [_values_sql(cursor, "run", runs)]
    if tasks:
        parts.append(_values_sql(cursor, "task", tasks))
    if finals:
        parts.append(cursor.mogrify(_delete_tasks_sql("%s", len(finals)), list(finals)))
    return b";\n".join(parts)


def _values_sql(cursor, table: str, rows: list[tuple]) -> bytes:
    head, _, tail = _upsert(Run._meta.database, table).partition("VALUES %s")
    row = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
    values = b", ".join(cursor.mogrify(row, r) for r in rows)
    return b"".join((head.encode(), b"VALUES ", values, tail.encode()))


def _write(
    runs: list[tuple],
    tasks: list[tuple],
    finals: list[str],
    kept: list[tuple[str, bytes]],
    db: peewee.Database | None = None,
    begin: Callable[[], AbstractContextManager[object]] = write_transaction,
) -> None:
    """One flush's writes in one transaction (`begin`), on `db` (default: the models')."""
    db = db or Run._meta.database
    try:
        with begin():
            write_rows(db, runs, tasks, finals, kept)
    except peewee.IntegrityError:
        # One bad row (its company was deleted mid-run) must not lose the others.
        by_run = {t[0]: t for t in tasks}
        answer_of = dict(kept)
        for row in runs:
            try:
                with begin():
                    task = [by_run[row[0]]] if row[0] in by_run else []
                    final = [row[0]] if row[0] in finals else []
                    answer = [(row[0], answer_of[row[0]])] if row[0] in answer_of else []
                    write_rows(db, [row], task, final, answer)
            except peewee.IntegrityError:
                log.warning("dropping the record of run %s: its company is gone", row[0])
