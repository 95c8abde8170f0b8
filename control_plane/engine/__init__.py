"""The flow engine: definitions (format and validation) and their execution, without I/O."""

from control_plane.engine.definition import (
    DEFAULT_DEFINITION,
    Definition,
    DefinitionError,
    load_definition,
    validate_definition,
)
from control_plane.engine.executor import (
    ExecutionResult,
    Progress,
    ShapeFailed,
    ShapeLog,
    begin_wait,
    end_wait,
    execute,
    finished,
    is_async,
    run_async_shape,
    run_shape,
    wait_seconds,
)
from control_plane.engine.run import CallbackResponse, RunInput, RunState

__all__ = [
    "DEFAULT_DEFINITION",
    "CallbackResponse",
    "Definition",
    "DefinitionError",
    "ExecutionResult",
    "Progress",
    "RunInput",
    "RunState",
    "ShapeFailed",
    "ShapeLog",
    "begin_wait",
    "end_wait",
    "execute",
    "finished",
    "is_async",
    "load_definition",
    "run_async_shape",
    "run_shape",
    "validate_definition",
    "wait_seconds",
]
