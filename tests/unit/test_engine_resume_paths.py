"""Resuming inside paths: a run stopped after any shape of any path, its progress written as a
checkpoint and read back by a fresh runner, ends exactly as one never stopped, and never runs a
finished path (or a finished shape) again. Async shapes and waits work inside paths too."""

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
    begin_wait,
    end_wait,
    execute,
    finished,
    is_async,
    run_async_shape,
    run_shape,
    validate_definition,
    wait_seconds,
)
from control_plane.engine.budgets import Budgets, Meter
from control_plane.engine.definition import Definition
from control_plane.engine.executor import current_shape
from control_plane.engine.expressions import Expression
from control_plane.engine.paths import BranchShape, TryCatchShape
from control_plane.engine.shapes import AsyncShape, CallbackShape, MapShape, TriggerShape
from control_plane.runs import checkpoint

INPUT = RunInput("run-1", "acme", "flow-1", "cb-1", "", "POST", (), (), b'{"n": 2, "kind": "a"}')

NESTED = [
    {"id": "t", "type": "trigger"},
    {"id": "v", "type": "set_variables", "variables": {"n": "payload.n"}},
    {
        "id": "b",
        "type": "branch",
        "paths": [
            {
                "shapes": [
                    {
                        "id": "r",
                        "type": "route",
                        "paths": [
                            {
                                "condition": "payload.kind == 'a'",
                                "shapes": [
                                    {"id": "a1", "type": "map", "expression": "'a1'"},
                                    {"id": "w", "type": "wait", "seconds": 0.001},
                                    {"id": "a2", "type": "map", "expression": "[payload, vars.n]"},
                                ],
                            },
                            {
                                "condition": "`false`",
                                "shapes": [{"id": "no", "type": "map", "expression": "'no'"}],
                            },
                        ],
                        "otherwise": [{"id": "o", "type": "map", "expression": "'o'"}],
                    },
                    {"id": "cb", "type": "callback", "status": 201},
                ]
            },
            {
                "shapes": [
                    {
                        "id": "tc",
                        "type": "try_catch",
                        "try": [
                            {"id": "s", "type": "split", "expression": "[payload.n, payload.n]"},
                            {"id": "boom", "type": "map", "expression": "abs(to_string(payload))"},
                        ],
                        "catch": [
                            {"id": "n", "type": "notify", "message": "{{ vars.error.shape_id }}"},
                            {"id": "c1", "type": "map", "expression": "vars.error.shape_id"},
                            {"id": "c2", "type": "batch", "size": 5},
                        ],
                    },
                ]
            },
        ],
    },
    {"id": "after", "type": "map", "expression": "{got: payload}"},
]


def _fresh() -> RunState:
    return RunState(INPUT, Meter(Budgets()))


def _run_stopping_after_every_step(definition: Definition) -> tuple[Progress, list, int]:
    """Runs like the driver's tail, a fresh runner after every step; returns the progress, the
    responses and how many checkpoints were written."""
    progress, responses, run_input, checkpoints = Progress(), [], INPUT, 0
    while not finished(definition, progress):
        state = RunState(run_input, Meter(Budgets()))
        if wait_seconds(definition, progress) is not None:
            begin_wait(definition, progress)
            # a crash while waiting: the wake-up time is in the checkpoint
            run_input, progress = checkpoint.load(checkpoint.dump(run_input, progress))
            end_wait(definition, progress, state)
        else:
            response = run_shape(definition, progress, state)
            if response is not None:
                responses.append(response)
        run_input, progress = checkpoint.load(checkpoint.dump(run_input, progress))
        run_input = dataclasses.replace(run_input, body=INPUT.body)  # only the trigger reads it
        checkpoints += 1
    return progress, responses, checkpoints


async def test_a_run_resumed_after_every_step_inside_paths_ends_as_one_never_stopped() -> None:
    definition = validate_definition({"shapes": NESTED})
    answers: list = []
    whole = await execute(definition, INPUT, answers.append)
    assert whole.status == "succeeded"
    progress, responses, _ = _run_stopping_after_every_step(definition)
    assert responses == answers
    assert json.loads(answers[0].body) == [["a1", 2]] and answers[0].status == 201
    logged = [(s.shape_id, s.status) for s in progress.shapes]
    assert logged == [(s.shape_id, s.status) for s in whole.shapes]
    # every shape ran once, in order; the failed one once; those not chosen never
    assert logged == [
        ("t", "ok"), ("v", "ok"), ("b", "ok"), ("r", "ok"), ("a1", "ok"), ("w", "ok"),
        ("a2", "ok"), ("cb", "ok"), ("tc", "ok"), ("s", "ok"), ("boom", "failed"),
        ("n", "ok"), ("c1", "ok"), ("c2", "ok"), ("after", "ok"),
    ]  # fmt: skip
    assert progress.bucket == [{"got": ["a1", 2]}, {"got": ["boom"]}]
    assert [n["message"] for n in progress.notices] == ["boom"]
    assert progress.frames == [] and progress.saved == []


