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
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import peewee

from control_plane.store.models import Run

if TYPE_CHECKING:
    from control_plane.api.base import Runtime

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

    def row(self) -> dict:
        data = asdict(self)
        data["company"] = data.pop("company_id")
        data["shapes"] = json.dumps(self.shapes, separators=(",", ":"))
        return data


class RunRecorder:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._dirty: dict[str, RunRecord] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

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
        if not self._dirty:
            return
        # Rows are taken here, on the loop, so the database thread never reads a record that
        # the loop is changing.
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


def _upsert(rows: list[dict]) -> None:
    fields = [f for f in Run._meta.sorted_fields if f.name != "id"]
    Run.insert_many(rows).on_conflict(
        conflict_target=[Run.id],
        update={f: peewee.EXCLUDED[f.column_name] for f in fields},
    ).execute()


def _write(rows: list[dict]) -> None:
    db = Run._meta.database
    try:
        with db.atomic():
            for i in range(0, len(rows), 200):
                _upsert(rows[i : i + 200])
    except peewee.IntegrityError:
        # One bad row (its company was deleted mid-run) must not lose the others.
        for row in rows:
            try:
                with db.atomic():
                    _upsert([row])
            except peewee.IntegrityError:
                log.warning("dropping the record of run %s: its company is gone", row["id"])
