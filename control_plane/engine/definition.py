"""The flow definition format, and its validation.

The format is specified in docs/flows.md (with a worked example per shape, each one a test:
tests/unit/test_flows_doc.py). In short: `{"shapes": [shape, ...]}`, the first shape the
trigger; route, branch and try_catch hold paths, lists of shapes in the same format, nested at
most MAX_DEPTH levels, with at most MAX_SHAPES shapes in all. Ids are unique across the flow,
and every violation is reported with its field path, e.g.
`definition.shapes[2].paths[0].shapes[1].expression`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from control_plane.domain.errors import echo
from control_plane.domain.validation import unprintable
from control_plane.engine import connector  # noqa: F401 (adds the connector to SHAPE_TYPES)
from control_plane.engine.flow_control import BatchShape, SplitShape
from control_plane.engine.notify import NotifyShape
from control_plane.engine.paths import BranchShape, PathsShape, RouteShape, TryCatchShape
from control_plane.engine.run_flow import RunFlowShape
from control_plane.engine.shapes import SHAPE_TYPES, CallbackShape, Shape, Violations

# The catalogue's types kept in modules of their own: they import shapes.py, so it cannot import
# them; every import of the engine loads this module (engine/__init__.py), completing it.
for _type in (
    RouteShape,
    BranchShape,
    TryCatchShape,
    SplitShape,
    BatchShape,
    NotifyShape,
    RunFlowShape,
):
    SHAPE_TYPES[_type.TYPE] = _type

DEFAULT_DEFINITION: Final[dict[str, Any]] = {"shapes": [{"id": "trigger", "type": "trigger"}]}
"""A new flow's draft: it answers nothing until the author adds a callback."""

_COMMON_FIELDS = frozenset({"id", "type", "name"})
_SHAPE_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
_MAX_NAME_LENGTH = 200
_MAX_VIOLATIONS = 100
#: Levels of paths within paths: a shape in a top-level route's path is at depth 1.
MAX_DEPTH: Final = 8
#: Shapes in a flow, at every level together. Flows of thousands of top-level shapes were valid
#: before paths existed (and are tested: tests/unit/test_shape_log.py), so the bound is well
#: above them; what a run executes is bounded apart, by Budgets.shape_log.
MAX_SHAPES: Final = 10_000


class DefinitionError(ValueError):
    """The document breaks the format; `violations` lists every problem found."""

    def __init__(self, violations: Violations) -> None:
        self.violations = violations
        listed = "; ".join(f"{field}: {what}" for field, what in violations)
        super().__init__(f"invalid flow definition: {listed}")


@dataclass(frozen=True, slots=True)
class Definition:
    """A valid definition, parsed once: its expressions are compiled, ready to run."""

    shapes: tuple[Shape, ...]
    has_callback: bool


def validate_definition(doc: object) -> Definition:
    """Parse a definition being saved; raise DefinitionError listing every violation."""
    errors: Violations = []
    parser = _Parser(errors)
    shapes = parser.parse(doc)
    if errors:
        raise DefinitionError(errors)
    return Definition(shapes=tuple(shapes), has_callback=parser.has_callback)


def load_definition(doc: object) -> Definition:
    """Parse a stored definition. Stored ones were validated on save, but checking again is
    cheap (once per flow version) and turns a corrupted row into a clear error."""
    return validate_definition(doc)


