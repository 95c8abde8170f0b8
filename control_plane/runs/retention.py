"""Retention: ended runs are deleted once older than BOOMERANG_RUN_RETENTION_S, and kept answers
once past BOOMERANG_ANSWER_RETENTION_S (runs/answers.py: their bytes leave the company's usage in
the same transaction).

Only final runs are pruned (a run with a task row is never touched), in batches so one sweep
never holds the write lock for long. Checkpoints need no sweep of their own: a run's task row is
deleted in the same transaction that makes the run final (journal.py).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

from control_plane.runs import answers
from control_plane.store.clock import utcnow
from control_plane.store.db import write_transaction
from control_plane.store.models import Run

if TYPE_CHECKING:
    from control_plane.grpckit.servicer import Runtime

log = logging.getLogger(__name__)
SWEEP_EVERY_S = 3600.0
BATCH = 1000


def prune_runs(older_than: dt.datetime, batch: int = BATCH) -> int:
    """Deletes final runs that ended before `older_than`; returns how many (blocking)."""
    total = 0
    while True:
        with write_transaction():
            ids = [
                row.id
                for row in Run.select(Run.id)
                .where(Run.ended_at.is_null(False), Run.ended_at < older_than)
                .limit(batch)
            ]
            if not ids:
                return total
            total += Run.delete().where(Run.id.in_(ids)).execute()


class RunRetention:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="run-retention")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def sweep(self) -> int:
        cutoff = utcnow() - dt.timedelta(seconds=self.rt.settings.run_retention_s)
        return await self.rt.db(lambda: prune_runs(cutoff))

    async def sweep_answers(self) -> int:
        now = utcnow()
        return await self.rt.db(lambda: answers.prune(now, BATCH))

    async def _run(self) -> None:
        # Expired answers are ignored at once; the sweep only frees their room, so it runs at
        # least four times per retention.
        every = min(SWEEP_EVERY_S, max(1.0, self.rt.settings.answer_retention_s / 4))
        runs_due = 0.0
        while True:
            try:
                if time.monotonic() >= runs_due:
                    runs_due = time.monotonic() + SWEEP_EVERY_S
                    pruned = await self.sweep()
                    if pruned:
                        log.info("pruned %d runs past their retention", pruned)
                pruned = await self.sweep_answers()
                if pruned:
                    log.info("pruned %d kept answers past their retention", pruned)
            except Exception:
                log.exception("cannot prune runs")
            await asyncio.sleep(every)
