"""Signing in with an API key, and out.

The key is checked by using it: ListCompanies must succeed (an edge or runner key cannot, nor
can an unknown or revoked one), and GetQuotas for the installation tells an installation-wide
key from a company key. The key then lives only in the session's SDK client, in memory; it is
never echoed into a page (a failed sign-in shows an empty field), a URL or a log line.

The sign-in form has no session yet, so its CSRF token travels in a signed cookie of its own
(double submit): a form posted from another site carries neither.
"""

from __future__ import annotations

import asyncio
import secrets
from itertools import islice

from sanic import Request, Sanic
from sanic.response import HTTPResponse, redirect

from boomerang.sdk import BoomerangError, Client, PermissionDenied, Unauthenticated
from boomerang.sdk.channel import tls_credentials
from console.config import ConsoleSettings
from console.sessions import COOKIE, SIGN_IN_COOKIE, Session, SessionStore
from console.web import Problem, csrf_ok, form, render

#: Longer than any key Boomerang makes; longer input is refused before any call.
MAX_KEY_LENGTH = 512
#: Most sign-ins checked with the control plane at once; more wait their turn, so a flood of
#: sign-in attempts cannot hold every worker thread (or hammer the control plane).
MAX_CONCURRENT_SIGN_INS = 8


def register(app: Sanic) -> None:
    app.add_route(sign_in_page, "/sign-in", methods=("GET",))
    app.add_route(sign_in, "/sign-in", methods=("POST",))
    app.add_route(sign_out, "/sign-out", methods=("POST",))
    app.add_route(home, "/", methods=("GET",))


def secure(request: Request) -> bool:
    return request.scheme == "https" or request.app.ctx.settings.secure_cookies


def set_cookie(request: Request, response: HTTPResponse, name: str, value: str, max_age: int):
    response.add_cookie(
        name,
        value,
        path="/",
        max_age=max_age,
        httponly=True,
        samesite="Strict",
        secure=secure(request),
    )


def _sign_in_form(request: Request, problem: Problem | None = None, status: int = 0):
    sessions: SessionStore = request.app.ctx.sessions
    # The token of the browser's sign-in cookie when it has one: another tab (or a request
    # for the icon) showing the form must not invalidate the form already shown.
    token = sessions.unsign(request.cookies.get(SIGN_IN_COOKIE)) or secrets.token_urlsafe(32)
    request.ctx.csrf_token = token
    status = status or (problem.status if problem else 200)
    response = render(request, "sign_in.html", status=status, problem=problem)
    set_cookie(request, response, SIGN_IN_COOKIE, sessions.sign(token), 3600)
    return response


async def sign_in_page(request: Request) -> HTTPResponse:
    sessions: SessionStore = request.app.ctx.sessions
    if sessions.get(request.cookies.get(COOKIE)) is not None:
        return redirect("/", status=303)
    return _sign_in_form(request)


async def sign_in(request: Request) -> HTTPResponse:
    sessions: SessionStore = request.app.ctx.sessions
    settings: ConsoleSettings = request.app.ctx.settings
    expected = sessions.unsign(request.cookies.get(SIGN_IN_COOKIE)) or ""
    if not csrf_ok(expected, form(request, "csrf_token") or None):
        return _sign_in_form(
            request,
            Problem(
                "The sign-in form was not sent from this console, or it is too old (CSRF "
                "check failed). Try again."
            ),
            403,
        )
    key = form(request, "api_key").strip()
    if not key:
        return _sign_in_form(request, Problem.field("api_key", "enter an API key"))
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        return _sign_in_form(request, Problem.field("api_key", "this is not an API key"))
    credentials = (
        tls_credentials(settings.tls_ca, settings.tls_client_cert, settings.tls_client_key)
        if settings.tls
        else None
    )
    client = Client(
        settings.control_plane_target,
        key,
        timeout=settings.rpc_timeout_s,
        credentials=credentials,
    )
    try:
        async with request.app.ctx.sign_ins:
            installation_wide, company = await _check(client)
    except BoomerangError as err:
        client.close()
        if isinstance(err, Unauthenticated):
            problem = Problem.field("api_key", "this key is unknown or revoked", 401)
        elif isinstance(err, PermissionDenied):
            problem = Problem.field(
                "api_key", "this key cannot manage anything (an edge or runner key?)", 403
            )
        else:
            problem = Problem.of(err)
        return _sign_in_form(request, problem, problem.status)
    old = sessions.get(request.cookies.get(COOKIE))
    if old is not None:
        sessions.end(old)  # a new id at every sign-in: no session fixation
    _, cookie = sessions.create(client, installation_wide=installation_wide, company=company)
    response = redirect("/", status=303)
    set_cookie(request, response, COOKIE, cookie, int(settings.session_max_s))
    response.delete_cookie(SIGN_IN_COOKIE, path="/")
    return response


async def _check(client: Client) -> tuple[bool, str]:
    """(installation-wide?, the company of a company key) — raises what the key may not do."""

    def check() -> tuple[bool, str]:
        visible = list(islice(client.list_companies(page_size=2), 2))
        try:
            client.get_quotas()
        except PermissionDenied:
            return False, visible[0].slug if visible else ""
        return True, ""

    return await asyncio.to_thread(check)


async def sign_out(request: Request) -> HTTPResponse:
    session: Session = request.ctx.session
    request.app.ctx.sessions.end(session)
    response = redirect("/sign-in", status=303)
    response.delete_cookie(COOKIE, path="/")
    return response


async def home(request: Request) -> HTTPResponse:
    session: Session = request.ctx.session
    if session.installation_wide or not session.company:
        return redirect("/companies", status=303)
    return redirect(f"/companies/{session.company}", status=303)
