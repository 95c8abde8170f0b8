"""Converting between HTTP and payloads: the first payload, `meta`, and the callback body.

The formats themselves (JSON, XML, CSV, text) are control_plane.engine.formats."""

from __future__ import annotations

import math
from typing import Any

from control_plane.engine.budgets import Meter
from control_plane.engine.formats import (
    DEFAULT_MAX_DEPTH,
    RenderError,
    encode_json,
    parse_payload,
    render_csv,
    render_xml,
)

Pairs = tuple[tuple[str, str], ...]


def header_value(headers: Pairs, name: str) -> str | None:
    """First value of a header; `name` must be lowercase."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def pairs_object(pairs: Pairs) -> dict[str, Any]:
    """Name → value, or → list of values in order when a name is repeated."""
    result: dict[str, Any] = {}
    for name, value in pairs:
        current = result.get(name)
        if current is None:
            result[name] = value
        elif isinstance(current, list):
            current.append(value)
        else:
            result[name] = [current, value]
    return result


def headers_object(headers: Pairs) -> dict[str, str]:
    """Lowercased name → value; repeats joined with ", " as RFC 9110 §5.3 allows."""
    result: dict[str, str] = {}
    for name, value in headers:
        key = name.lower()
        current = result.get(key)
        result[key] = value if current is None else f"{current}, {value}"
    return result


def body_payload(
    body: bytes, headers: Pairs, max_depth: int = DEFAULT_MAX_DEPTH, meter: Meter | None = None
) -> Any:
    """A non-empty request body as a payload, by its Content-Type (formats.parse_payload): JSON
    when there is none, XML, CSV, else (or when it does not parse) its text."""
    content_type = header_value(headers, "content-type") or ""
    return parse_payload(body, content_type, max_depth, meter)


def callback_body(
    bucket: list[Any],
    unwrap: bool,
    render: str = "json",
    limit: int | None = None,
    meter: Meter | None = None,
) -> bytes:
    """The answer's body: the bucket, or with `unwrap` its first payload (null when empty), as
    `render` says. `limit` and `meter` bound the XML and CSV renderers as they write."""
    value = (bucket[0] if bucket else None) if unwrap else bucket
    if render == "xml":
        return render_xml(value, limit=limit, meter=meter)
    if render == "csv":
        return render_csv(value, limit=limit, meter=meter)
    if render == "raw":
        if not isinstance(value, str):
            raise RenderError(
                "render 'raw' sends a string payload as it is; the first payload is not a string"
            )
        return value.encode("utf-8", errors="replace")
    if isinstance(value, str):  # json's one exception, as it has always been: text as itself
        return value.encode("utf-8", errors="replace")
    return encode_json(value)


def is_json_value(value: Any) -> bool:
    """Whether `value` is made only of what JSON can carry (finite numbers, str keys)."""
    if value is None or isinstance(value, str | bool | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(is_json_value(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(key, str) and is_json_value(item) for key, item in value.items())
    return False
