"""A connection's rate limit: calls past it wait their turn, within the run's time.

Each connection (by id and revision) allows `rate_limit_per_minute` calls, evenly spaced: a call
takes the next free slot, 60/limit seconds after the previous one, and sleeps until then. Calls
are thus queued in arrival order, as Patchworks queues them, across every run on this runner
(each runner keeps its own count: with N runners a connection may see up to N times its limit).
A call whose slot would come after its deadline does not wait for nothing: it fails at once
with `RateLimitWait`, and its slot is not taken.
"""

from __future__ import annotations

import asyncio
import collections
import time

#: Connections a runner keeps a count for (least recently used out; an evicted one restarts).
MAX_TRACKED = 4096


class RateLimitWait(Exception):
    type = "rate_limited"
    status = None


class RateLimiter:
    def __init__(self) -> None:
        self._next: collections.OrderedDict[tuple[str, str], float] = collections.OrderedDict()

    def reserve(self, key: tuple[str, str], per_minute: int, deadline: float) -> float:
        """Takes the connection's next slot; returns the seconds to wait for it. `deadline` is
        a time.monotonic() value; raises RateLimitWait when the slot comes after it."""
        if per_minute <= 0:
            return 0.0
        now = time.monotonic()
        slot = max(now, self._next.get(key, 0.0))
        if slot > deadline:
            raise RateLimitWait(
                f"the connection's rate limit ({per_minute}/min) queues this call "
                f"{slot - now:.1f} s, past the time left to the call"
            )
        self._next[key] = slot + 60.0 / per_minute
        self._next.move_to_end(key)
        while len(self._next) > MAX_TRACKED:
            self._next.popitem(last=False)
        return slot - now

    async def acquire(self, key: tuple[str, str], per_minute: int, deadline: float) -> None:
        wait = self.reserve(key, per_minute, deadline)
        if wait > 0:
            await asyncio.sleep(wait)
