"""Heavy shapes do not stall the event loop: the inline slice gives up within milliseconds, and
the same shape in an engine worker leaves the loop responsive, where inline it would stall it
for the whole evaluation; a worker that dies fails only that shape. Measured, with bounds a
stalled loop breaks by far."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time

import pytest

from control_plane.engine import Progress, RunInput, RunState, run_shape, validate_definition
from control_plane.engine.budgets import Budgets, Meter, SliceExhausted
from control_plane.runs import checkpoint
from control_plane.runs.driver import INLINE_STEPS
from control_plane.runs.workers import EngineWorkers, WorkerCrashed

# Twenty payloads of 5,000 items: each evaluation stays within its step budget, the shape as a
# whole takes a few hundred milliseconds of CPU.
ITEMS = [{"n": (i * 7919) % 10007, "tags": ["a", "b"]} for i in range(5_000)]
SOURCE = json.dumps(
    {
        "shapes": [
            {"id": "t", "type": "trigger"},
            {"id": "m", "type": "map", "expression": "sort_by(payload.items, &n)[*].n"},
        ]
    }
)
HEAVY = validate_definition(json.loads(SOURCE))


def _state() -> tuple[Progress, RunState]:
    run_input = RunInput("r", "c", "f", "cb", "", "POST", (), (), b"")
    progress = Progress(position=1, bucket=[{"items": ITEMS}] * 20)
    return progress, RunState(run_input, Meter(Budgets()))


# The checkpoint text a worker starts from; in the runner a large bucket only ever exists as
# such text (made in a worker), so encoding it is not the loop's work.
_START = checkpoint.dump(RunInput("r", "c", "f", "cb", "", "POST", (), (), b""), _state()[0])


async def _in_worker(workers: EngineWorkers, progress: Progress, state: RunState) -> str:
    text, _, _ = await workers.run_shape(
        0, "v1", SOURCE, state.input, progress, _START, state.meter.budgets, None
    )
    return text


async def _max_lag(work) -> tuple[float, float]:
    """Runs `work()` while a ticker measures how late the loop wakes it; (max lag, work s)."""
    lags: list[float] = []
    stop = asyncio.Event()

    async def ticker() -> None:
        while not stop.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - before - 0.001)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0.01)
    started = time.perf_counter()
    await work()
    took = time.perf_counter() - started
    stop.set()
    await task
    return max(lags), took


def test_the_inline_slice_gives_up_within_milliseconds() -> None:
    progress, state = _state()
    state.meter.open_slice(INLINE_STEPS)
    started = time.perf_counter()
    with pytest.raises(SliceExhausted):
        run_shape(HEAVY, progress, state)
    assert time.perf_counter() - started < 0.02
    assert progress.position == 1 and progress.shapes == []  # unchanged: it runs again later


async def test_a_heavy_shape_in_a_worker_keeps_the_loop_responsive() -> None:
    workers = EngineWorkers(1, 1024)
    try:
        progress, state = _state()

        async def in_worker() -> None:
            await _in_worker(workers, progress, state)

        async def inline() -> None:
            p, st = _state()
            run_shape(HEAVY, p, st)

        await _max_lag(in_worker)  # starts the worker process
        progress, state = _state()
        worker_lag, took = await _max_lag(in_worker)
        inline_lag, _ = await _max_lag(inline)
    finally:
        await workers.close()
    print(
        f"heavy shape {took * 1000:.0f} ms: max loop lag {worker_lag * 1000:.1f} ms with a "
        f"worker, {inline_lag * 1000:.0f} ms inline"
    )
    assert progress.position == 2
    assert progress.shapes[-1].shape_id == "m" and progress.shapes[-1].status == "ok"
    assert took > 0.05  # heavy enough to matter
    # Relative, not timed: ~1 ms on a quiet machine, but a loaded one (CI beside other work)
    # delays the loop for reasons of its own. A stalled loop would lag for the whole shape.
    assert worker_lag < took / 3
    assert inline_lag > 3 * worker_lag


async def test_a_worker_that_dies_fails_its_shape_and_the_next_one_runs() -> None:
    workers = EngineWorkers(1, 1024)
    try:
        warm, state = _state()
        await _in_worker(workers, warm, state)
        progress, state = _state()
        task = asyncio.create_task(_in_worker(workers, progress, state))
        await asyncio.sleep(0.1)  # the worker is sorting (for ~0.4 s)
        for pid in list(workers._pools[0]._processes):
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(WorkerCrashed):
            await task
        assert progress.position == 1  # unchanged: the shape can run again
        await _in_worker(workers, progress, state)
        assert progress.position == 2
    finally:
        await workers.close()
