"""The Content-Type of a callback's answer.

A flow's answer body is UTF-8 (control_plane/engine/payloads.py encodes it so), but a `text/*`
type without a charset defaults to US-ASCII (RFC 6657) or, in browsers, to a guess: such types
get `charset=utf-8`. Other types and an explicit charset are left as the callback says.
"""

from __future__ import annotations

from functools import lru_cache

#: Used when a callback record has no content type.
DEFAULT = "application/json"


@lru_cache(maxsize=1024)  # one entry per distinct content type: callbacks share a handful
def answer_content_type(content_type: str) -> str:
    """`content_type`, with `; charset=utf-8` added to a text/* type that names no charset."""
    content_type = content_type or DEFAULT
    media_type, _, params = content_type.partition(";")
    if not media_type.strip().lower().startswith("text/"):
        return content_type
    for param in params.split(";"):
        if param.split("=", 1)[0].strip().lower() == "charset":
            return content_type
    return f"{content_type.rstrip()}; charset=utf-8"
