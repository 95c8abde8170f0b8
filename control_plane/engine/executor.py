"""Running a definition, one shape at a time, from plain-data progress that can be checkpointed.

A run's whole state between two shapes is a `Progress`: where it is, the bucket, the variables,
whether the caller was answered, the shape log and the expression steps spent. It holds only
JSON values, so the runner can write it down after any shape and any runner can resume it later
(control_plane/runs). `run_shape` runs one synchronous shape and changes the progress only when
the shape succeeds: a shape that fails, runs out of its inline slice or is interrupted can be run
again from the same progress. Waits are the driver's to await (`begin_wait` / `end_wait`), so
that a resumed run waits only for what is left.

Paths (route, branch, try_catch: engine/paths.py) are run the same way, one shape at a time.
Where a run stands is the top-level `position` plus a stack of `frames`, one per path shape
entered, outermost first: which of its paths run (`paths`, chosen on entry), which of them runs
now (`at`) and the next shape in it (`position`). Running a path shape is a step of its own
(it chooses its paths and pushes its frame); when a path's last shape is done, the next path
starts from the bucket the shape was entered with, and after the last one the frame is popped
and the bucket is the shape's result. Each frame's buckets (`saved`: the entry bucket and the
outputs gathered so far) are data like the bucket, checkpointed with it, so a run resumed
inside a path never runs a finished path again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from time import perf_counter_ns
from typing import Any, Literal

from jmespath.exceptions import JMESPathError

from control_plane.engine.budgets import (
    BudgetExceeded,
    Budgets,
    DeadlinePassed,
    Meter,
    SliceExhausted,
    value_size,
)
from control_plane.engine.definition import Definition
from control_plane.engine.paths import CATCH, TRY, PathsShape, TryCatchShape
from control_plane.engine.run import CallbackResponse, RunInput, RunState, StartChild
from control_plane.engine.shape_log import ShapeLog, append, log_bytes
from control_plane.engine.shapes import AsyncShape, Shape, WaitShape

#: Characters of a caught failure's message kept in `vars.error.message`.
_ERROR_MESSAGE_LENGTH = 2_000


@dataclass(slots=True)
class Frame:
    """A path shape being run: its chosen paths, the one running (`at`) and the next shape in it."""

    paths: list[int]
    at: int = 0
    position: int = 0

    def to_doc(self) -> list[Any]:
        return [self.paths, self.at, self.position]

    @classmethod
    def from_doc(cls, doc: list[Any]) -> Frame:
        return cls(list(doc[0]), doc[1], doc[2])


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
    frames: list[Frame] = field(default_factory=list)  # path shapes entered, outermost first
    # Per frame: {"input": the bucket it was entered with, "output": the paths' results so far}.
    # Data like `bucket` and `vars` (the driver keeps all three in the workers' text at times).
    saved: list[dict[str, list[Any]]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)  # notify shapes', at most 100
    notices_dropped: int = 0
    children: int = 0  # runs started by run_flow shapes

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
            "frames": [f.to_doc() for f in self.frames],
            "saved": self.saved,
            "notices": self.notices,
            "notices_dropped": self.notices_dropped,
            "children": self.children,
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
            # Written before paths existed: at the top level, without notices or children.
            frames=[Frame.from_doc(f) for f in doc.get("frames", ())],
            saved=doc.get("saved", []),
            notices=doc.get("notices", []),
            notices_dropped=doc.get("notices_dropped", 0),
            children=doc.get("children", 0),
        )

    def cursor(self) -> tuple:
        """Everything but the data (bucket, vars, saved): what an engine worker sends back."""
        return (
            self.position,
            self.responded,
            [s.to_doc() for s in self.shapes],
            self.logged,
            self.steps,
            [f.to_doc() for f in self.frames],
            self.notices,
            self.notices_dropped,
            self.children,
        )

    def set_cursor(self, cursor: tuple) -> None:
        position, responded, shapes, logged, steps, frames, notices, dropped, children = cursor
        self.position, self.responded, self.steps = position, responded, steps
        self.set_log([ShapeLog(**doc) for doc in shapes], logged)
        self.frames = [Frame.from_doc(f) for f in frames]
        self.notices, self.notices_dropped, self.children = notices, dropped, children


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
        self.shape_id, self.what, self.budget = shape_id, what, budget
        self.error_type, self.status = error_type, status


def finished(definition: Definition, progress: Progress) -> bool:
    return progress.position >= len(definition.shapes)


def current_shape(definition: Definition, progress: Progress) -> Shape:
    """The shape at the progress' position, inside whatever paths it is in."""
    shapes, index = definition.shapes, progress.position
    for frame in progress.frames:
        owner = shapes[index]
        shapes, index = owner.paths[frame.paths[frame.at]], frame.position
    return shapes[index]


