"""Heavy shapes do not stall the event loop: the inline slice gives up within milliseconds, and
the same shape on an engine thread leaves the loop responsive, where inline it would stall it
for the whole evaluation. Measured, with bounds a stalled loop breaks by far."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from control_plane.engine import Progress, RunInput, RunState, run_shape, validate_definition
from control_plane.engine.budgets import Budgets, Meter, SliceExhausted
from control_plane.runs.driver import INLINE_STEPS
from control_plane.runs.lanes import EngineLanes

# Twenty payloads of 5,000 items: each evaluation stays within its step budget, the shape as a
# whole takes a few hundred milliseconds of CPU.
ITEMS = [{"n": (i * 7919) % 10007, "tags": ["a", "b"]} for i in range(5_000)]
HEAVY = validate_definition(
    {
        "shapes": [
            {"id": "t", "type": "trigger"},
            {"id": "m", "type": "map", "expression": "sort_by(payload.items, &n)[*].n"},
        ]
    }
)


def _state() -> tuple[Progress, RunState]:
    run_input = RunInput("r", "c", "f", "cb", "", "POST", (), (), b"")
    progress = Progress(position=1, bucket=[{"items": ITEMS}] * 20)
    return progress, RunState(run_input, Meter(Budgets()))


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


async def test_a_heavy_shape_on_a_thread_keeps_the_loop_responsive() -> None:
    old = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # as the runner sets it
    lanes = EngineLanes(1)
    try:
        progress, state = _state()

        async def on_thread() -> None:
            await lanes.run(0, lambda: run_shape(HEAVY, progress, state))

        async def inline() -> None:
            p, st = _state()
            run_shape(HEAVY, p, st)

        thread_lag, took = await _max_lag(on_thread)
        inline_lag, _ = await _max_lag(inline)
    finally:
        await lanes.close()
        sys.setswitchinterval(old)
    print(
        f"heavy shape {took * 1000:.0f} ms: max loop lag {thread_lag * 1000:.1f} ms on a thread, "
        f"{inline_lag * 1000:.0f} ms inline"
    )
    assert progress.position == 2
    assert took > 0.05  # heavy enough to matter
    assert thread_lag < 0.1  # 3-7 ms on a quiet machine; a stalled loop: the whole shape
    assert inline_lag > 3 * thread_lag
