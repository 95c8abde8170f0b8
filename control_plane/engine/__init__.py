"""The flow engine: definitions (format and validation) and their execution, without I/O."""

from control_plane.engine.definition import (
    DEFAULT_DEFINITION,
    Definition,
    DefinitionError,
    load_definition,
    validate_definition,
)
from control_plane.engine.executor import ExecutionResult, ShapeLog, execute
from control_plane.engine.run import CallbackResponse, RunInput

__all__ = [
    "DEFAULT_DEFINITION",
    "CallbackResponse",
    "Definition",
    "DefinitionError",
    "ExecutionResult",
    "RunInput",
    "ShapeLog",
    "execute",
    "load_definition",
    "validate_definition",
]
