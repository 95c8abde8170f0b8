"""What every page shares: calling the API off the event loop, turning its errors into readable
messages, rendering templates, and the CSRF token check.

Errors: every control-plane failure is a `boomerang.sdk.BoomerangError`; `Problem.of` turns it
into a sentence for the top of the form that caused it, plus the field violations by field path
(`slug`, `definition.shapes[1].expression`), which the templates show next to their field.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import islice
from typing import Any, TypeVar

import grpc
from jinja2 import Environment, PackageLoader, select_autoescape
from sanic import Request
from sanic.response import HTTPResponse, html, redirect

from boomerang.sdk import BoomerangError
from console.sessions import Session

T = TypeVar("T")

#: Most rows a list page shows (the API pages further; the page says when it stopped).
LIST_LIMIT = 200

_TITLES = {
    grpc.StatusCode.INVALID_ARGUMENT: "Not valid",
    grpc.StatusCode.NOT_FOUND: "Not found",
    grpc.StatusCode.ALREADY_EXISTS: "Already exists",
    grpc.StatusCode.PERMISSION_DENIED: "Not allowed for this key",
    grpc.StatusCode.FAILED_PRECONDITION: "Not possible now",
    grpc.StatusCode.RESOURCE_EXHAUSTED: "Quota reached",
    grpc.StatusCode.UNAUTHENTICATED: "The API key is no longer accepted",
    grpc.StatusCode.UNAVAILABLE: "The control plane cannot be reached",
    grpc.StatusCode.DEADLINE_EXCEEDED: "The control plane did not answer in time",
}
#: The HTTP status a page gets when a call fails with this gRPC status.
_STATUSES = {
    grpc.StatusCode.INVALID_ARGUMENT: 422,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.FAILED_PRECONDITION: 409,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
}


@dataclass
class Problem:
    """What went wrong, for people: a sentence, and field path → descriptions."""

    message: str
    fields: dict[str, list[str]] = field(default_factory=dict)
    status: int = 400
    reason: str = ""

    @classmethod
    def of(cls, err: BoomerangError) -> Problem:
        title = _TITLES.get(err.code, "The control plane refused")
        detail = err.message.strip()
        if err.metadata.get("quota"):
            detail += f" (quota {err.metadata['quota']}: limit {err.metadata.get('limit', '?')})"
        fields: dict[str, list[str]] = {}
        for path, description in err.field_violations:
            fields.setdefault(path, []).append(description)
        message = f"{title}: {detail}" if detail else title
        return cls(message, fields, _STATUSES.get(err.code, 502), err.reason)

    @classmethod
    def field(cls, name: str, description: str, status: int = 422) -> Problem:
        """A problem the console found itself (a number that is not one, JSON that does not
        parse) before asking the control plane."""
        return cls(f"Not valid: {description}", {name: [description]}, status)

    def at(self, name: str) -> list[str]:
        """Descriptions for field `name` and anything inside it (`definition` gets
        `definition.shapes[1].expression` too)."""
        return [
            description
            for path, descriptions in self.fields.items()
            if path == name or path.startswith((name + ".", name + "["))
            for description in descriptions
        ]


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """`fn(*args, **kwargs)` (an SDK method of the session's client: the SDK is synchronous) on
    a worker thread, so the event loop serves other requests meanwhile."""
    return await asyncio.to_thread(fn, *args, **kwargs)


async def listing(fn: Callable[..., Iterable[T]], *args: Any, **kw: Any):
    """The first LIST_LIMIT items of a paginated SDK list, fetched on a worker thread, and
    whether there were more."""

    def run() -> tuple[list[T], bool]:
        items = list(islice(iter(fn(*args, **kw)), LIST_LIMIT + 1))
        return items[:LIST_LIMIT], len(items) > LIST_LIMIT

    return await asyncio.to_thread(run)


# ---- templates -------------------------------------------------------------------------------

templates = Environment(
    loader=PackageLoader("console", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def render(request: Request, name: str, *, status: int = 200, **context: Any) -> HTTPResponse:
    session: Session | None = getattr(request.ctx, "session", None)
    flashes: list[str] = []
    if session is not None:
        flashes, session.flashes = session.flashes, []
    page = templates.get_template(name).render(
        request=request,
        session=session,
        csrf_token=session.csrf_token if session else getattr(request.ctx, "csrf_token", ""),
        flashes=flashes,
        problem=context.pop("problem", None) or Problem(""),
        **context,
    )
    return html(page, status=status)


def back(request: Request, to: str, flash: str = "") -> HTTPResponse:
    """After a change: a message for the next page, and 303 to it (POST/redirect/GET)."""
    session: Session | None = getattr(request.ctx, "session", None)
    if flash and session is not None:
        session.flashes.append(flash)
    return redirect(to, status=303)


def form(request: Request, name: str, default: str = "") -> str:
    value = request.form.get(name) if request.form else None
    return default if value is None else value


def csrf_ok(expected: str, given: str | None) -> bool:
    return bool(expected) and given is not None and hmac.compare_digest(expected, given)


def number(request: Request, name: str, *, low: int, high: int) -> int:
    """A whole number form field within [low, high]; raises FieldError naming the field."""
    raw = form(request, name).strip()
    if raw == "":
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise FieldError(name, f"must be a whole number, not {raw[:40]!r}") from None
    if not low <= value <= high:
        raise FieldError(name, f"must be {low}-{high}, not {value}")
    return value


class FieldError(Exception):
    """A form field the console refuses before any call."""

    def __init__(self, name: str, description: str) -> None:
        super().__init__(name, description)
        self.problem = Problem.field(name, description)


def timestamp(ts) -> str:
    """A protobuf Timestamp as "2026-12-01 05:14:07 UTC", or "" when unset."""
    if not ts.seconds and not ts.nanos:
        return ""
    return ts.ToDatetime().strftime("%Y-%m-%d %H:%M:%S UTC")


def enum_name(value: str, prefix: str) -> str:
    """RUN_STATUS_FAILED → "failed"."""
    return value.removeprefix(prefix).lower().replace("_", " ")


templates.filters["ts"] = timestamp


def values(request: Request) -> dict[str, str]:
    """The submitted form, to fill the form again after a refusal (never the CSRF token)."""
    if not request.form:
        return {}
    return {k: request.form.get(k, "") for k in request.form if k not in ("csrf_token", "api_key")}


def failed(request: Request, err: BoomerangError) -> HTTPResponse:
    """A page that could not be built: the error in its place. A key that stopped working
    (revoked while signed in) ends the session."""
    session: Session | None = request.ctx.session
    if err.code == grpc.StatusCode.UNAUTHENTICATED and session is not None:
        request.app.ctx.sessions.end(session)
        request.ctx.session = None
        return redirect("/sign-in", status=303)
    problem = Problem.of(err)
    return render(request, "error.html", status=problem.status, problem=problem)
