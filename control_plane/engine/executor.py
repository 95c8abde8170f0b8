"""Running a definition, one shape at a time, from plain-data progress that can be checkpointed.

A run's whole state between two shapes is a `Progress`: where it is, the bucket, the variables,
whether the caller was answered, the shape log and the expression steps spent. It holds only
JSON values, so the runner can write it down after any shape and any runner can resume it later
(control_plane/runs). `run_shape` runs one synchronous shape and changes the progress only when
the shape succeeds: a shape that fails, runs out of its inline slice or is interrupted can be run
again from the same progress. Waits are the driver's to await (`begin_wait` / `end_wait`), so
that a resumed run waits only for what is left.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, Literal

from control_plane.engine.budgets import (
    BudgetExceeded,
    Budgets,
    DeadlinePassed,
    Meter,
    SliceExhausted,
    value_size,
)
from control_plane.engine.definition import Definition
from control_plane.engine.run import CallbackResponse, RunInput, RunState
from control_plane.engine.shape_log import ShapeLog, append, log_bytes
from control_plane.engine.shapes import AsyncShape, WaitShape


@dataclass(slots=True)
class Progress:
    """Where a run stands between two shapes. Only JSON values: this is the checkpoint."""

    position: int = 0  # index of the next shape to run
    bucket: list[Any] = field(default_factory=list)
    vars: dict[str, Any] = field(default_factory=dict)
    responded: bool = False
    shapes: list[ShapeLog] = field(default_factory=list)  # bounded: engine/shape_log.py
    steps: int = 0  # expression steps spent so far: the run's budget survives a resume
    wake_at: float = 0.0  # wall-clock end of the wait at `position`; 0 when not waiting
    logged: int = 0  # shapes logged so far, those left out of `shapes` included
    log_size: int = 0  # shape_log.log_bytes(shapes), kept up to date by `log`

    def __post_init__(self) -> None:
        if self.shapes:  # a progress built with a log (a checkpoint, a test) counts it
            self.set_log(self.shapes, max(self.logged, len(self.shapes)))

    def log(self, entry: ShapeLog) -> None:
        self.logged += 1
        self.log_size = append(self.shapes, entry, self.logged, self.log_size)

    def set_log(self, shapes: list[ShapeLog], logged: int) -> None:
        self.shapes, self.logged, self.log_size = shapes, logged, log_bytes(shapes)

    def to_doc(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "bucket": self.bucket,
            "vars": self.vars,
            "responded": self.responded,
            "shapes": [s.to_doc() for s in self.shapes],
            "steps": self.steps,
            "wake_at": self.wake_at,
            "logged": self.logged,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Progress:
        return cls(
            position=doc["position"],
            bucket=doc["bucket"],
            vars=doc["vars"],
            responded=doc["responded"],
            shapes=[ShapeLog(**s) for s in doc["shapes"]],
            steps=doc["steps"],
            wake_at=doc["wake_at"],
            # Checkpoints written before the log was bounded have no count: their log was whole.
            logged=doc.get("logged", 0),
        )


class ShapeFailed(Exception):
    """The shape at the progress' position failed; the run fails with it.

    `budget` names the budget it exceeded ("expression_steps", "bucket_size", …), or is "" when
    the flow itself failed (a type error, a value JSON cannot carry). `error_type` and `status`
    come from failures that carry them (a connector's: "http_status" and the upstream's
    status, "egress_refused", "timeout"…), so a handler can tell failures apart."""

    def __init__(
        self,
        shape_id: str,
        what: str,
        budget: str = "",
        *,
        error_type: str = "",
        status: int | None = None,
    ) -> None:
        super().__init__(f"shape {shape_id!r} failed: {what}")
        self.budget = budget
        self.shape_id = shape_id
        self.message = what
        self.error_type = error_type
        self.status = status


def finished(definition: Definition, progress: Progress) -> bool:
    return progress.position >= len(definition.shapes)


def wait_seconds(definition: Definition, progress: Progress) -> float | None:
    """The pause of the shape at the position when it is a wait, else None."""
    shape = definition.shapes[progress.position]
    return shape.seconds if isinstance(shape, WaitShape) else None


def begin_wait(definition: Definition, progress: Progress) -> float:
    """Starts (or, after a resume, continues) the wait at the position; returns the seconds left.

    The end is kept in wall-clock time in the progress, so a checkpoint taken now lets another
    runner sleep only for the remainder."""
    seconds = wait_seconds(definition, progress)
    assert seconds is not None
    now = time.time()
    if not progress.wake_at:
        progress.wake_at = now + seconds
    return max(0.0, progress.wake_at - now)


def end_wait(definition: Definition, progress: Progress) -> None:
    shape = definition.shapes[progress.position]
    assert isinstance(shape, WaitShape)
    waited_us = int(shape.seconds * 1_000_000)
    items = len(progress.bucket)
    progress.log(ShapeLog(shape.id, shape.TYPE, "ok", waited_us, items, items))
    progress.wake_at = 0.0
    progress.position += 1


def is_async(definition: Definition, progress: Progress) -> bool:
    """Whether the shape at the position awaits I/O (an AsyncShape): the driver runs it on
    the loop with `run_async_shape` rather than inline or on an engine thread."""
    return isinstance(definition.shapes[progress.position], AsyncShape)


def run_shape(
    definition: Definition, progress: Progress, state: RunState
) -> CallbackResponse | None:
    """Runs the (synchronous) shape at the position; returns the caller's response if this
    shape is the first callback reached.

    Raises ShapeFailed (the failure is logged in the progress), or SliceExhausted /
    DeadlinePassed with the progress unchanged but for the steps spent."""
    shape, started = _enter(definition, progress, state)
    try:
        bucket = shape.apply(progress.bucket, state)
        return _settle(shape, progress, state, bucket, started)
    except BaseException as exc:
        _fail(shape, progress, state, started, exc)


async def run_async_shape(
    definition: Definition, progress: Progress, state: RunState
) -> CallbackResponse | None:
    """`run_shape` for an AsyncShape: the same budgets, log and failure rules."""
    shape, started = _enter(definition, progress, state)
    assert isinstance(shape, AsyncShape)
    try:
        bucket = await shape.perform(progress.bucket, state)
        return _settle(shape, progress, state, bucket, started)
    except BaseException as exc:
        _fail(shape, progress, state, started, exc)


def _enter(definition: Definition, progress: Progress, state: RunState) -> tuple[Any, int]:
    shape = definition.shapes[progress.position]
    budgets = state.meter.budgets
    if progress.logged >= budgets.shape_log:
        raise ShapeFailed(
            shape.id, f"the run logged {budgets.shape_log} shapes, its budget", "shape_log"
        )
    state.vars, state.responded, state.response = progress.vars, progress.responded, None
    state.meter.run_steps = progress.steps
    return shape, perf_counter_ns()


def _settle(
    shape: Any, progress: Progress, state: RunState, bucket: list[Any], started: int
) -> CallbackResponse | None:
    """Checks the shape's results against the budgets, then moves the progress on."""
    meter, budgets = state.meter, state.meter.budgets
    size = value_size(bucket, budgets.bucket_bytes, "bucket_size", meter, budgets.max_depth)
    if state.vars is not progress.vars:
        value_size(state.vars, budgets.variables_bytes, "variables_size", meter, budgets.max_depth)
    response = state.response
    if response is not None and len(response.body) > budgets.callback_bytes:
        raise BudgetExceeded(
            "callback_size",
            f"the callback body is {len(response.body)} bytes, over its budget of "
            f"{budgets.callback_bytes}",
        )
    items_in = len(progress.bucket)
    progress.steps, state.bucket_bytes = meter.run_steps, size
    progress.bucket, progress.vars, progress.responded = bucket, state.vars, state.responded
    progress.log(ShapeLog(shape.id, shape.TYPE, "ok", _since(started), items_in, len(bucket)))
    progress.position += 1
    return response


