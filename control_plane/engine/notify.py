"""The notify shape: a message for the run's log, shown by RunService.GetRun (Run.notices).

The message is a template: text with `{{ expression }}` placeholders, each a JMESPath expression
evaluated like set_variables' (`payload` is the first payload). A string result is inserted as
is, anything else as compact JSON. Why not Jinja or str.format: both reach attributes of
Python objects, and a template here is written by an untrusted tenant; a placeholder that is a
JMESPath expression can only read the run's own data, within the run's budgets.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any, Final

from control_plane.engine.expressions import Expression
from control_plane.engine.payloads import encode_json
from control_plane.engine.run import RunState
from control_plane.engine.shapes import Shape, Violations, _compile

LEVELS: Final = ("debug", "info", "warning", "error")
#: Characters of a template, and of a rendered message (longer ones are cut, marked "…").
MAX_MESSAGE: Final = 2_000

_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)

#: A template: literal text and compiled expressions, in order.
Parts = tuple[str | Expression, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class NotifyShape(Shape):
    TYPE = "notify"
    FIELDS = frozenset({"level", "message"})

    level: str = "info"
    message: Parts = ()

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "level" in raw:
            if raw["level"] not in LEVELS:
                errors.append((f"{path}.level", f"must be one of: {', '.join(LEVELS)}"))
            fields["level"] = raw["level"]
        template = raw.get("message")
        if not isinstance(template, str) or not 0 < len(template) <= MAX_MESSAGE:
            errors.append((f"{path}.message", f"must be a string of 1 to {MAX_MESSAGE} characters"))
            return fields
        parts: list[str | Expression] = []
        for index, piece in enumerate(_PLACEHOLDER.split(template)):
            if index % 2 == 0:  # literal text between placeholders
                if "{{" in piece:
                    errors.append((f"{path}.message", "has a '{{' without its closing '}}'"))
                if piece:
                    parts.append(piece)
                continue
            expression = _compile(piece.strip(), f"{path}.message", errors)
            if expression is not None:
                parts.append(expression)
        fields["message"] = tuple(parts)
        return fields

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        context = run.context(bucket[0] if bucket else None, bucket)
        text = []
        for part in self.message:
            if isinstance(part, str):
                text.append(part)
                continue
            value = part.search(context, run.meter)
            text.append(value if isinstance(value, str) else encode_json(value).decode())
        message = "".join(text)
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 1] + "…"
        run.notice(
            {"shape_id": self.id, "level": self.level, "message": message, "time": time.time()}
        )
        return bucket
