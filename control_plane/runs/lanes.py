"""Threads for shapes too heavy for the event loop, with pre-callback work first.

A shape first runs inline on the loop within a small slice of expression steps (driver.py); one
that needs more is run again here, on one of a few threads, with the run's whole budget. Jobs of
runs whose caller waits (lane 0) always start before tail jobs (lane 1), so a backlog of long
tails never delays callers (DESIGN: Patchworks' priority queue for pre-callback work).

Why threads and not processes: the budgets (engine/budgets.py) already bound what an expression
may cost in steps, bytes and nesting, so what is left to protect is the loop's latency. A thread
holding the GIL yields it every `sys.getswitchinterval()` (set to 1 ms by the runner), so the
loop that serves the API and the streams waits at most about that long; a process pool would add
pickling of the bucket both ways on every heavy shape for no further bound. A crash that takes
the process down (the OS killing it for memory) is caught by the run's attempts count instead.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


class EngineLanes:
    def __init__(self, threads: int) -> None:
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="engine")
        self._queue: asyncio.PriorityQueue[tuple[int, int, Callable[[], Any], asyncio.Future]] = (
            asyncio.PriorityQueue()
        )
        self._order = itertools.count()
        self._workers = [
            asyncio.create_task(self._work(), name=f"engine-lane-{i}") for i in range(threads)
        ]

    async def run(self, lane: int, fn: Callable[[], T]) -> T:
        """Runs `fn` on an engine thread once no job of a lower lane number waits."""
        done: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((lane, next(self._order), fn, done))
        return await done

    @property
    def waiting(self) -> int:
        return self._queue.qsize()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            _, _, fn, done = await self._queue.get()
            if done.cancelled():
                continue
            try:
                result = await loop.run_in_executor(self._pool, fn)
            except BaseException as exc:
                if not done.done():
                    done.set_exception(exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
            else:
                if not done.done():
                    done.set_result(result)

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._pool.shutdown(wait=False, cancel_futures=True)