class _Parser:
    """One definition's parse: ids, the shape count and the depth are flow-wide."""

    def __init__(self, errors: Violations) -> None:
        self.errors = errors
        self.first_field: dict[str, str] = {}  # id → the field path of the shape that has it
        self.count = 0
        self.depth = 0
        self.has_callback = False
        self.stopped = False

    def parse(self, doc: object) -> list[Shape]:
        errors = self.errors
        if not isinstance(doc, dict):
            errors.append(("definition", "must be a JSON object"))
            return []
        for key in doc:
            if key != "shapes":
                errors.append((f"definition.{key}", "unknown field"))
        if "shapes" not in doc:
            errors.append(("definition.shapes", "is required"))
            return []
        raw_shapes = doc["shapes"]
        if not isinstance(raw_shapes, list):
            errors.append(("definition.shapes", "must be an array of shapes"))
            return []
        if not raw_shapes:
            errors.append(("definition.shapes", "must start with a trigger shape"))
            return []
        return list(self._shapes(raw_shapes, "definition.shapes", top=True))

    def path(self, raw: object, field: str, errors: Violations) -> tuple[Shape, ...]:
        """A nested path (PathsShape.parse_paths calls this)."""
        if not isinstance(raw, list):
            errors.append((field, "must be an array of shapes"))
            return ()
        if self.depth >= MAX_DEPTH:
            errors.append((field, f"paths are nested more than {MAX_DEPTH} levels deep"))
            return ()
        self.depth += 1
        try:
            return self._shapes(raw, field, top=False)
        finally:
            self.depth -= 1

    def _shapes(self, raw_shapes: list[Any], field: str, top: bool) -> tuple[Shape, ...]:
        shapes = []
        for index, raw in enumerate(raw_shapes):
            if self.stopped:
                break
            if len(self.errors) >= _MAX_VIOLATIONS:
                where = field.removeprefix("definition.")
                # Enough to act on; listing millions (16 MB of empty shapes) would cost memory.
                self.errors.append(
                    (
                        "definition.shapes",
                        f"not checked from {where}[{index}] on: too many violations",
                    )
                )
                self.stopped = True
                break
            self.count += 1
            if self.count > MAX_SHAPES:
                self.errors.append(
                    (
                        f"{field}[{index}]",
                        f"a flow holds at most {MAX_SHAPES} shapes, at all levels",
                    )
                )
                self.stopped = True
                break
            shape = self._shape(raw, f"{field}[{index}]", top and index == 0, top)
            if shape is not None:
                shapes.append(shape)
        return tuple(shapes)

    def _shape(self, raw: object, path: str, first: bool, top: bool) -> Shape | None:
        errors = self.errors
        if not isinstance(raw, dict):
            errors.append((path, "must be an object"))
            return None
        found = len(errors)

        shape_id = raw.get("id")
        if "id" not in raw:
            errors.append((f"{path}.id", "is required"))
        elif not isinstance(shape_id, str) or not _SHAPE_ID.fullmatch(shape_id):
            errors.append((f"{path}.id", f"must be a string matching ^{_SHAPE_ID.pattern}$"))
        elif shape_id in self.first_field:
            first_use = self.first_field[shape_id].removeprefix("definition.")
            errors.append((f"{path}.id", f"duplicate id {shape_id!r}, already used by {first_use}"))
        else:
            self.first_field[shape_id] = path

        name = raw.get("name", "")
        if not isinstance(name, str) or len(name) > _MAX_NAME_LENGTH:
            errors.append(
                (f"{path}.name", f"must be a string of up to {_MAX_NAME_LENGTH} characters")
            )
        elif why := unprintable(name):
            errors.append((f"{path}.name", why))

        type_name = raw.get("type")
        shape_type = SHAPE_TYPES.get(type_name) if isinstance(type_name, str) else None
        if "type" not in raw:
            errors.append((f"{path}.type", "is required"))
        elif shape_type is None:
            expected = ", ".join(sorted(SHAPE_TYPES))
            errors.append(
                (f"{path}.type", f"unknown shape type {echo(type_name)}; one of: {expected}")
            )
        if first and type_name != "trigger":
            errors.append((f"{path}.type", "the first shape must be the trigger"))
        elif not first and type_name == "trigger":
            where = "" if top else " (not in a path)"
            errors.append(
                (f"{path}.type", f"a flow has one trigger, and it is the first shape{where}")
            )

        if shape_type is None:
            return None  # without a type, the other fields cannot be judged
        for key in raw:
            if key not in _COMMON_FIELDS and key not in shape_type.FIELDS:
                errors.append((f"{path}.{key}", f"unknown field for a {type_name} shape"))
        if issubclass(shape_type, PathsShape):
            fields = shape_type.parse_paths(raw, path, errors, self.path)
        else:
            fields = shape_type.parse_fields(raw, path, errors)
        if len(errors) > found:
            return None
        if shape_type is CallbackShape:
            self.has_callback = True
        return shape_type(id=shape_id, name=name, **fields)
