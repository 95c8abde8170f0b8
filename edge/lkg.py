"""The last-known-good copy of the cache on disk (docs/design.md §3; Kong's hybrid-mode LKG).

Format: a SQLite database (stdlib `sqlite3`), one row per record holding the record's protobuf
bytes, and a `meta` row with the epoch and revision. A change set is written as one transaction
that upserts and deletes only the records it names, so a signature rotation with a million
callbacks present writes a few rows, not the whole state (the previous format, one protobuf of
everything rewritten per change, grew with the installation).

A snapshot, or a change set that does not follow what the file holds (a write failed earlier,
say), rewrites the file whole: a new database next to it, fsync, os.replace, fsync of the
directory. Either way a crash leaves the previous state or the new one: SQLite's rollback
journal (synchronous=FULL) makes each transaction atomic, and the file's mtime is the moment
it was last written, which dates the state when it is loaded. Blocking: call off the event loop.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from google.protobuf.message import DecodeError

from boomerang.v1 import callback_sync_service_pb2 as sync_pb2
from edge.cache import (
    EMPTY,
    CacheState,
    CallbackRecord,
    EnvironmentRecord,
    FlowRecord,
    apply,
)
from edge.config import private_state_dir

log = logging.getLogger(__name__)

# table -> (protobuf message, cache record)
_TABLES = {
    "callbacks": (sync_pb2.CallbackRecord, CallbackRecord),
    "flows": (sync_pb2.FlowRecord, FlowRecord),
    "environments": (sync_pb2.EnvironmentRecord, EnvironmentRecord),
}
_SCHEMA = [
    *(f"CREATE TABLE {t} (id TEXT PRIMARY KEY, record BLOB NOT NULL)" for t in _TABLES),
    "CREATE TABLE meta (id INTEGER PRIMARY KEY CHECK (id = 1), epoch TEXT, revision INTEGER)",
]
_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class LoadedState:
    state: CacheState
    #: When the file was written (wall clock): the last time the control plane confirmed it.
    written_at: float


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


class LkgStore:
    """The file, kept open between writes; remembers which state it holds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: sqlite3.Connection | None = None
        self._holds: tuple[str, int] | None = None  # (epoch, revision) on disk, if known

    def save(
        self,
        state: CacheState,
        chunks: Sequence[sync_pb2.SyncCallbacksResponse] = (),
        base: CacheState | None = None,
    ) -> None:
        """Persists `state`, reached by applying the set `chunks` to `base`: only the records
        the set names when the file holds `base`, the whole state otherwise."""
        if self._conn is None and self._holds is None:
            self._open_existing()
        incremental = (
            chunks
            and not chunks[0].snapshot
            and base is not None
            and self._conn is not None
            and self._holds == (base.epoch, base.revision)
        )
        self._holds = None  # unknown until this write succeeds
        if incremental:
            self._write_changes(state, chunks)
        else:
            self._rewrite(state, chunks)
        self._holds = (state.epoch, state.revision)

    def _open_existing(self) -> None:
        """Learns which state the file holds (its meta row), so that changes following it are
        written as changes even when this process did not write it (a restart)."""
        if not self.path.exists():
            return
        conn = _connect(self.path)
        try:
            (epoch, revision) = conn.execute("SELECT epoch, revision FROM meta").fetchone()
        except (sqlite3.Error, TypeError):
            conn.close()
            return  # not ours or unreadable: the next save rewrites it
        self._conn, self._holds = conn, (epoch, revision)

    def _write_changes(self, state: CacheState, chunks) -> None:
        conn = self._conn
        assert conn is not None
        conn.execute("BEGIN IMMEDIATE")
        try:
            _write_set(conn, state.epoch, state.revision, chunks)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _rewrite(self, state: CacheState, chunks) -> None:
        """A new file holding `state`: from the snapshot's own chunks when that is what `chunks`
        is (already encoded), from the state's records otherwise."""
        writer = self.begin_snapshot()
        try:
            if chunks and chunks[0].snapshot:
                for chunk in chunks:
                    writer.add(chunk)
            else:
                writer.add_state(state)
            writer.commit(state)
        finally:
            writer.abort()  # after commit: nothing left to do

    def begin_snapshot(self) -> SnapshotWriter:
        """A new file, filled chunk by chunk as a snapshot arrives; it replaces the current one
        at `commit`, or is thrown away at `abort` (the current file is left as it was)."""
        self.close()
        self._holds = None
        return SnapshotWriter(self)

    def _replaced(self, state: CacheState) -> None:
        self._conn = _connect(self.path)
        self._holds = (state.epoch, state.revision)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class SnapshotWriter:
    """One snapshot being written to a new file next to the current one. Blocking (call off
    the event loop); `abort` may come from another thread than `add`, hence the lock."""

    def __init__(self, store: LkgStore) -> None:
        self._store = store
        self._lock = threading.Lock()
        private_state_dir(store.path.parent)
        self._tmp = store.path.with_name(f".{store.path.name}.tmp")
        self._tmp.unlink(missing_ok=True)
        # Created 0600 before SQLite opens it; SQLite gives its journal the same mode, and
        # os.replace keeps it: only this user reads the digests and routes.
        os.close(os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        self._conn: sqlite3.Connection | None = _connect(self._tmp)
        self._conn.execute("BEGIN")
        for statement in _SCHEMA:
            self._conn.execute(statement)
        self._conn.execute("INSERT INTO meta VALUES (1, '', 0)")
        self._deleted: list[sync_pb2.SyncCallbacksResponse] = []

    def add(self, chunk: sync_pb2.SyncCallbacksResponse) -> None:
        with self._lock:
            if self._conn is None:
                return  # aborted
            _write_set(self._conn, chunk.epoch, chunk.revision, [chunk], deletions=False)
            if (
                chunk.deleted_callback_ids
                or chunk.deleted_flow_ids
                or chunk.deleted_environment_ids
            ):
                self._deleted.append(chunk)

    def add_state(self, state: CacheState) -> None:
        with self._lock:
            assert self._conn is not None
            _write_state(self._conn, state)

    def commit(self, state: CacheState) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
            assert conn is not None, "aborted"
            try:
                # Deletions after every upsert, as edge.cache applies a set.
                _write_set(conn, state.epoch, state.revision, self._deleted, upserts=False)
                conn.execute("COMMIT")
            finally:
                conn.close()
            os.replace(self._tmp, self._store.path)
            _fsync_dir(self._store.path.parent)
            self._store._replaced(state)

    def abort(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._tmp.unlink(missing_ok=True)


def _write_set(
    conn: sqlite3.Connection,
    epoch: str,
    revision: int,
    chunks,
    *,
    upserts: bool = True,
    deletions: bool = True,
) -> None:
    """The records a set names: upserts, then deletions (as `edge.cache.apply` does)."""
    for m in chunks if upserts else ():
        for table, records in (
            ("callbacks", m.callbacks),
            ("flows", m.flows),
            ("environments", m.environments),
        ):
            conn.executemany(
                f"INSERT OR REPLACE INTO {table} (id, record) VALUES (?, ?)",
                ((r.id, r.SerializeToString()) for r in records),
            )
    for m in chunks if deletions else ():
        for table, ids in (
            ("callbacks", m.deleted_callback_ids),
            ("flows", m.deleted_flow_ids),
            ("environments", m.deleted_environment_ids),
        ):
            conn.executemany(f"DELETE FROM {table} WHERE id = ?", ((i,) for i in ids))
    conn.execute("UPDATE meta SET epoch = ?, revision = ? WHERE id = 1", (epoch, revision))


def _write_state(conn: sqlite3.Connection, state: CacheState) -> None:
    for table, records in (
        ("callbacks", state.callbacks.values()),
        ("flows", state.flows.values()),
        ("environments", state.environments.values()),
    ):
        conn.executemany(
            f"INSERT INTO {table} (id, record) VALUES (?, ?)",
            ((r.id, r.to_proto().SerializeToString()) for r in records),
        )
    conn.execute(
        "UPDATE meta SET epoch = ?, revision = ? WHERE id = 1", (state.epoch, state.revision)
    )


def _rows(conn: sqlite3.Connection, table: str) -> Iterable[bytes]:
    cursor = conn.execute(f"SELECT record FROM {table}")
    while rows := cursor.fetchmany(_BATCH):
        for (record,) in rows:
            yield record


def load(path: Path) -> LoadedState | None:
    """The state saved at `path`, or None when there is none or it cannot be read (logged)."""
    if not path.exists():
        return None
    try:
        written_at = path.stat().st_mtime
        # Read-write: a transaction a crash interrupted is rolled back from its journal first.
        conn = sqlite3.connect(path)
        try:
            (epoch, revision) = conn.execute("SELECT epoch, revision FROM meta").fetchone()
            tables = {}
            for table, (message, record) in _TABLES.items():
                tables[table] = {
                    r.id: r
                    for r in (record.from_proto(message.FromString(b)) for b in _rows(conn, table))
                }
        finally:
            conn.close()
    except sqlite3.DatabaseError:
        return _load_legacy(path)
    except (sqlite3.Error, DecodeError, OSError, TypeError) as e:
        log.warning("ignoring unreadable last-known-good file %s: %s", path, e)
        return None
    environments = tables["environments"]
    state = CacheState(
        epoch=epoch,
        revision=revision,
        callbacks=MappingProxyType(tables["callbacks"]),
        flows=MappingProxyType(tables["flows"]),
        environments=MappingProxyType(environments),
        prefixes=MappingProxyType({(e.company, e.url_prefix): e.id for e in environments.values()}),
    )
    return LoadedState(state=state, written_at=written_at)


def _load_legacy(path: Path) -> LoadedState | None:
    """A file in the format before this one (one snapshot message), so an edge upgraded while
    the control plane is down still starts with its state."""
    try:
        message = sync_pb2.SyncCallbacksResponse.FromString(path.read_bytes())
        if not message.snapshot:
            raise ValueError("not a snapshot")
        state = apply(EMPTY, message)
        return LoadedState(state=state, written_at=path.stat().st_mtime)
    except (DecodeError, ValueError, OSError) as e:
        log.warning("ignoring unreadable last-known-good file %s: %s", path, e)
        return None


def save(path: Path, state: CacheState) -> None:
    """Writes `state` whole to `path` (see LkgStore for writing changes as they come)."""
    store = LkgStore(path)
    try:
        store.save(state)
    finally:
        store.close()


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
