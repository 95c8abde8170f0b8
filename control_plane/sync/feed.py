"""Notices new revisions and wakes every sync stream.

Writes made by this process call `notify()` and are seen at once; writes made by other replicas
sharing the database are seen by polling the one-row revision counter every `poll_s` seconds
(a primary-key read). Wake-ups are coalesced: a stream that wakes reads everything since what it
last sent, so no backlog of notifications can build up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from control_plane.store import changes

if TYPE_CHECKING:
    from control_plane.api.base import Runtime

log = logging.getLogger(__name__)


class ChangeFeed:
    def __init__(self, poll_s: float) -> None:
        self.poll_s = poll_s
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
            try:
                await asyncio.wait_for(self._kick.wait(), self.poll_s)
            except TimeoutError:
                pass
            self._kick.clear()
