"""SQLite: the journal's commits on the event loop, and the checkpoints they no longer do.

Why on the loop. On SQLite in WAL mode with synchronous=NORMAL a commit is a few page writes to
the operating system's cache, no fsync: a one-run flush costs ~0.25 ms of CPU. Sent to a
database thread, the same flush took ~1.1 ms at the median and 10-20 ms at p99 under half the
callback path's load, because each step of it (peewee, the sqlite3 module between statements)
waits for the GIL that the busy event loop holds. Inline, the loop is blocked for the commit's own
CPU and nothing else, and the run's caller gets its answer that much sooner (docs/design.md §3).

What keeps the loop from ever waiting:
- The connection is the loop's own, with a busy timeout of 0: when another connection holds the
  write lock (an API call, the run queue's lease renewal, another runner process) BEGIN
  IMMEDIATE fails at once. `write_soon` then tries again after 1, 1, 2 and 4 ms, sleeping on
  the loop (which goes on serving, and lets the holder's thread have the GIL to finish): those
  writers hold the lock for a millisecond or two, and under half the bench's load about one
  flush a second met one. Only a lock held longer sends the flush to a database thread, which
  waits for the lock as every other writer does.
- Only small flushes come here (journal.INLINE_FLUSH_BYTES); big checkpoints go to a thread.
- This connection never checkpoints (wal_autocheckpoint=0): a checkpoint copies up to a
  thousand pages into the database file and fsyncs twice, ~20 ms here, which SQLite would
  otherwise run inside whichever commit crossed the threshold. `Checkpointer` runs them on a
  database thread instead, PASSIVE (beside the writers), and a RESTART only when continuous
  writes kept the WAL from ever being wholly copied, so the WAL file stays bounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import peewee

from control_plane.store.db import SQLITE_PRAGMAS, database

if TYPE_CHECKING:
    from control_plane.grpckit.servicer import Runtime

log = logging.getLogger(__name__)

Write = Callable[[peewee.Database, Callable[[], AbstractContextManager[object]]], None]


class InlineCommit:
    """A SQLite connection used only on the event loop's thread, never waiting for a lock."""

    def __init__(self, path: str) -> None:
        pragmas = {**SQLITE_PRAGMAS, "busy_timeout": 0, "wal_autocheckpoint": 0}
        self.db = peewee.SqliteDatabase(path, pragmas=pragmas, timeout=0)
        #: Flushes that found the write lock taken and went to a thread (for tests and the bench).
        self.deferred = 0
        #: Flushes that found it taken, waited on the loop and were then committed here.
        self.waited = 0

    @classmethod
    def for_database(cls, db: peewee.Database) -> InlineCommit | None:
        """One for a SQLite database on disk; None for PostgreSQL (a commit is a network round
        trip: it stays on a thread) and for an in-memory database (a second connection would
        see another database)."""
        if not isinstance(db, peewee.SqliteDatabase) or db.database in ("", ":memory:"):
            return None
        return cls(db.database)

    async def write_soon(self, write: Write) -> bool:
        """`write`, retried after BUSY_WAITS_S while the write lock is held elsewhere; False when
        it is still held after them (or the write failed otherwise): nothing was written, the
        caller writes it on a thread."""
        for tries, wait_s in enumerate((*BUSY_WAITS_S, None)):
            try:
                self.write(write)
            except peewee.OperationalError as exc:
                if wait_s is None or not _locked(exc):
                    self.deferred += 1
                    log.debug("inline commit deferred to a thread: %s", exc)
                    return False
                await asyncio.sleep(wait_s)
                continue
            self.waited += tries > 0
            return True
        return False  # not reached: the last try returns either way

    def write(self, write: Write) -> None:
        """Runs `write(db, begin)` in a transaction taken at once; raises OperationalError
        ("database is locked") when the write lock is held elsewhere, with nothing written."""
        self.db.connect(reuse_if_open=True)
        write(self.db, lambda: self.db.atomic("IMMEDIATE"))

    def close(self) -> None:
        if not self.db.is_closed():
            self.db.close()


#: Seconds `write_soon` sleeps between tries while another connection holds the write lock.
BUSY_WAITS_S = (0.001, 0.001, 0.002, 0.004)


def _locked(exc: peewee.OperationalError) -> bool:
    """SQLITE_BUSY: another connection holds the lock (sqlite3 says "database is locked")."""
    return "locked" in str(exc) or "busy" in str(exc)


#: Seconds between checks; at ~2,000 runs/s a check finds a few thousand frames to copy.
CHECK_INTERVAL_S = 0.2
#: WAL frames (pages) past which a RESTART checkpoint waits for the writers and rewinds the
#: WAL; PASSIVE ones, running beside continuous writes, may never copy it all (~64 MiB).
RESTART_FRAMES = 16_000


class Checkpointer:
    """Copies the WAL into the database on a database thread, off every commit's path."""

    def __init__(self, runtime: Runtime, changed: Callable[[], int]) -> None:
        self.rt = runtime
        #: A counter that moves when something was written (the journal's commits): an idle
        #: runner does not checkpoint.
        self._changed = changed
        self._task: asyncio.Task | None = None
        self.checkpoints = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="wal-checkpoints")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:  # what the last commits wrote is copied before the process ends
            await self.checkpoint()
        except Exception:  # the next start's first checkpoint copies it
            log.warning("cannot checkpoint the database's WAL", exc_info=True)

    async def checkpoint(self) -> tuple[int, int, int]:
        """One PASSIVE checkpoint, and a RESTART when the WAL has grown past RESTART_FRAMES;
        SQLite's (busy, frames in the WAL, frames copied)."""
        result = await self.rt.db(lambda: _checkpoint("PASSIVE"))
        if result[1] >= RESTART_FRAMES:
            result = await self.rt.db(lambda: _checkpoint("RESTART"))
        self.checkpoints += 1
        return result

    async def _run(self) -> None:
        seen = self._changed()
        while True:
            await asyncio.sleep(CHECK_INTERVAL_S)
            now = self._changed()
            if now == seen:
                continue
            seen = now
            try:
                await self.checkpoint()
            except Exception:
                # Not fatal: commits go on, the WAL grows until a checkpoint succeeds.
                log.warning("cannot checkpoint the database's WAL", exc_info=True)


def _checkpoint(mode: str) -> tuple[int, int, int]:
    busy, frames, copied = database.execute_sql(f"PRAGMA wal_checkpoint({mode})").fetchone()
    return int(busy), int(frames), int(copied)
