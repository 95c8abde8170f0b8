"""Engine worker slots go to companies in turn (control_plane/runs/fair_slots.py): a company with
many heavy shapes queued does not make another company's one shape wait for all of them. Checked
on the slots alone, and through real worker processes (EngineWorkers with one worker a lane, so
two slots: the worker's and the next shape's, queued)."""

from __future__ import annotations

import asyncio
import json

import pytest

from control_plane.engine import Progress, RunInput
from control_plane.engine.budgets import Budgets
from control_plane.runs import checkpoint
from control_plane.runs.fair_slots import FairSlots
from control_plane.runs.lifecycle import LANE_CALLER
from control_plane.runs.workers import EngineWorkers


async def _served(slots: FairSlots, jobs: list[tuple[str, str]]) -> list[str]:
    """Names of `jobs` (company, name), all asking at once, in the order they got a slot."""
    order: list[str] = []

    async def job(company: str, name: str) -> None:
        await slots.acquire(company)
        order.append(name)
        await asyncio.sleep(0)
        slots.release()

    await asyncio.gather(*(job(company, name) for company, name in jobs))
    return order


async def test_a_freed_slot_goes_to_the_next_company_in_turn() -> None:
    jobs = [("a", "a1"), ("a", "a2"), ("a", "a3"), ("a", "a4"), ("b", "b1"), ("c", "c1")]
    # First come first served would give a1 a2 a3 a4 b1 c1.
    assert await _served(FairSlots(1), jobs) == ["a1", "a2", "b1", "c1", "a3", "a4"]
    assert await _served(FairSlots(2), jobs) == ["a1", "a2", "a3", "b1", "c1", "a4"]


async def test_a_company_alone_gets_every_slot() -> None:
    slots = FairSlots(3)
    for _ in range(3):
        await slots.acquire("a")
    assert slots.busy == 3


async def test_a_waiter_that_gives_up_leaves_its_place_and_keeps_no_slot() -> None:
    slots = FairSlots(1)
    await slots.acquire("a")
    gave_up = asyncio.ensure_future(slots.acquire("b"))
    waits = asyncio.ensure_future(slots.acquire("c"))
    await asyncio.sleep(0)
    gave_up.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gave_up
    slots.release()
    await waits  # the slot went past the one that gave up
    slots.release()
    assert slots.busy == 0 and not slots._waiting


SHAPES = [{"id": "t", "type": "trigger"}, {"id": "m", "type": "map", "expression": "payload"}]
SOURCE = json.dumps({"shapes": SHAPES})


async def test_through_worker_processes_another_companys_shape_does_not_wait_for_a_backlog():
    workers = EngineWorkers(1, 1024)
    done: list[str] = []

    async def shape(company: str, name: str) -> None:
        run_input = RunInput(name, company, "f", "cb", "", "POST", (), (), b"")
        progress = Progress(position=1, bucket=[1])
        state = checkpoint.dump(run_input, progress)
        await workers.run_shape(
            LANE_CALLER, "v", SOURCE, run_input, progress, state, Budgets(), None
        )
        done.append(name)

    try:
        await shape("warm", "warm")  # the worker process is up before the race starts
        names = [("a", f"a{i}") for i in range(6)] + [("b", "b1")]
        await asyncio.gather(*(shape(company, name) for company, name in names))
        # Two slots for one worker (the next shape waits queued): a0 and a1 take them.
        assert done[1:] == ["a0", "a1", "a2", "b1", "a3", "a4", "a5"]
        assert workers._slots[LANE_CALLER].busy == 0
    finally:
        await workers.close()
