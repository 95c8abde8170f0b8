"""Shapes that hold paths (route, branch, try_catch): lists of shapes in the top level's format.

These shapes never transform the bucket themselves: running one *enters* it (the executor pushes
a frame, control_plane.engine.executor.Frame) and its paths' shapes then run one at a time like
any other, each checkpointed, so a run resumes inside a path. What each shape decides is which
paths run, in which order, and what the bucket is once they have run (docs/flows.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from control_plane.engine.expressions import Expression, is_truthy
from control_plane.engine.run import RunState
from control_plane.engine.shapes import Shape, Violations, _compile

#: Paths one route or branch may hold.
MAX_PATHS = 50

#: Parses a nested list of shapes at a field path (definition.py owns ids, depth and counts).
ParsePath = Callable[[Any, str, Violations], tuple[Shape, ...]]


@dataclass(frozen=True, slots=True, kw_only=True)
class PathsShape(Shape):
    """A shape holding paths. `choose` says which run, in order; each starts with the bucket
    the shape was entered with. MERGE: the bucket after the shape is the concatenation of the
    paths' final buckets (route, branch), else the last path's final bucket (try_catch)."""

    MERGE: ClassVar[bool] = True

    paths: tuple[tuple[Shape, ...], ...]

    @classmethod
    def parse_paths(
        cls, raw: dict[str, Any], path: str, errors: Violations, parse_path: ParsePath
    ) -> dict[str, Any]:
        raise NotImplementedError

    def choose(self, bucket: list[Any], run: RunState) -> list[int]:
        return list(range(len(self.paths)))

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        raise TypeError(f"{self.TYPE} shapes are entered by the executor, not applied")


def _path_list(
    raw: dict[str, Any], key: str, path: str, errors: Violations, required: bool = True
) -> list[Any] | None:
    if key not in raw:
        if required:
            errors.append((f"{path}.{key}", "is required"))
        return None
    value = raw[key]
    if not isinstance(value, list) or not value:
        errors.append((f"{path}.{key}", "must be a non-empty array"))
        return None
    if len(value) > MAX_PATHS:
        errors.append((f"{path}.{key}", f"must hold at most {MAX_PATHS} paths"))
        return None
    return value


def _path_object(
    raw: Any, field: str, keys: frozenset[str], errors: Violations
) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        errors.append((field, "must be an object"))
        return None
    for key in raw:
        if key not in keys:
            errors.append((f"{field}.{key}", "unknown field for a path"))
    if "shapes" not in raw:
        errors.append((f"{field}.shapes", "is required"))
        return None
    return raw


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteShape(PathsShape):
    """Runs each path whose condition holds, in listed order; `otherwise` when none does."""

    TYPE = "route"
    FIELDS = frozenset({"paths", "otherwise"})

    conditions: tuple[Expression, ...]
    has_otherwise: bool = False

    @classmethod
    def parse_paths(
        cls, raw: dict[str, Any], path: str, errors: Violations, parse_path: ParsePath
    ) -> dict[str, Any]:
        conditions, paths = [], []
        for index, item in enumerate(_path_list(raw, "paths", path, errors) or ()):
            field = f"{path}.paths[{index}]"
            item = _path_object(item, field, frozenset({"condition", "shapes"}), errors)
            if item is None:
                continue
            if "condition" not in item:
                errors.append((f"{field}.condition", "is required"))
            else:
                conditions.append(_compile(item["condition"], f"{field}.condition", errors))
            paths.append(parse_path(item["shapes"], f"{field}.shapes", errors))
        has_otherwise = "otherwise" in raw
        if has_otherwise:
            paths.append(parse_path(raw["otherwise"], f"{path}.otherwise", errors))
        return {
            "conditions": tuple(conditions),
            "paths": tuple(paths),
            "has_otherwise": has_otherwise,
        }

    def choose(self, bucket: list[Any], run: RunState) -> list[int]:
        # Once, on entry, with the bucket the route was given: a resumed run keeps the choice.
        context = run.context(bucket[0] if bucket else None, bucket)
        meter = run.meter
        chosen = [i for i, c in enumerate(self.conditions) if is_truthy(c.search(context, meter))]
        if not chosen and self.has_otherwise:
            chosen = [len(self.conditions)]
        return chosen


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchShape(PathsShape):
    """Runs every path, one after another, each on the bucket the branch was given."""

    TYPE = "branch"
    FIELDS = frozenset({"paths"})

    @classmethod
    def parse_paths(
        cls, raw: dict[str, Any], path: str, errors: Violations, parse_path: ParsePath
    ) -> dict[str, Any]:
        paths = []
        for index, item in enumerate(_path_list(raw, "paths", path, errors) or ()):
            field = f"{path}.paths[{index}]"
            item = _path_object(item, field, frozenset({"shapes"}), errors)
            if item is not None:
                paths.append(parse_path(item["shapes"], f"{field}.shapes", errors))
        return {"paths": tuple(paths)}


#: try_catch's paths: `try` first, then `catch`, run only when a shape in `try` fails.
TRY, CATCH = 0, 1


@dataclass(frozen=True, slots=True, kw_only=True)
class TryCatchShape(PathsShape):
    """Runs `try`; when a shape in it fails, `catch` runs instead from the bucket `try` started
    with, the failure in `vars.error` (the executor's `_catch`)."""

    TYPE = "try_catch"
    FIELDS = frozenset({"try", "catch"})
    MERGE = False

    @classmethod
    def parse_paths(
        cls, raw: dict[str, Any], path: str, errors: Violations, parse_path: ParsePath
    ) -> dict[str, Any]:
        paths = []
        for key in ("try", "catch"):
            if key not in raw:
                errors.append((f"{path}.{key}", "is required"))
            else:
                paths.append(parse_path(raw[key], f"{path}.{key}", errors))
        return {"paths": tuple(paths)}

    def choose(self, bucket: list[Any], run: RunState) -> list[int]:
        return [TRY]
