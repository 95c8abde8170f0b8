"""Revoking a key ends the calls that use it, within a second (docs/security.md).

Open-ended calls (streams, waits) authenticate once, at their start. Each registers here under
its key's id for as long as it runs; a watcher asks the database every POLL_S which registered
keys no longer authenticate, so a revocation made through any replica counts, and ends their
calls with UNAUTHENTICATED (ERROR_REASON_INVALID_API_KEY).

Ending a call from outside its handler takes two steps: `abort_with_status` sends the status to
the client (cancelling the handler alone would leave the client waiting), then the handler's
task is cancelled so it stops reading, writing and waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import grpc

from control_plane.domain import errors
from control_plane.domain.api_keys import revoked_among
from control_plane.grpckit.status import to_status

log = logging.getLogger(__name__)

POLL_S = 0.5
REVOKED = errors.unauthenticated("the API key was revoked", "INVALID_API_KEY")

_Call = tuple[grpc.aio.ServicerContext, asyncio.Task]
Db = Callable[[Callable[[], set[str]]], Awaitable[set[str]]]


class KeySessions:
    """The open-ended calls in progress, by API key id."""

    def __init__(self, poll_s: float = POLL_S) -> None:
        self.poll_s = poll_s
        self._calls: dict[str, set[_Call]] = {}
        self._task: asyncio.Task | None = None

    def open(self, key_id: str, context: grpc.aio.ServicerContext) -> None:
        """Registers the calling handler's RPC until it ends. Call it from the handler's task."""
        call = (context, asyncio.current_task())
        self._calls.setdefault(key_id, set()).add(call)
        context.add_done_callback(lambda _: self._discard(key_id, call))

    def _discard(self, key_id: str, call: _Call) -> None:
        calls = self._calls.get(key_id)
        if calls is not None:
            calls.discard(call)
            if not calls:
                del self._calls[key_id]

    def __len__(self) -> int:
        return sum(len(calls) for calls in self._calls.values())

    def start(self, db: Db) -> None:
        self._task = asyncio.create_task(self._watch(db), name="key-revocation-watch")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _watch(self, db: Db) -> None:
        while True:
            await asyncio.sleep(self.poll_s)
            if not self._calls:
                continue
            key_ids = list(self._calls)
            try:
                revoked = await db(lambda ids=key_ids: revoked_among(ids))
            except Exception:
                log.exception("cannot check for revoked API keys; trying again")
                continue
            for key_id in revoked:
                await self.end(key_id)

    async def end(self, key_id: str) -> None:
        """Ends every registered call of `key_id` with UNAUTHENTICATED."""
        calls = self._calls.pop(key_id, set())
        if calls:
            log.info("API key %s was revoked: ending %d open call(s)", key_id, len(calls))
        status = to_status(REVOKED)
        for context, task in calls:
            with contextlib.suppress(Exception):  # AbortError: raised here by design
                await context.abort_with_status(status)
            if task is not None:
                task.cancel()