def _fail(shape: Any, progress: Progress, state: RunState, started: int, exc: BaseException):
    """Maps what a shape raised to the run's outcome; always raises."""
    meter, budgets = state.meter, state.meter.budgets
    progress.steps = meter.run_steps
    if isinstance(exc, SliceExhausted | DeadlinePassed | asyncio.CancelledError):
        raise exc  # not the flow's failure: the progress stays where it was
    if isinstance(exc, RecursionError):
        # A deeply nested body or value: the parser, encoder or evaluator ran out of stack.
        exc = BudgetExceeded(
            "value_size", f"a value is nested deeper than {budgets.max_depth} levels"
        )
    elif isinstance(exc, MemoryError):
        exc = BudgetExceeded("value_size", "a value is too large for the runner")
    elif not isinstance(exc, Exception):
        raise exc  # KeyboardInterrupt, SystemExit
    budget = exc.budget if isinstance(exc, BudgetExceeded) else ""
    # Any other failure of the author's flow is the run's outcome.
    error = str(exc) or type(exc).__name__
    items_in = len(progress.bucket)
    progress.log(
        ShapeLog(shape.id, shape.TYPE, "failed", _since(started), items_in, 0, error[:2000])
    )
    error_type = getattr(exc, "type", "")
    status = getattr(exc, "status", None)
    raise ShapeFailed(
        shape.id,
        error,
        budget,
        error_type=error_type if isinstance(error_type, str) else "",
        status=status if type(status) is int else None,
    ) from None


@dataclass(slots=True)
class ExecutionResult:
    status: Literal["succeeded", "failed"]
    error: str = ""  # on failure: "shape '<id>' failed: <what went wrong>"
    callback_reached: bool = False
    shapes: list[ShapeLog] = field(default_factory=list)
    budget: str = ""  # the budget a failure exceeded, if any


async def execute(
    definition: Definition,
    run_input: RunInput,
    on_callback: Callable[[CallbackResponse], None],
    budgets: Budgets | None = None,
    outbound: Any = None,
) -> ExecutionResult:
    """Runs every shape in order on this event loop: for tests and tools. The runner drives
    runs itself (control_plane/runs/driver.py), with checkpoints and off-loop evaluation.
    `outbound` is what connector shapes call through (control_plane.outbound.client)."""
    state = RunState(run_input, Meter(budgets or Budgets()), outbound)
    progress = Progress()
    while not finished(definition, progress):
        if wait_seconds(definition, progress) is not None:
            await asyncio.sleep(begin_wait(definition, progress))
            end_wait(definition, progress)
            continue
        try:
            if is_async(definition, progress):
                response = await run_async_shape(definition, progress, state)
            else:
                response = run_shape(definition, progress, state)
        except ShapeFailed as exc:
            return ExecutionResult(
                "failed", str(exc), progress.responded, progress.shapes, exc.budget
            )
        if response is not None:
            on_callback(response)
    return ExecutionResult("succeeded", "", progress.responded, progress.shapes)


def _since(started_ns: int) -> int:
    return (perf_counter_ns() - started_ns) // 1000
