"""The shape types: the fields each one takes, how they are checked, and what each one does.

Each shape turns the bucket (the list of payloads flowing through the flow) into the next one.
The format itself is described in `control_plane.engine.definition`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from control_plane.engine.expressions import Expression, ExpressionError, is_truthy
from control_plane.engine.formats import RENDERS
from control_plane.engine.payloads import Pairs, callback_body, is_json_value
from control_plane.engine.run import CallbackResponse, RunState

Violations = list[tuple[str, str]]  # (field path, description)

_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 7230 §3.2.6 token
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e]*")  # no CR/LF: a value must not start a new header
# The callback's own settings give the Content-Type, and the HTTP server frames the body.
_FORBIDDEN_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})
MAX_WAIT_SECONDS = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Shape:
    TYPE: ClassVar[str]
    FIELDS: ClassVar[frozenset[str]] = frozenset()  # besides id, type and name

    id: str
    name: str = ""

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        """Check the type's own fields, appending violations; return them parsed."""
        return {}

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        """Return the next bucket. Never mutate `bucket`: expressions may still hold it."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class AsyncShape(Shape):
    """A shape that awaits I/O (none in the catalogue yet; outbound calls come next).

    The runner awaits `perform` on its event loop, so it must not compute for long (use
    expressions through the run's meter) and must bound its own waiting. After the callback a
    shape may run more than once (a resumed run repeats the shape it was in): anything it sends
    must carry `run.idempotency_key(self.id)`, which is the same on every attempt.
    """

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        raise TypeError(f"{self.TYPE} shapes are awaited: use perform()")

    async def perform(self, bucket: list[Any], run: RunState) -> list[Any]:
        """Return the next bucket. Never mutate `bucket`."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True, kw_only=True)
class TriggerShape(Shape):
    TYPE = "trigger"

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        return [run.first_payload()]


@dataclass(frozen=True, slots=True, kw_only=True)
class ManualPayloadShape(Shape):
    TYPE = "manual_payload"
    FIELDS = frozenset({"payload", "payloads"})

    payloads: tuple[Any, ...]

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        if ("payload" in raw) == ("payloads" in raw):
            errors.append((path, "exactly one of 'payload' or 'payloads' is required"))
            return {}
        if "payload" in raw:
            if not is_json_value(raw["payload"]):
                errors.append((f"{path}.payload", "must be a JSON value"))
            return {"payloads": (raw["payload"],)}
        payloads = raw["payloads"]
        if not isinstance(payloads, list):
            errors.append((f"{path}.payloads", "must be an array"))
            return {}
        if not is_json_value(payloads):
            errors.append((f"{path}.payloads", "must be an array of JSON values"))
        return {"payloads": tuple(payloads)}

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        # A fresh list per run; the payloads themselves are shared, as nothing mutates one.
        return list(self.payloads)


@dataclass(frozen=True, slots=True, kw_only=True)
class MapShape(Shape):
    TYPE = "map"
    FIELDS = frozenset({"expression"})

    expression: Expression

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        return {"expression": _expression(raw, "expression", path, errors)}

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        search, meter = self.expression.search, run.meter
        return [search(run.context(payload, bucket), meter) for payload in bucket]


@dataclass(frozen=True, slots=True, kw_only=True)
class FilterShape(Shape):
    TYPE = "filter"
    FIELDS = frozenset({"condition"})

    condition: Expression

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        return {"condition": _expression(raw, "condition", path, errors)}

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        search, meter = self.condition.search, run.meter
        return [p for p in bucket if is_truthy(search(run.context(p, bucket), meter))]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetVariablesShape(Shape):
    TYPE = "set_variables"
    FIELDS = frozenset({"variables"})

    variables: tuple[tuple[str, Expression], ...]

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        variables = raw.get("variables")
        if not isinstance(variables, dict) or not variables:
            errors.append((f"{path}.variables", "must be an object with at least one variable"))
            return {}
        parsed = []
        for name, source in variables.items():
            field = f"{path}.variables.{name}"
            if not isinstance(name, str) or not _VARIABLE_NAME.fullmatch(name):
                errors.append((field, "variable names must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$"))
            expression = _compile(source, field, errors)
            if expression is not None:
                parsed.append((name, expression))
        return {"variables": tuple(parsed)}

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        # Every expression sees the variables as they were before this shape, so the order of
        # the keys does not matter; a later shape sees the new ones.
        context = run.context(bucket[0] if bucket else None, bucket)
        meter = run.meter
        values = {name: expression.search(context, meter) for name, expression in self.variables}
        run.vars = {**run.vars, **values}
        return bucket


@dataclass(frozen=True, slots=True, kw_only=True)
class CallbackShape(Shape):
    TYPE = "callback"
    FIELDS = frozenset({"status", "headers", "unwrap", "render"})

    status: int = 200
    headers: Pairs = ()
    unwrap: bool = False
    render: str = "json"  # one of formats.RENDERS (docs/formats.md)

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        if "status" in raw:
            status = raw["status"]
            # bool is an int subclass; `true` is not a status code.
            # 1xx are interim answers: no HTTP server can send one as the response to a request.
            if type(status) is not int or not 200 <= status <= 599:
                errors.append((f"{path}.status", "must be an integer from 200 to 599"))
            fields["status"] = status
        if "headers" in raw:
            fields["headers"] = _headers(raw["headers"], f"{path}.headers", errors)
        if "unwrap" in raw:
            if not isinstance(raw["unwrap"], bool):
                errors.append((f"{path}.unwrap", "must be a boolean"))
            fields["unwrap"] = raw["unwrap"]
        if "render" in raw:
            render = raw["render"]
            if render not in RENDERS:
                errors.append((f"{path}.render", f"must be one of: {', '.join(RENDERS)}"))
            elif render == "raw" and raw.get("unwrap") is not True:
                # The bucket is a list, never a string: raw sends one payload.
                errors.append((f"{path}.render", "'raw' sends one payload: it needs unwrap: true"))
            fields["render"] = render
        return fields

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        # Only the first callback reached answers the caller; later ones pass the bucket on.
        if not run.responded:
            limit, meter = run.meter.budgets.callback_bytes, run.meter
            body = callback_body(bucket, self.unwrap, self.render, limit, meter)
            run.respond(CallbackResponse(status=self.status, headers=self.headers, body=body))
        return bucket


@dataclass(frozen=True, slots=True, kw_only=True)
class WaitShape(Shape):
    """Pauses the run; the executor awaits `seconds` (what is left of them, after a resume)."""

    TYPE = "wait"
    FIELDS = frozenset({"seconds"})

    seconds: float

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        seconds = raw.get("seconds")
        if (
            not isinstance(seconds, int | float)
            or isinstance(seconds, bool)
            or not math.isfinite(seconds)
            or not 0 < seconds <= MAX_WAIT_SECONDS
        ):
            errors.append((f"{path}.seconds", f"must be a number in (0, {MAX_WAIT_SECONDS}]"))
            return {}
        return {"seconds": float(seconds)}

    def apply(self, bucket: list[Any], run: RunState) -> list[Any]:
        return bucket


SHAPE_TYPES: dict[str, type[Shape]] = {
    cls.TYPE: cls
    for cls in (
        TriggerShape,
        ManualPayloadShape,
        MapShape,
        FilterShape,
        SetVariablesShape,
        CallbackShape,
        WaitShape,
    )
}


def _expression(raw: dict[str, Any], key: str, path: str, errors: Violations) -> Expression | None:
    if key not in raw:
        errors.append((f"{path}.{key}", "is required"))
        return None
    return _compile(raw[key], f"{path}.{key}", errors)


def _compile(source: Any, field: str, errors: Violations) -> Expression | None:
    if not isinstance(source, str):
        errors.append((field, "must be a string holding a JMESPath expression"))
        return None
    try:
        return Expression(source)
    except ExpressionError as exc:
        errors.append((field, str(exc)))
        return None


def _headers(headers: Any, field: str, errors: Violations) -> Pairs:
    if not isinstance(headers, dict):
        errors.append((field, "must be an object of header names to string values"))
        return ()
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            errors.append((f"{field}.{name}", "is not a valid header name (RFC 7230 token)"))
        elif name.lower() in _FORBIDDEN_HEADERS:
            errors.append(
                (
                    f"{field}.{name}",
                    "cannot be set here: the content type is set on the callback and the "
                    "server frames the body",
                )
            )
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            errors.append((f"{field}.{name}", "must be a string of printable ASCII characters"))
    return tuple(headers.items())