def _owners(definition: Definition, progress: Progress) -> list[PathsShape]:
    """The path shape of each frame, outermost first."""
    owners, shapes, index = [], definition.shapes, progress.position
    for frame in progress.frames:
        owner = shapes[index]
        owners.append(owner)
        if frame.at < len(frame.paths):
            shapes, index = owner.paths[frame.paths[frame.at]], frame.position
    return owners


def _next(progress: Progress) -> None:
    """Moves past the shape at the position, in the innermost path."""
    if progress.frames:
        progress.frames[-1].position += 1
    else:
        progress.position += 1


def _advance(definition: Definition, progress: Progress, state: RunState) -> None:
    """Ends the paths (and path shapes) that have no shape left, until the position is on a
    shape to run or past the last one. A path's end starts the next chosen path from the
    shape's entry bucket; the last one's ends the shape with its result."""
    while progress.frames:
        owner = _owners(definition, progress)[-1]
        frame, saved = progress.frames[-1], progress.saved[-1]
        if frame.at < len(frame.paths):
            if frame.position < len(owner.paths[frame.paths[frame.at]]):
                return
            if owner.MERGE:  # the path just ended: gather its result
                output = saved["output"] + progress.bucket
                budgets = state.meter.budgets
                # Not metered: the progress has moved already, so this must not raise
                # SliceExhausted (the shape would run again); the limit bounds the cost.
                value_size(output, budgets.bucket_bytes, "bucket_size", None, budgets.max_depth)
                saved["output"] = output
            frame.at += 1
            if frame.at < len(frame.paths):
                frame.position = 0
                progress.bucket = saved["input"]
                continue
        if owner.MERGE and frame.paths:
            progress.bucket = saved["output"]
        # else try_catch: what its path left; or a route where no path ran: its entry bucket
        progress.frames.pop()
        progress.saved.pop()
        _next(progress)


def _catch(
    definition: Definition, progress: Progress, shape: Shape, exc: Exception, error: str
) -> bool:
    """When the failed shape is inside a try path, moves the progress to that try_catch's catch
    path, with the failure in vars.error; else False. The innermost try wins."""
    owners = _owners(definition, progress)
    for level in range(len(progress.frames) - 1, -1, -1):
        frame = progress.frames[level]
        if isinstance(owners[level], TryCatchShape) and frame.paths[frame.at] == TRY:
            break
    else:
        return False
    del progress.frames[level + 1 :], progress.saved[level + 1 :]
    frame.paths, frame.at, frame.position = [CATCH], 0, 0
    progress.bucket = progress.saved[level]["input"]
    caught: dict[str, Any] = {
        "shape_id": shape.id,
        "type": _error_type(exc),
        "message": error[:_ERROR_MESSAGE_LENGTH],
    }
    status = getattr(exc, "status", None)
    if type(status) is int:
        caught["status"] = status
    progress.vars = {**progress.vars, "error": caught}
    return True


def _error_type(exc: Exception) -> str:
    """vars.error.type: "expression" for a JMESPath evaluation error, a shape's own
    `error_type` (the connector's "http", run_flow's "run_flow"), else "shape"."""
    own = getattr(exc, "error_type", None)
    if isinstance(own, str) and own:
        return own
    if isinstance(exc, JMESPathError):
        return "expression"
    return "shape"


def wait_seconds(definition: Definition, progress: Progress) -> float | None:
    """The pause of the shape at the position when it is a wait, else None."""
    shape = current_shape(definition, progress)
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


def end_wait(definition: Definition, progress: Progress, state: RunState) -> None:
    """Moves past the wait at the position. Raises ShapeFailed when the path it ends gathers a
    bucket over its budget."""
    shape = current_shape(definition, progress)
    assert isinstance(shape, WaitShape)
    waited_us = int(shape.seconds * 1_000_000)
    items = len(progress.bucket)
    progress.log(ShapeLog(shape.id, shape.TYPE, "ok", waited_us, items, items))
    progress.wake_at = 0.0
    _next(progress)
    try:
        _advance(definition, progress, state)
    except BudgetExceeded as exc:
        progress.log(ShapeLog(shape.id, shape.TYPE, "failed", 0, items, 0, str(exc)))
        raise ShapeFailed(shape.id, str(exc), exc.budget) from None


def is_async(definition: Definition, progress: Progress) -> bool:
    """Whether the shape at the position awaits I/O (an AsyncShape): the driver runs it on
    the loop with `run_async_shape` rather than inline or on an engine thread."""
    return isinstance(current_shape(definition, progress), AsyncShape)


def run_shape(
    definition: Definition, progress: Progress, state: RunState
) -> CallbackResponse | None:
    """Runs the (synchronous) shape at the position; returns the caller's response if this
    shape is the first callback reached.

    Raises ShapeFailed (the failure is logged in the progress), or SliceExhausted /
    DeadlinePassed with the progress unchanged but for the steps spent."""
    shape, started = _enter(definition, progress, state)
    try:
        if isinstance(shape, PathsShape):
            chosen = shape.choose(progress.bucket, state)
            return _settle(definition, shape, progress, state, progress.bucket, started, chosen)
        bucket = shape.apply(progress.bucket, state)
        return _settle(definition, shape, progress, state, bucket, started)
    except BaseException as exc:
        return _fail(definition, shape, progress, state, started, exc)


