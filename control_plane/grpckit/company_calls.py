"""How many API calls of one company run at once (docs/quotas.md, "Calls at once").

Every API call runs as a job on the database thread pool that all tenants and the runner share
(BOOMERANG_DB_THREADS). Unbounded, one company's calls (a flood of them, or a few slow ones: a
1 MiB definition takes ~150 ms to validate) could take every thread, and every other tenant's
calls and the runner's database work would queue behind them. So a call made with a company's
key holds one of that company's `running` slots while its job runs; a call that finds them all
taken waits for one, in arrival order, with at most `waiting` others of its company; past that it
fails at once with RESOURCE_EXHAUSTED (ERROR_REASON_TOO_MANY_CALLS), without taking a thread, and
with a google.rpc.RetryInfo of RETRY_AFTER_S: nothing was done, so the SDKs send it again then.
Installation-wide keys (operators, edges, runners) are not counted.

A slot is given back when its job ends on its thread (or is dropped before it started), not when
the caller goes: a cancelled call whose job still runs keeps its slot, so cancelling calls cannot
put more of a company's jobs on the threads.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from control_plane.domain import errors

#: The RetryInfo delay of a refusal: a call's job takes a few ms (a ListRuns page) to ~150 ms (a
#: 1 MiB definition), so by then the line has usually moved; the SDKs back off from it.
RETRY_AFTER_S = 0.1


class CompanyCalls:
    def __init__(self, running: int, waiting: int) -> None:
        #: Jobs of one company on the threads at once.
        self.running = running
        #: Calls of one company waiting for a slot; past it, calls are refused.
        self.waiting = waiting
        # Taken on database threads (try_enter) and on the loop (the rest).
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}
        self._queues: dict[str, deque[asyncio.Future[None]]] = {}

    def busy(self, company: str) -> int:
        """Slots of `company` held now (for tests and metrics)."""
        with self._lock:
            return self._busy.get(company, 0)

    def try_enter(self, company: str) -> bool:
        """Takes a slot if one is free and nobody of the company waits; any thread."""
        with self._lock:
            busy = self._busy.get(company, 0)
            if busy >= self.running or company in self._queues:
                return False
            self._busy[company] = busy + 1
            return True

    async def enter(self, company: str) -> None:
        """Takes a slot, waiting in line for one; raises RESOURCE_EXHAUSTED when the line is
        full. On the loop."""
        with self._lock:
            busy = self._busy.get(company, 0)
            if busy < self.running and company not in self._queues:
                self._busy[company] = busy + 1
                return
            queue = self._queues.get(company)
            if queue is not None and len(queue) >= self.waiting:
                raise errors.resource_exhausted(
                    f"too many calls of this company at once (at most {self.running} run and "
                    f"{self.waiting} wait); try again shortly",
                    "TOO_MANY_CALLS",
                    {"running": str(self.running), "waiting": str(self.waiting)},
                    retry_after_s=RETRY_AFTER_S,
                )
            waiter = asyncio.get_running_loop().create_future()
            self._queues.setdefault(company, deque()).append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.leave(company)  # the slot was ours already: pass it on
            else:
                with self._lock:
                    queue = self._queues.get(company)
                    if queue is not None and waiter in queue:
                        queue.remove(waiter)
                        if not queue:
                            del self._queues[company]
            raise

    def leave_soon(self, company: str, loop: asyncio.AbstractEventLoop) -> None:
        """Gives a slot back from a database thread: `leave` on the loop."""
        loop.call_soon_threadsafe(self.leave, company)

    def leave(self, company: str) -> None:
        """Gives a slot back: to the first waiter still waiting, else free. On the loop."""
        with self._lock:
            queue = self._queues.get(company)
            while queue:
                waiter = queue.popleft()
                if not queue:
                    del self._queues[company]
                if not waiter.done():
                    waiter.set_result(None)  # the slot stays busy: it is the waiter's now
                    return
            busy = self._busy[company] - 1
            if busy:
                self._busy[company] = busy
            else:
                del self._busy[company]
