"""A logging filter that blanks signatures in log records: the second line of defence.

The first is that nothing the edge (or Sanic, as the edge runs it) logs quotes a query string or
a header (docs/http.md). This filter, on the edge process's log handlers, scrubs what slips past:
the value after `patchworks_signature=` (also percent-encoded: `patchworks%5Fsignature%3D`) and
after a `patchworks-signature` header name, in the message, its arguments and any traceback.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

_SIGNATURE = re.compile(
    r"(patchworks(?:_|%5f)signature(?:=|%3d)"  # a query parameter
    r"|patchworks-signature['\"]?\s*[:=,]\s*(?:b?['\"])?)"  # a header, or its repr in a tuple
    r"[^\s&'\",;)\]}]*",
    re.IGNORECASE,
)


def redact(text: str) -> str:
    return _SIGNATURE.sub(lambda m: m.group(1) + REDACTED, text)


class RedactSignatures(logging.Filter):
    """Rewrites each record's message (and traceback) without signature values."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Puts the filter on every handler of `logger` (the root logger by default)."""
    for handler in (logger or logging.getLogger()).handlers:
        handler.addFilter(RedactSignatures())
