"""A shape run in an engine worker process keeps the bounded shape log and its count: the worker
gets both with the checkpoint and hands both back (runs/workers.py)."""

from __future__ import annotations

import json

from control_plane.engine import Progress, RunInput, ShapeLog
from control_plane.engine.budgets import Budgets
from control_plane.engine.shape_log import HEAD_ENTRIES, KEPT_ENTRIES
from control_plane.runs import checkpoint
from control_plane.runs.workers import EngineWorkers

SOURCE = json.dumps(
    {
        "shapes": [
            {"id": "t", "type": "trigger"},
            {"id": "m", "type": "map", "expression": "payload"},
        ]
    }
)


async def test_the_log_count_survives_a_worker():
    workers = EngineWorkers(1, 1024)
    try:
        run_input = RunInput("r", "c", "f", "cb", "", "POST", (), (), b"")
        progress = Progress(position=1, bucket=[1])
        for i in range(2_500):
            progress.log(ShapeLog(f"s{i}", "map", "ok", 1, 1, 1))
        state = checkpoint.dump(run_input, progress)
        await workers.run_shape(
            0, "v", SOURCE, run_input, progress, state, Budgets(shape_log=5_000), None
        )
    finally:
        await workers.close()
    assert progress.logged == 2_501
    assert len(progress.shapes) == KEPT_ENTRIES
    assert progress.shapes[HEAD_ENTRIES].error == f"{2_501 - (KEPT_ENTRIES - 1)} entries left out"
    assert progress.shapes[-1].shape_id == "m"
