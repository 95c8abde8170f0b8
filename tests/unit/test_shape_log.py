"""The shape log kept per run is bounded (engine/shape_log.py): a run of thousands of shapes keeps
its first entries, its last ones and a gap entry counting what was left out, while the shape_log
budget still counts every shape run."""

from __future__ import annotations

import json

import pytest

from control_plane.engine import Progress, execute, validate_definition
from control_plane.engine.budgets import Budgets
from control_plane.engine.shape_log import HEAD_ENTRIES, KEPT_BYTES, KEPT_ENTRIES, ShapeLog
from tests.unit.test_engine_execute import request


def _definition(count: int, id_length: int = 4):
    maps = [
        {"id": f"m{i}".ljust(id_length, "x"), "type": "map", "expression": "payload"}
        for i in range(count)
    ]
    return validate_definition({"shapes": [{"id": "trigger", "type": "trigger"}, *maps]})


def _stored(shapes: list[ShapeLog]) -> bytes:
    return json.dumps([s.to_doc() for s in shapes], separators=(",", ":")).encode()


async def test_a_long_run_keeps_its_head_its_tail_and_a_count_of_the_rest():
    result = await execute(_definition(5_000), request(), lambda r: None, Budgets(shape_log=10_000))
    assert result.status == "succeeded"
    log = result.shapes
    assert len(log) == KEPT_ENTRIES
    assert [s.shape_id for s in log[:HEAD_ENTRIES]] == ["trigger"] + [
        f"m{i}".ljust(4, "x") for i in range(HEAD_ENTRIES - 1)
    ]
    gap = log[HEAD_ENTRIES]
    left_out = 5_001 - (KEPT_ENTRIES - 1)
    assert (gap.status, gap.error) == ("omitted", f"{left_out} entries left out")
    assert [s.shape_id for s in log[HEAD_ENTRIES + 1 :]] == [
        f"m{i}".ljust(4, "x") for i in range(5_000 - (KEPT_ENTRIES - HEAD_ENTRIES - 1), 5_000)
    ]
    assert len(_stored(log)) < KEPT_BYTES


async def test_long_shape_ids_meet_the_byte_bound_first():
    result = await execute(
        _definition(3_000, id_length=64), request(), lambda r: None, Budgets(shape_log=10_000)
    )
    assert len(result.shapes) < KEPT_ENTRIES
    assert len(_stored(result.shapes)) <= KEPT_BYTES
    assert result.shapes[HEAD_ENTRIES].status == "omitted"


async def test_the_budget_counts_every_shape_not_only_those_kept():
    result = await execute(_definition(3_000), request(), lambda r: None, Budgets(shape_log=1_500))
    assert (result.status, result.budget) == ("failed", "shape_log")
    assert "logged 1500 shapes" in result.error
    assert len(result.shapes) == KEPT_ENTRIES


@pytest.mark.parametrize("count", [10, 2_500])
def test_a_checkpoint_keeps_the_count(count):
    progress = Progress()
    for i in range(count):
        progress.log(ShapeLog(f"s{i}", "map", "ok", 1, 0, 0))
    again = Progress.from_doc(json.loads(json.dumps(progress.to_doc())))
    assert again.logged == count
    assert again.shapes == progress.shapes
    assert again.log_size == progress.log_size


def test_a_checkpoint_from_before_the_bound_counts_its_entries():
    doc = Progress(shapes=[ShapeLog("t", "trigger", "ok", 1, 0, 1)]).to_doc()
    del doc["logged"]
    assert Progress.from_doc(doc).logged == 1
