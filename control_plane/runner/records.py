"""Run records, written behind.

A run changes state up to three times in a few milliseconds (started, responded, ended). Writing
each change in its own transaction on the hot path would cost more than the run itself, so changes
are coalesced per run and flushed in one transaction every FLUSH_S seconds, off the event loop.
Trade-off, stated: a runner crash loses at most the last FLUSH_S of run records, never a
response already given (the response does not wait for the record).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import peewee

from control_plane.store.models import Run

if TYPE_CHECKING:
    from control_plane.grpckit.servicer import Runtime

log = logging.getLogger(__name__)
FLUSH_S = 0.05


@dataclass
class RunRecord:
    id: str
    company_id: str
    flow_id: str
    version_id: str
    environment_id: str
    callback_id: str
    started_at: dt.datetime
    status: str = "running"
    responded_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    response_status: int = 0
    error: str = ""
    shapes: list[dict] = field(default_factory=list)

    def row(self) -> tuple:
        """Column values in COLUMNS order. Written out by hand: dataclasses.asdict deep-copies
        and cost 90 µs a record on the event loop."""
        return (
            self.id,
            self.company_id,
            self.flow_id,
            self.version_id,
            self.environment_id,
            self.callback_id,
            self.status,
            self.started_at,
            self.responded_at,
            self.ended_at,
            self.response_status,
            self.error,
            json.dumps(self.shapes, separators=(",", ":")),
        )


class RunRecorder:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._dirty: dict[str, RunRecord] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        # One flush at a time: two in flight on different database threads could commit out of
        # order and leave a run's older state on top of its newer one.
        self._flushing = asyncio.Lock()

    def save(self, record: RunRecord) -> None:
        """Marks a run as changed; its current state is written with the next flush."""
        self._dirty[record.id] = record
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="run-recorder")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        async with self._flushing:
            if not self._dirty:
                return
            # Rows are taken here, on the loop, so the database thread never reads a record
            # that the loop is changing.
            rows = [r.row() for r in self._dirty.values()]
            self._dirty = {}
            await self.rt.db(lambda: _write(rows))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception:
                log.exception("cannot write run records")
            await asyncio.sleep(FLUSH_S)


# The run table's columns, in RunRecord.row() order.
COLUMNS = (
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
)


def _upsert_sql(db: peewee.Database) -> str:
    """INSERT ... ON CONFLICT (id) DO UPDATE, built once: peewee's query builder spent ~90 µs a
    row generating the same text. The syntax is shared by SQLite (3.24+) and PostgreSQL."""
    names = [f'"{f.column_name}"' for f in COLUMNS]
    marks = ", ".join([db.param] * len(names))
    updates = ", ".join(f"{n} = EXCLUDED.{n}" for n in names[1:])
    table = Run._meta.table_name
    return (
        f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({marks}) '
        f'ON CONFLICT ("id") DO UPDATE SET {updates}'
    )


def _upsert(db: peewee.Database, rows: list[tuple]) -> None:
    params = [tuple(f.db_value(v) for f, v in zip(COLUMNS, row, strict=True)) for row in rows]
    db.cursor().executemany(_upsert_sql(db), params)


def _write(rows: list[tuple]) -> None:
    db = Run._meta.database
    try:
        with db.atomic():
            _upsert(db, rows)
    except peewee.IntegrityError:
        # One bad row (its company was deleted mid-run) must not lose the others.
        for row in rows:
            try:
                with db.atomic():
                    _upsert(db, [row])
            except peewee.IntegrityError:
                log.warning("dropping the record of run %s: its company is gone", row[0])
