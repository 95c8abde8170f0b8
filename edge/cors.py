"""CORS per callback (docs/callback-security.md): browsers on the callback's allowed origins may
call it and read the run id; nobody else gets CORS headers.

- A preflight (OPTIONS with Origin and Access-Control-Request-Method) is answered here, with no
  run: 204 with the Access-Control-Allow-* headers when the callback is known (and, if the query
  carries a signature, that signature is right), the origin is allowed, and the requested method
  and headers are among those below; otherwise 403 `origin_not_allowed`, the same for an unknown
  callback, so a preflight cannot tell whether a callback exists.
- Every answer to an authenticated request from an allowed origin, success or error, carries
  Access-Control-Allow-Origin, Vary: Origin and Access-Control-Expose-Headers. The callback
  route marks the request (`allow`) once the signature is checked; `on_response` adds the
  headers to whatever answer follows, so answers added later get them too.
"""

from __future__ import annotations

from sanic import Request
from sanic.response import HTTPResponse, empty

from edge import errors
from edge.cache import CallbackRecord

ANY = "*"
METHODS = ("GET", "POST", "HEAD")
#: The request headers a browser may send: the signature, content type, the features of issue 8
#: (idempotency, async, HMAC). Others are refused, so a preflight never promises more.
REQUEST_HEADERS = frozenset(
    {
        "content-type",
        "patchworks-signature",
        "idempotency-key",
        "prefer",
        "x-hmac-hash",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    }
)
EXPOSE_HEADERS = "x-boomerang-run-id, location, retry-after"
MAX_AGE_S = 600


def is_preflight(request: Request) -> bool:
    h = request.headers
    return request.method == "OPTIONS" and "origin" in h and "access-control-request-method" in h


def allowed_origin(record: CallbackRecord, origin: str) -> str | None:
    """The Access-Control-Allow-Origin value for `origin`, or None if it is not allowed."""
    if not origin:
        return None
    if record.allowed_origins == (ANY,):
        return ANY
    return origin if origin in record.allowed_origins else None


def allow(request: Request, record: CallbackRecord) -> None:
    """Marks an authenticated request: its answer gets CORS headers if its origin is allowed."""
    value = allowed_origin(record, request.headers.get("origin", ""))
    if value is not None:
        request.ctx.cors_origin = value


def preflight(request: Request, record: CallbackRecord | None) -> HTTPResponse:
    """The answer to a preflight; `record` is None for an unknown callback or wrong signature."""
    origin = request.headers.get("origin", "")
    method = request.headers.get("access-control-request-method", "").strip()
    asked = [
        h.strip().lower()
        for h in request.headers.get("access-control-request-headers", "").split(",")
        if h.strip()
    ]
    if (
        record is None
        or allowed_origin(record, origin) is None
        or method not in METHODS
        or any(h not in REQUEST_HEADERS for h in asked)
    ):
        raise errors.OriginNotAllowed
    headers = {
        "access-control-allow-origin": origin,
        "vary": "Origin",
        "access-control-allow-methods": ", ".join(METHODS),
        "access-control-max-age": str(MAX_AGE_S),
    }
    if asked:
        headers["access-control-allow-headers"] = ", ".join(dict.fromkeys(asked))
    return empty(204, headers=headers)


async def on_response(request: Request, response: HTTPResponse) -> None:
    origin = getattr(request.ctx, "cors_origin", None)
    if origin is None:
        return
    response.headers["access-control-allow-origin"] = origin
    vary = response.headers.get("vary", "")
    if "origin" not in vary.lower():  # keep a Vary the flow set, add ours to it
        response.headers["vary"] = f"{vary}, Origin" if vary else "Origin"
    response.headers["access-control-expose-headers"] = EXPOSE_HEADERS
