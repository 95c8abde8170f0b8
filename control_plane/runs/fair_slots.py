"""Engine worker slots shared fairly between companies (round robin), not first come first served.

A lane's workers (BOOMERANG_ENGINE_WORKERS processes) serve every company's heavy shapes. In the
pool's own first-come queue, one company with many runs of heavy shapes (up to its runs in
flight) put all of them ahead of another company's one shape, which then waited for the lot. So
at most as many shapes as there are workers (plus one queued, workers.py) are handed to the
pool, and when one ends the next goes to the company after the last served, in turn: a company
waits for at most one shape of each other company with shapes waiting, however many each has
queued. Alone, a company still gets every worker.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque


class FairSlots:
    def __init__(self, size: int) -> None:
        self.size = size
        self.busy = 0
        #: Waiters by company, companies in the order they are served next.
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    async def acquire(self, company: str) -> None:
        """Takes a slot, waiting for the company's turn when none is free."""
        if self.busy < self.size and not self._waiting:
            self.busy += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        queue = self._waiting.get(company)
        if queue is None:
            queue = self._waiting[company] = deque()
        queue.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # the slot was ours already: pass it on
            elif waiter in queue:
                queue.remove(waiter)
                if not queue and self._waiting.get(company) is queue:
                    del self._waiting[company]
            raise

    def release(self) -> None:
        """Gives a slot back: to the next company in turn with a waiter, else free."""
        while self._waiting:
            company, queue = next(iter(self._waiting.items()))
            del self._waiting[company]
            waiter = queue.popleft()
            if queue:
                self._waiting[company] = queue  # to the back of the line
            if not waiter.done():
                waiter.set_result(None)
                return
        self.busy -= 1
