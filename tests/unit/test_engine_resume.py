"""The engine resumes from plain data: a run stopped after any shape, its progress written as a
checkpoint and read back (as another runner would), ends exactly as a run never stopped; shapes
that await I/O run under the same rules; a failing shape leaves the progress where it was."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import pytest

from control_plane.engine import (
    Progress,
    RunInput,
    RunState,
    ShapeFailed,
    execute,
    finished,
    is_async,
    run_async_shape,
    run_shape,
    validate_definition,
)
from control_plane.engine.budgets import Budgets, Meter
from control_plane.engine.definition import Definition
from control_plane.engine.shapes import AsyncShape, CallbackShape, TriggerShape
from control_plane.runs import checkpoint

INPUT = RunInput(
    "run-1",
    "acme",
    "flow-1",
    "cb-1",
    "",
    "POST",
    (("content-type", "application/json"),),
    (("q", "1"),),
    b'{"items": [{"n": 3}, {"n": 1}, {"n": 2}], "name": "x"}',
)

FLOWS = {
    "map, filter, variables around a callback": [
        {"id": "t", "type": "trigger"},
        {"id": "v", "type": "set_variables", "variables": {"name": "payload.name"}},
        {"id": "m", "type": "map", "expression": "payload.items"},
        {"id": "reply", "type": "callback", "status": 201},
        {"id": "f", "type": "filter", "condition": "length(@.payload) > `1`"},
        {"id": "after", "type": "map", "expression": "{n: length(payload), who: vars.name}"},
    ],
    "manual payloads and meta": [
        {"id": "t", "type": "trigger"},
        {"id": "p", "type": "manual_payload", "payloads": [1, 2, 3]},
        {"id": "m", "type": "map", "expression": "{v: payload, q: meta.query.q}"},
        {"id": "reply", "type": "callback", "unwrap": True},
        {"id": "v", "type": "set_variables", "variables": {"all": "payloads"}},
    ],
}


def _state() -> RunState:
    return RunState(INPUT, Meter(Budgets()))


def _run_stopping_after_every_shape(doc: dict) -> tuple[Progress, list]:
    definition = validate_definition(doc)
    progress, responses, run_input = Progress(), [], INPUT
    while not finished(definition, progress):
        # A fresh runner each time, with only what the checkpoint kept.
        response = run_shape(definition, progress, RunState(run_input, Meter(Budgets())))
        if response is not None:
            responses.append(response)
        run_input, progress = checkpoint.load(checkpoint.dump(run_input, progress))
        assert run_input == dataclasses.replace(INPUT, body=b"")  # only the trigger reads it
    return progress, responses


@pytest.mark.parametrize("shapes", FLOWS.values(), ids=FLOWS.keys())
async def test_a_run_resumed_after_every_shape_ends_as_one_never_stopped(shapes) -> None:
    doc = {"shapes": shapes}
    answers: list = []
    whole = await execute(validate_definition(doc), INPUT, answers.append)
    progress, responses = _run_stopping_after_every_shape(doc)
    assert responses == answers
    assert [s.shape_id for s in progress.shapes] == [s.shape_id for s in whole.shapes]
    assert progress.responded and whole.callback_reached


def test_a_failing_shape_leaves_the_progress_where_it_was() -> None:
    definition = validate_definition(
        {
            "shapes": [
                {"id": "t", "type": "trigger"},
                {"id": "m", "type": "map", "expression": "abs(payload)"},
            ]
        }
    )
    progress, state = Progress(), _state()
    run_shape(definition, progress, state)
    before = json.dumps(progress.bucket)
    with pytest.raises(ShapeFailed, match="shape 'm' failed"):
        run_shape(definition, progress, state)
    assert progress.position == 1 and json.dumps(progress.bucket) == before
    assert [(s.shape_id, s.status) for s in progress.shapes] == [("t", "ok"), ("m", "failed")]


@dataclass(frozen=True, slots=True, kw_only=True)
class _Send(AsyncShape):
    """A stand-in for the outbound shapes to come: records what it would send."""

    TYPE = "send"
    sent: list

    async def perform(self, bucket: list[Any], run: RunState) -> list[Any]:
        self.sent.append(run.idempotency_key(self.id))
        if bucket == ["boom"]:
            raise ValueError("the other side said no")
        return [{"sent": len(bucket)}] * 3


def _async_flow(sent: list) -> Definition:
    shapes = (TriggerShape(id="t"), _Send(id="s", sent=sent), CallbackShape(id="c"))
    return Definition(shapes=shapes, has_callback=True)


async def test_async_shapes_are_awaited_with_a_stable_idempotency_key() -> None:
    sent: list = []
    definition = _async_flow(sent)
    answers: list = []
    result = await execute(definition, INPUT, answers.append)
    assert result.status == "succeeded" and answers[0].body == b'[{"sent":1},{"sent":1},{"sent":1}]'

    progress = Progress(position=1, bucket=[1])
    assert is_async(definition, progress)
    await run_async_shape(definition, progress, _state())
    assert sent == ["run-1.s", "run-1.s"]  # the same key on every attempt at the shape


async def test_async_shape_failures_and_budgets_follow_the_same_rules() -> None:
    definition = _async_flow([])
    progress = Progress(position=1, bucket=["boom"])
    with pytest.raises(ShapeFailed, match="the other side said no"):
        await run_async_shape(definition, progress, _state())
    assert progress.position == 1

    small = RunState(INPUT, Meter(Budgets(bucket_bytes=10)))
    with pytest.raises(ShapeFailed) as failed:
        await run_async_shape(definition, Progress(position=1, bucket=[1]), small)
    assert failed.value.budget == "bucket_size"