def test_a_checkpoint_inside_a_catch_path_resumes_there() -> None:
    definition = validate_definition({"shapes": NESTED})
    progress, state = Progress(), _fresh()
    # up to and including the failure, which moves the run into the catch path
    while not (progress.shapes and progress.shapes[-1].shape_id == "boom"):
        if wait_seconds(definition, progress) is not None:
            begin_wait(definition, progress)
            end_wait(definition, progress, state)
        else:
            run_shape(definition, progress, state)
    doc = json.loads(checkpoint.dump(INPUT, progress))["progress"]
    # where it is: the branch's second path (index 1 of the two chosen), inside try_catch's
    # catch, at its first shape; the branch's first path's result is kept, not to be re-run
    assert doc["position"] == 2
    assert doc["frames"] == [[[0, 1], 1, 0], [[1], 0, 0]]
    assert doc["saved"][0]["output"] == [["a1", 2]]
    assert doc["vars"]["error"]["shape_id"] == "boom"
    _, resumed = checkpoint.load(
        json.dumps(
            {"input": json.loads(checkpoint.dump(INPUT, progress))["input"], "progress": doc}
        )
    )
    assert current_shape(definition, resumed).id == "n"
    logged_before = len(resumed.shapes)
    while not finished(definition, resumed):
        run_shape(definition, resumed, _fresh())
    assert [s.shape_id for s in resumed.shapes[logged_before:]] == ["n", "c1", "c2", "after"]
    assert resumed.bucket == [{"got": ["a1", 2]}, {"got": ["boom"]}]


def test_old_checkpoints_without_frames_still_load() -> None:
    doc = Progress(position=1, bucket=[1]).to_doc()
    for key in ("frames", "saved", "notices", "notices_dropped", "children"):
        del doc[key]
    progress = Progress.from_doc(doc)
    assert progress.frames == [] and progress.notices == [] and progress.children == 0


@dataclass(frozen=True, slots=True, kw_only=True)
class _Send(AsyncShape):
    """A stand-in for the connector: records what it sends, fails on request."""

    TYPE = "send"
    sent: list

    async def perform(self, bucket: list[Any], run: RunState) -> list[Any]:
        self.sent.append(run.idempotency_key(self.id))
        if bucket == ["down"]:
            error = ValueError("upstream answered 503")
            error.status, error.error_type = 503, "http"  # type: ignore[attr-defined]
            raise error
        return [{"sent": bucket}]


async def test_async_shapes_inside_paths_and_their_failures_are_caught() -> None:
    sent: list = []
    send = _Send(id="send", sent=sent)
    catch = (MapShape(id="c", expression=Expression("vars.error")),)
    shapes = (
        TriggerShape(id="t"),
        MapShape(id="m", expression=Expression("payload.to")),
        BranchShape(id="b", paths=((TryCatchShape(id="tc", paths=((send,), catch)),),)),
        CallbackShape(id="cb"),
    )
    definition = Definition(shapes=shapes, has_callback=True)
    answers: list = []
    body = b'{"to": "down"}'
    run_input = dataclasses.replace(INPUT, body=body)
    result = await execute(definition, run_input, answers.append)
    assert result.status == "succeeded"
    assert json.loads(answers[0].body) == [
        {"shape_id": "send", "type": "http", "message": "upstream answered 503", "status": 503}
    ]
    progress = Progress(position=2, bucket=["up"])
    state = RunState(run_input, Meter(Budgets()))
    run_shape(definition, progress, state)  # enters the branch
    run_shape(definition, progress, state)  # enters the try_catch
    assert is_async(definition, progress)
    await run_async_shape(definition, progress, state)
    assert progress.bucket == [{"sent": ["up"]}] and progress.position == 3
    assert sent == ["run-1.send", "run-1.send"]


@pytest.mark.parametrize("at", range(1, 8))
def test_a_worker_cursor_round_trip_keeps_the_position(at: int) -> None:
    definition = validate_definition({"shapes": NESTED})
    progress, state = Progress(), _fresh()
    for _ in range(at):
        if wait_seconds(definition, progress) is not None:
            begin_wait(definition, progress)
            end_wait(definition, progress, state)
        else:
            run_shape(definition, progress, state)
    copy = Progress()
    copy.set_cursor(progress.cursor())
    assert current_shape(definition, copy) is current_shape(definition, progress)
