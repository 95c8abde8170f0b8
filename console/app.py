"""The console's Sanic app: sessions, CSRF, security headers, and the pages' routes.

Every request but sign-in, static files and /healthz needs a live session (else: to the sign-in
page); every POST must carry the session's CSRF token (sign-in: the token of its own cookie),
checked before the handler runs. Pages are never cached and never framed, and send no Referer:
they show callback URLs, whose signatures must not travel to another site.
"""

from __future__ import annotations

import asyncio
import logging
from importlib.resources import files

from sanic import Request, Sanic
from sanic.response import HTTPResponse, redirect, text

from console import auth, callbacks, companies, flows, runs, system
from console.config import ConsoleSettings
from console.sessions import COOKIE, SessionStore
from console.web import Problem, csrf_ok, render

log = logging.getLogger("boomerang.console")

#: Paths served without a session.
PUBLIC = ("/sign-in", "/static/", "/healthz", "/favicon.ico")

#: Sent with every answer. The pages load scripts and styles only from /static (no inline
#: script can run, even one an attacker smuggled into a name), are never framed, and send no
#: Referer. `clipboard-write` is this page's own.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def create_app(settings: ConsoleSettings, *, name: str = "boomerang-console") -> Sanic:
    """A new console app; `name` must be unique among the process's Sanic apps."""
    app = Sanic(name, configure_logging=False)
    app.ctx.settings = settings
    app.ctx.sessions = SessionStore(
        idle_s=settings.session_idle_s,
        max_s=settings.session_max_s,
        max_sessions=settings.max_sessions,
    )
    app.ctx.sign_ins = asyncio.Semaphore(auth.MAX_CONCURRENT_SIGN_INS)
    # A definition may be 1 MiB (the default quota); form encoding can triple it.
    app.config.REQUEST_MAX_SIZE = 4 * 1024 * 1024
    app.config.ACCESS_LOG = False  # ours, below: path and status only, never a query or body
    app.config.MOTD = False
    app.config.FALLBACK_ERROR_FORMAT = "html"
    app.static("/static", str(files("console") / "static"), name="static")

    for module in (auth, companies, flows, callbacks, runs, system):
        module.register(app)

    @app.get("/favicon.ico")
    async def favicon(request: Request) -> HTTPResponse:
        return redirect("/static/favicon.svg", status=301)

    @app.get("/healthz")
    async def healthz(request: Request) -> HTTPResponse:
        return text("ok")

    app.register_middleware(_session, "request")
    app.register_middleware(_headers, "response")
    app.error_handler.add(Exception, _error)

    @app.after_server_start
    async def start_sweeper(app: Sanic) -> None:
        app.ctx.sweeper = asyncio.create_task(_sweep(app.ctx.sessions))

    @app.before_server_stop
    async def stop_sweeper(app: Sanic) -> None:
        app.ctx.sweeper.cancel()
        app.ctx.sessions.close()

    return app


async def _sweep(sessions: SessionStore) -> None:
    """Ends expired sessions (and closes their channels) every minute."""
    while True:
        await asyncio.sleep(60)
        sessions.sweep()


async def _session(request: Request) -> HTTPResponse | None:
    """Finds the request's session, sends the sessionless to sign in, checks CSRF tokens."""
    request.ctx.session = None
    if request.path.startswith(PUBLIC):
        return None
    sessions: SessionStore = request.app.ctx.sessions
    session = sessions.get(request.cookies.get(COOKIE))
    if session is None:
        return redirect("/sign-in", status=303)
    request.ctx.session = session
    if request.method not in ("GET", "HEAD") and not csrf_ok(
        session.csrf_token, request.form.get("csrf_token") if request.form else None
    ):
        return csrf_refused(request)
    return None


def csrf_refused(request: Request) -> HTTPResponse:
    log.warning("refused %s %s: CSRF token missing or wrong", request.method, request.path)
    return render(
        request,
        "error.html",
        status=403,
        problem=Problem(
            "This form was not sent from a page of this console, or the page is too old "
            "(CSRF check failed). Nothing was changed: reload the page and try again."
        ),
    )


async def _headers(request: Request, response: HTTPResponse) -> None:
    for header, value in SECURITY_HEADERS.items():
        response.headers.setdefault(header, value)
    if not request.path.startswith("/static/"):
        response.headers["Cache-Control"] = "no-store"
    log.info("%s %s %s", request.method, request.path, response.status)


def _error(request: Request, exception: Exception) -> HTTPResponse:
    """Sanic's own errors (404, 405, 413...) as a page; anything else as a 500 whose details
    stay in the log."""
    status = getattr(exception, "status_code", 500)
    if status >= 500:
        log.exception("error serving %s %s", request.method, request.path)
        message = "Something went wrong in the console; the details are in its log."
    else:
        message = {
            404: "There is no such page.",
            405: "That method is not allowed here.",
            413: "What was sent is too large.",
        }.get(status, "The request could not be handled.")
    if not hasattr(request.ctx, "session"):
        request.ctx.session = None
    return render(request, "error.html", status=status, problem=Problem(message))
