"""Converting between HTTP and payloads: the first payload, `meta`, and the callback body."""

from __future__ import annotations

import json
import math
from typing import Any

Pairs = tuple[tuple[str, str], ...]


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON (RFC 8259) though Python's parser accepts them; a body that
    # uses them is taken as text rather than carried along to produce invalid JSON later.
    raise ValueError(f"{name} is not JSON")


# Shared instances: json.dumps/loads with non-default arguments build a new coder every call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def is_json_media_type(content_type: str) -> bool:
    """application/json or any structured syntax suffix +json (RFC 6839), parameters ignored."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or media_type.endswith("+json")


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


def body_payload(body: bytes, headers: Pairs) -> Any:
    """A non-empty request body as a payload: its JSON value, else its text."""
    content_type = header_value(headers, "content-type")
    if content_type is None or is_json_media_type(content_type):
        try:
            # Strict UTF-8 here (UnicodeDecodeError is a ValueError): JSON must be UTF-8
            # (RFC 8259 §8.1), and a body that is not is better kept as text than altered.
            return _DECODER.decode(body.decode("utf-8"))
        except (ValueError, RecursionError):
            # RecursionError: nested deeper than the parser's stack allows ([[[[...]]]] a few
            # thousand levels deep); like any body that does not parse, it is taken as text.
            pass
    return body.decode("utf-8", errors="replace")


def encode_json(value: Any) -> bytes:
    # "replace": a JSON body may carry lone surrogates ("\ud800"), which UTF-8 cannot encode.
    return _ENCODER.encode(value).encode("utf-8", errors="replace")


def callback_body(bucket: list[Any], unwrap: bool) -> bytes:
    if not unwrap:
        return encode_json(bucket)
    first = bucket[0] if bucket else None
    if isinstance(first, str):
        return first.encode("utf-8", errors="replace")
    return encode_json(first)


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
