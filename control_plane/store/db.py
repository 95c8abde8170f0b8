"""Database selection: one `DatabaseProxy`, initialised from `DATABASE_URL` at process start.

SQLite (the embedded default) runs in WAL mode with foreign keys on, so readers never block the
writer; PostgreSQL is the engine for several replicas. Nothing connects at import time.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import urlparse

import peewee
from playhouse.db_url import connect

from control_plane.secrets.files import FILE_MODE, private_dir, tighten

database = peewee.DatabaseProxy()

SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "foreign_keys": 1,
    # WAL + NORMAL is durable against application crashes and fast; an OS crash may lose the
    # last transactions, which the sync protocol (revisions, resync) tolerates.
    "synchronous": 1,
    "busy_timeout": 10_000,
}


def open_database(url: str) -> peewee.Database:
    """Builds the database for `url` and points the proxy at it."""
    scheme = urlparse(url).scheme
    if scheme == "sqlite":
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            _private_sqlite_files(Path(path))
        db = peewee.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=10)
    elif scheme in ("postgres", "postgresql"):
        db = connect(url)
    else:
        raise ValueError(f"DATABASE_URL must start with sqlite:/// or postgres://, not {scheme!r}")
    database.initialize(db)
    return db


def _private_sqlite_files(path: Path) -> None:
    """The database holds key digests and sealed signatures: 0600 in a 0700 directory.

    SQLite creates the -wal and -shm files with the database file's mode, so creating that file
    0600 before SQLite does is what keeps them private too; files an older version left with the
    umask's mode are tightened.
    """
    private_dir(path.absolute().parent)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    except FileExistsError:
        pass
    for suffix in ("", "-wal", "-shm"):
        tighten(Path(f"{path}{suffix}"))


def is_sqlite() -> bool:
    return isinstance(database.obj, peewee.SqliteDatabase)


def lock_rows(query: peewee.Select, mode: str) -> peewee.Select:
    """Locks the selected rows until commit ("FOR UPDATE" or "FOR SHARE") on PostgreSQL.

    Under READ COMMITTED two writers can both read a parent row, then act on stale facts (edit a
    draft a concurrent deploy just froze; create a callback under a flow being deleted). SQLite
    needs nothing: BEGIN IMMEDIATE already lets one writer in at a time.
    """
    return query if is_sqlite() or not mode else query.for_update(mode)


def write_transaction() -> AbstractContextManager[object]:
    """A transaction for writes.

    On SQLite it takes the write lock up front (BEGIN IMMEDIATE): a deferred transaction that
    reads first and writes later can fail with "database is locked" instead of waiting.
    """
    if is_sqlite():
        return database.obj.atomic("IMMEDIATE")
    return database.atomic()


def checkpoint() -> None:
    """SQLite: copies the WAL into the database file and empties it, so data a migration
    replaced (plaintext signatures) is overwritten in the file, not left in old pages."""
    if is_sqlite():
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
