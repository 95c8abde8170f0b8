"""The run_flow shape: starts another flow of the same company in the background.

The engine does no I/O: the runner gives each run a `start_child` (RunState.start_child,
control_plane/runs/children.py) that checks the flow, the chain's depth and the run's children,
and queues the child durably. The child's id is derived from the parent's and this shape's, so
a resumed parent that runs the shape again finds its child rather than starting a second one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from control_plane.domain.validation import is_id
from control_plane.engine.expressions import Expression
from control_plane.engine.run import RunState
from control_plane.engine.shapes import _VARIABLE_NAME, AsyncShape, Violations, _compile

#: Child runs one run may start.
MAX_CHILDREN: Final = 100
#: Links in a chain of run_flow runs: a run started by a request has depth 0, its child 1.
MAX_DEPTH: Final = 5
#: Child runs of one company queued or running at once (runs/children.py): with 100 children
#: a run and 5 levels, a tree could otherwise reach 100^5 runs.
MAX_PENDING_CHILDREN: Final = 1_000


class RunFlowRefused(Exception):
    """The child cannot start (unknown flow, not deployed or enabled, a limit); the shape fails."""

    error_type = "run_flow"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFlowShape(AsyncShape):
    TYPE = "run_flow"
    FIELDS = frozenset({"flow", "variables"})

    flow: str
    variables: tuple[tuple[str, Expression], ...] = ()

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        flow = raw.get("flow")
        if not isinstance(flow, str) or not is_id(flow):
            errors.append((f"{path}.flow", "must be a flow id"))
        fields["flow"] = flow
        if "variables" in raw:
            variables = raw["variables"]
            if not isinstance(variables, dict):
                errors.append((f"{path}.variables", "must be an object of names to expressions"))
                return fields
            parsed = []
            for name, source in variables.items():
                field = f"{path}.variables.{name}"
                if not _VARIABLE_NAME.fullmatch(name):
                    errors.append(
                        (field, "variable names must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$")
                    )
                expression = _compile(source, field, errors)
                if expression is not None:
                    parsed.append((name, expression))
            fields["variables"] = tuple(parsed)
        return fields

    async def perform(self, bucket: list[Any], run: RunState) -> list[Any]:
        if run.start_child is None:
            raise RunFlowRefused("run_flow needs a runner to start the flow")
        if run.children >= MAX_CHILDREN:
            raise RunFlowRefused(f"a run may start at most {MAX_CHILDREN} flows")
        context = run.context(bucket[0] if bucket else None, bucket)
        values = {name: e.search(context, run.meter) for name, e in self.variables}
        await run.start_child(self.id, self.flow, bucket, values)
        run.children += 1
        return bucket
