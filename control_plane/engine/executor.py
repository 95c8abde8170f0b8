"""Running a definition against one request."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, Literal

from control_plane.engine.definition import Definition
from control_plane.engine.run import CallbackResponse, RunInput, RunState
from control_plane.engine.shapes import WaitShape


@dataclass(slots=True)
class ShapeLog:
    shape_id: str
    shape_type: str
    status: Literal["ok", "failed"]
    duration_us: int
    items_in: int
    items_out: int
    error: str = ""


@dataclass(slots=True)
class ExecutionResult:
    status: Literal["succeeded", "failed"]
    error: str = ""  # on failure: "shape '<id>' failed: <what went wrong>"
    callback_reached: bool = False
    shapes: list[ShapeLog] = field(default_factory=list)


async def execute(
    definition: Definition,
    run_input: RunInput,
    on_callback: Callable[[CallbackResponse], None],
) -> ExecutionResult:
    """Run the shapes in order. `on_callback` is called once, synchronously, by the first
    callback shape reached, so the caller can be answered while the flow goes on.

    A shape that raises stops the run, which is reported as failed; cancellation propagates.
    """
    run = RunState(run_input, on_callback)
    logs: list[ShapeLog] = []
    bucket: list[Any] = []
    for shape in definition.shapes:
        items_in = len(bucket)
        started = perf_counter_ns()
        try:
            # Only waits are awaited: a coroutine per shape would tax every hot-path run.
            if isinstance(shape, WaitShape):
                await asyncio.sleep(shape.seconds)
            bucket = shape.apply(bucket, run)
        except Exception as exc:  # any failure of the author's flow is the run's outcome
            error = str(exc) or type(exc).__name__
            logs.append(
                ShapeLog(shape.id, shape.TYPE, "failed", _since(started), items_in, 0, error)
            )
            return ExecutionResult(
                "failed", f"shape {shape.id!r} failed: {error}", run.responded, logs
            )
        logs.append(ShapeLog(shape.id, shape.TYPE, "ok", _since(started), items_in, len(bucket)))
    return ExecutionResult("succeeded", "", run.responded, logs)


def _since(started_ns: int) -> int:
    return (perf_counter_ns() - started_ns) // 1000
