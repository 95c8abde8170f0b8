"""PostgreSQL: the journal's commits on the event loop, over an asynchronous connection.

Why on the loop. A flush sent to a database thread pays a hand-off each way and three round
trips (BEGIN, the upserts, COMMIT), and between them the thread's Python waits for the GIL that
the busy loop holds. Here the loop builds the flush's statements (psycopg2's `mogrify`, in C),
sends them in one message, and goes on serving until the answer is readable: one round trip, no
thread. PostgreSQL runs the statements of one message as one transaction (its "simple query"
protocol), so the flush stays all or nothing. Measured with `bench/callback_path.py --postgres`
(docs/design.md §3, "On PostgreSQL").

What goes to a database thread instead, as before: a flush that keeps answers (runs/answers.py
writes them through the models), a big one (journal.INLINE_FLUSH_BYTES), one whose rows break a
constraint (the thread writes them one by one, so one bad row does not lose the others), and one
whose connection failed (the upserts are idempotent: writing them again is safe whether or not
the lost commit went through). A failed connection is closed; the next flush opens a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import peewee
import psycopg2
from psycopg2 import extensions


class LoopCommit:
    """A PostgreSQL connection of the event loop's own, in psycopg2's asynchronous mode."""

    def __init__(self, db: peewee.PostgresqlDatabase) -> None:
        self.params = {"database": db.database, **db.connect_params}
        self.conn: extensions.connection | None = None

    @classmethod
    def for_database(cls, db: peewee.Database) -> LoopCommit | None:
        """One for a PostgreSQL database; None for SQLite (runs/inline_commit.py)."""
        return cls(db) if isinstance(db, peewee.PostgresqlDatabase) else None

    async def execute(self, build: Callable[[extensions.cursor], bytes]) -> None:
        """Runs the statements `build(cursor)` returns (one text, bound with the cursor's
        `mogrify`) as one transaction, and waits for its end.

        Raises psycopg2's error: the statements' (an IntegrityError; a deadlock's
        TransactionRollbackError, which journal.transient recognises), or the connection's."""
        conn = await self._connection()
        try:
            cursor = conn.cursor()
            cursor.execute(build(cursor))
            await _ready(conn)
        except psycopg2.Error as exc:
            if exc.pgcode is None:  # not the server's answer to the statements: the connection's
                self.close()
            raise
        except asyncio.CancelledError:
            self.close()  # a statement whose end nobody will read: the connection is not reusable
            raise

    async def _connection(self) -> extensions.connection:
        if self.conn is None or self.conn.closed:
            self.conn = None
            # libpq resolves the host name before it returns: on a thread, not on the loop.
            loop = asyncio.get_running_loop()
            conn = await loop.run_in_executor(
                None, lambda: psycopg2.connect(async_=True, **self.params)
            )
            try:
                await _ready(conn)
            except BaseException:
                conn.close()
                raise
            self.conn = conn
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


async def _ready(conn: extensions.connection) -> None:
    """Polls `conn` until its connection attempt or query is done, waiting on the loop for its
    socket (psycopg2's asynchronous protocol: poll() says what it waits for)."""
    loop = asyncio.get_running_loop()
    while True:
        state = conn.poll()
        if state == extensions.POLL_OK:
            return
        fd = conn.fileno()
        ready = loop.create_future()
        if state == extensions.POLL_READ:
            loop.add_reader(fd, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_reader(fd)
        else:  # POLL_WRITE
            loop.add_writer(fd, _wake, ready)
            try:
                await ready
            finally:
                loop.remove_writer(fd)


def _wake(ready: asyncio.Future[None]) -> None:
    if not ready.done():
        ready.set_result(None)
