"""Notices new revisions and wakes every sync stream.

Writes made by this process call `notify()` and are seen at once; writes made by other replicas
sharing the database are seen by polling the one-row revision counter every `poll_s` seconds
(a primary-key read). Wake-ups are coalesced: a stream that wakes reads everything since what it
last sent, so no backlog of notifications can build up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

from control_plane.store import changes
from control_plane.store.clock import utcnow

if TYPE_CHECKING:
    from control_plane.grpckit.servicer import Runtime

log = logging.getLogger(__name__)


PRUNE_EVERY_S = 3600.0


class ChangeFeed:
    def __init__(self, poll_s: float, retention_s: float) -> None:
        self.poll_s = poll_s
        self.retention_s = retention_s
        self._pruned_at = 0.0
        self.head: changes.Head | None = None
        self._kick = asyncio.Event()
        self._waiters: set[asyncio.Event] = set()
        self._task: asyncio.Task | None = None

    def notify(self) -> None:
        self._kick.set()

    def subscribe(self) -> asyncio.Event:
        """An event set whenever the head revision moves; discard with `unsubscribe`."""
        event = asyncio.Event()
        self._waiters.add(event)
        return event

    def unsubscribe(self, event: asyncio.Event) -> None:
        self._waiters.discard(event)

    def start(self, runtime: Runtime) -> None:
        self._task = asyncio.create_task(self._run(runtime), name="change-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self, runtime: Runtime) -> None:
        while True:
            try:
                head = await runtime.db(changes.head)
            except Exception:
                log.exception("change feed cannot read the head revision; retrying")
                head = self.head
            if head != self.head:
                self.head = head
                for event in self._waiters:
                    event.set()
            await self._maybe_prune(runtime)
            try:
                await asyncio.wait_for(self._kick.wait(), self.poll_s)
            except TimeoutError:
                pass
            self._kick.clear()

    async def _maybe_prune(self, runtime: Runtime) -> None:
        """Hourly, trims the change log to the retention window (any replica may; it is
        idempotent)."""
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        cutoff = utcnow() - dt.timedelta(seconds=self.retention_s)
        try:
            deleted = await runtime.db(lambda: changes.prune(cutoff))
        except Exception:
            log.exception("cannot prune the change log; will retry")
            return
        if deleted:
            log.info("pruned %d changes older than %s", deleted, cutoff)
