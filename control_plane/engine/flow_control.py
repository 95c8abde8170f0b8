"""Shapes that reshape the bucket itself: split (payloads into more payloads) and batch (payloads
into groups)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from control_plane.engine.expressions import Expression
from control_plane.engine.run import RunState
from control_plane.engine.shapes import Shape, Violations, _expression

#: Largest batch: a batch is one payload, and a payload this large is already unusual.
MAX_BATCH_SIZE = 10_000


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitShape(Shape):
    """Evaluates `expression` for each payload; each must give an array, and the bucket becomes
    the arrays' items, concatenated in order."""

    TYPE = "split"
    FIELDS = frozenset({"expression"})

    expression: Expression

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        return {"expression": _expression(raw, "expression", path, errors)}

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        search, meter = self.expression.search, run.meter
        result: list[Any] = []
        for index, payload in enumerate(bucket):
            items = search(run.context(payload, bucket), meter)
            if not isinstance(items, list):
                kind = "null" if items is None else type(items).__name__
                raise ValueError(
                    f"the expression gave {kind} for payload {index}; split needs an array"
                )
            result.extend(items)
        return result


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchShape(Shape):
    """Groups the payloads, in order, into arrays of `size` (the last may be shorter)."""

    TYPE = "batch"
    FIELDS = frozenset({"size"})

    size: int

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        size = raw.get("size")
        if type(size) is not int or not 1 <= size <= MAX_BATCH_SIZE:
            errors.append((f"{path}.size", f"must be an integer from 1 to {MAX_BATCH_SIZE}"))
            return {}
        return {"size": size}

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        size = self.size
        return [bucket[i : i + size] for i in range(0, len(bucket), size)]
