"""When each edge was last heard from (protocol point 7), written to the store in batches.

Edges heartbeat every 2 s; writing a row per heartbeat would cost the database one write per
edge every 2 s. Instead each process notes heartbeats in memory and writes them all in one
UPDATE at most every FLUSH_S. `last_seen_at` then lags the truth by at most FLUSH_S plus a
heartbeat interval, well inside the 10 s liveness window.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from control_plane.sync import edges

if TYPE_CHECKING:
    from control_plane.grpckit.servicer import Runtime

log = logging.getLogger(__name__)

FLUSH_S = 3.0


class Liveness:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self._heard: set[str] = set()
        self._flushed_at = time.monotonic()
        self._lock = asyncio.Lock()

    async def heard(self, edge_id: str) -> None:
        """Notes that `edge_id` is alive; writes the pending notes if the last write is old."""
        self._heard.add(edge_id)
        if time.monotonic() - self._flushed_at < FLUSH_S or self._lock.locked():
            return
        async with self._lock:
            ids, self._heard = sorted(self._heard), set()
            self._flushed_at = time.monotonic()
            try:
                await self.rt.db(lambda: edges.seen(ids))
            except Exception:
                log.exception("cannot record edge heartbeats; will retry")
                self._heard.update(ids)
