"""Shapes inside paths run in an engine worker process like any other: the worker gets the
frames and the saved buckets with the checkpoint, and hands back the cursor (position, frames,
log, notices) with the new checkpoint text; a failure the worker catches moves to `catch`."""

from __future__ import annotations

import json

from control_plane.engine import Progress, RunInput, validate_definition
from control_plane.engine.budgets import Budgets
from control_plane.engine.executor import current_shape
from control_plane.runs import checkpoint
from control_plane.runs.workers import EngineWorkers

DEFINITION = {
    "shapes": [
        {"id": "t", "type": "trigger"},
        {
            "id": "b",
            "type": "branch",
            "paths": [
                {"shapes": [{"id": "first", "type": "map", "expression": "'one'"}]},
                {
                    "shapes": [
                        {
                            "id": "tc",
                            "type": "try_catch",
                            "try": [{"id": "boom", "type": "map", "expression": "abs(payload)"}],
                            "catch": [
                                {"id": "n", "type": "notify", "message": "{{vars.error.shape_id}}"}
                            ],
                        }
                    ]
                },
            ],
        },
        {"id": "last", "type": "map", "expression": "payload"},
    ]
}
SOURCE = json.dumps(DEFINITION)


async def test_shapes_inside_paths_run_in_a_worker_from_the_checkpoint():
    definition = validate_definition(DEFINITION)
    run_input = RunInput("r", "c", "f", "cb", "", "POST", (), (), b"")
    progress = Progress(position=1, bucket=["x"])
    state = checkpoint.dump(run_input, progress)
    workers = EngineWorkers(1, 1024)
    seen = []
    try:
        while progress.position < len(definition.shapes):
            seen.append(current_shape(definition, progress).id)
            state, _, _ = await workers.run_shape(
                1, "v", SOURCE, run_input, progress, state, Budgets(), None
            )
    finally:
        await workers.close()
    assert seen == ["b", "first", "tc", "boom", "n", "last"]
    assert [(s.shape_id, s.status) for s in progress.shapes][-2:] == [("n", "ok"), ("last", "ok")]
    assert [n["message"] for n in progress.notices] == ["boom"]
    _, final = checkpoint.load(state)
    assert final.bucket == ["one", "x"] and final.frames == [] and final.saved == []
    assert final.vars["error"]["shape_id"] == "boom"