async def run_async_shape(
    definition: Definition, progress: Progress, state: RunState
) -> CallbackResponse | None:
    """`run_shape` for an AsyncShape: the same budgets, log and failure rules."""
    shape, started = _enter(definition, progress, state)
    assert isinstance(shape, AsyncShape)
    try:
        bucket = await shape.perform(progress.bucket, state)
        return _settle(definition, shape, progress, state, bucket, started)
    except BaseException as exc:
        return _fail(definition, shape, progress, state, started, exc)


def _enter(definition: Definition, progress: Progress, state: RunState) -> tuple[Any, int]:
    shape = current_shape(definition, progress)
    budgets = state.meter.budgets
    if progress.logged >= budgets.shape_log:
        raise ShapeFailed(
            shape.id, f"the run logged {budgets.shape_log} shapes, its budget", "shape_log"
        )
    state.vars, state.responded, state.response = progress.vars, progress.responded, None
    state.notices, state.notices_dropped = progress.notices, progress.notices_dropped
    state.children = progress.children
    state.meter.run_steps = progress.steps
    return shape, perf_counter_ns()


def _settle(
    definition: Definition,
    shape: Any,
    progress: Progress,
    state: RunState,
    bucket: list[Any],
    started: int,
    chosen: list[int] | None = None,
) -> CallbackResponse | None:
    """Checks the shape's results against the budgets, then moves the progress on: past the
    shape, or for a path shape (`chosen`), into its first chosen path."""
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
    progress.notices, progress.notices_dropped = state.notices, state.notices_dropped
    progress.children = state.children
    progress.log(ShapeLog(shape.id, shape.TYPE, "ok", _since(started), items_in, len(bucket)))
    if chosen is None:
        _next(progress)
    else:
        progress.frames.append(Frame(chosen))
        progress.saved.append({"input": bucket, "output": []})
    _advance(definition, progress, state)
    return response


def _fail(
    definition: Definition,
    shape: Any,
    progress: Progress,
    state: RunState,
    started: int,
    exc: BaseException,
) -> None:
    """Maps what a shape raised to the run's outcome: raises, unless a try path catches it
    (then the progress is at the catch path and the run goes on)."""
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
    # A budget is not the flow's to catch: it bounds the run, whatever the flow says.
    if not budget and _catch(definition, progress, shape, exc, error):
        try:
            _advance(definition, progress, state)  # an empty catch path ends at once
            return None
        except BudgetExceeded as merged:
            budget, error = merged.budget, str(merged)
    status = getattr(exc, "status", None)
    raise ShapeFailed(
        shape.id,
        error,
        budget,
        error_type=_error_type(exc),
        status=status if type(status) is int else None,
    ) from None


@dataclass(slots=True)
class ExecutionResult:
    status: Literal["succeeded", "failed"]
    error: str = ""  # on failure: "shape '<id>' failed: <what went wrong>"
    callback_reached: bool = False
    shapes: list[ShapeLog] = field(default_factory=list)
    budget: str = ""  # the budget a failure exceeded, if any
    notices: list[dict[str, Any]] = field(default_factory=list)


async def execute(
    definition: Definition,
    run_input: RunInput,
    on_callback: Callable[[CallbackResponse], None],
    budgets: Budgets | None = None,
    start_child: StartChild | None = None,
    outbound: Any = None,
) -> ExecutionResult:
    """Runs every shape in order on this event loop: for tests and tools. The runner drives
    runs itself (control_plane/runs/driver.py), with checkpoints and off-loop evaluation.
    `outbound` is what connector shapes call through (control_plane.outbound.client)."""
    state = RunState(run_input, Meter(budgets or Budgets()), outbound)
    state.start_child = start_child
    progress = Progress()
    while not finished(definition, progress):
        if wait_seconds(definition, progress) is not None:
            await asyncio.sleep(begin_wait(definition, progress))
            try:
                end_wait(definition, progress, state)
            except ShapeFailed as exc:
                return ExecutionResult(
                    "failed", str(exc), progress.responded, progress.shapes, exc.budget
                )
            continue
        try:
            if is_async(definition, progress):
                response = await run_async_shape(definition, progress, state)
            else:
                response = run_shape(definition, progress, state)
        except ShapeFailed as exc:
            return ExecutionResult(
                "failed",
                str(exc),
                progress.responded,
                progress.shapes,
                exc.budget,
                progress.notices,
            )
        if response is not None:
            on_callback(response)
    return ExecutionResult(
        "succeeded", "", progress.responded, progress.shapes, notices=progress.notices
    )


def _since(started_ns: int) -> int:
    return (perf_counter_ns() - started_ns) // 1000
