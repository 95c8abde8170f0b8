"""The trigger's callbacks, as Patchworks' "Trigger shape (callback)" shows them.

A "customise URLs for virtual environment" selector (a GET parameter, so the choice survives a
reload); "add new callback"; per callback its URL with "copy url" and, for the chosen VE,
"copy ve url"; its settings (response content type, timeout, rate limit); regenerating its
signature (with an optional grace period for the old one); deleting it. The page also says
whether the flow is deployed and enabled where the chosen URLs lead, since a callback answers
only then.
"""

from __future__ import annotations

import asyncio
import datetime as dt

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from boomerang.sdk import BoomerangError
from console.sessions import Session
from console.web import FieldError, Problem, back, call, failed, form, listing, number, render

#: The content types offered, as Patchworks names them: (form value, label, MIME type).
CONTENT_TYPES = (
    ("json", "JSON", "application/json"),
    ("xml", "XML", "application/xml"),
    ("txt", "TXT", "text/plain"),
    ("custom", "Custom", ""),
)
#: Grace periods offered when regenerating a signature: (form value, label).
GRACE_PERIODS = (
    ("0", "none: the old URL stops working at once"),
    ("3600", "1 hour"),
    ("86400", "24 hours"),
    ("604800", "7 days"),
    ("2592000", "30 days"),
)


def register(app: Sanic) -> None:
    app.add_route(trigger_page, "/flows/<flow_id>/trigger", methods=("GET",))
    app.add_route(add_callback, "/flows/<flow_id>/callbacks", methods=("POST",))
    app.add_route(update_callback, "/callbacks/<callback_id>/settings", methods=("POST",))
    app.add_route(regenerate, "/callbacks/<callback_id>/regenerate", methods=("POST",))
    app.add_route(delete_callback, "/callbacks/<callback_id>/delete", methods=("POST",))


def content_type_choice(mime: str) -> tuple[str, str]:
    """(form value, custom MIME type) for a callback's content type."""
    for value, _, named in CONTENT_TYPES:
        if named and mime == named:
            return value, ""
    return "custom", mime


async def trigger_page(
    request: Request,
    flow_id: str,
    problem: Problem | None = None,
    failed_form: str = "",
    status: int = 200,
    environment_id: str | None = None,
) -> HTTPResponse:
    s: Session = request.ctx.session
    if environment_id is None:
        environment_id = request.args.get("environment", "")
    try:
        flow = await call(s.client.get_flow, flow_id)
        environments, _ = await listing(s.client.list_environments, flow.company)
        if environment_id and environment_id not in {e.id for e in environments}:
            environment_id = ""  # a VE deleted meanwhile, or a made-up id: the default
        callbacks, more = await listing(s.client.list_callbacks, flow_id)
        deployments = await call(s.client.list_deployments, flow_id)
        # One GetCallbackUrl per callback (the list carries no URLs), at once, on worker threads.
        urls = await asyncio.gather(
            *(call(s.client.get_callback_url, cb.id, environment_id) for cb in callbacks)
        )
    except BoomerangError as err:
        return failed(request, err)
    chosen = next((e for e in environments if e.id == environment_id), None)
    deployment = {d.environment_id: d for d in deployments}
    return render(
        request,
        "trigger.html",
        status=status,
        flow=flow,
        environments=environments,
        environment=chosen,
        default_deployment=deployment.get(""),
        ve_deployment=deployment.get(environment_id) if chosen else None,
        callbacks=[
            (cb, url, content_type_choice(cb.content_type))
            for cb, url in zip(callbacks, urls, strict=True)
        ],
        more=more,
        content_types=CONTENT_TYPES,
        grace_periods=GRACE_PERIODS,
        problem=problem,
        failed_form=failed_form,
        now=dt.datetime.now(dt.UTC),
    )


def _here(request: Request, flow_id: str) -> str:
    """The trigger page, keeping the chosen VE."""
    environment_id = form(request, "environment")
    query = f"?environment={environment_id}" if environment_id else ""
    return f"/flows/{flow_id}/trigger{query}"


def _content_type(request: Request) -> str:
    choice = form(request, "content_type", "json")
    if choice == "custom":
        custom = form(request, "custom_content_type").strip()
        if not custom:
            raise FieldError("custom_content_type", "name the MIME type, e.g. text/csv")
        return custom
    for value, _, mime in CONTENT_TYPES:
        if value == choice:
            return mime
    raise FieldError("content_type", "choose JSON, XML, TXT or Custom")


async def add_callback(request: Request, flow_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        callback = await call(
            s.client.create_callback,
            flow_id,
            name=form(request, "name").strip(),
            content_type=_content_type(request),
        )
    except FieldError as e:
        return await _again(request, flow_id, e.problem, "add")
    except BoomerangError as err:
        return await _again(request, flow_id, Problem.of(err), "add")
    return back(request, _here(request, flow_id), f"Callback {callback.name or callback.id} added.")


async def _again(request: Request, flow_id: str, problem: Problem, failed_form: str):
    """The trigger page again, with the problem at the form that caused it."""
    return await trigger_page(
        request, flow_id, problem, failed_form, problem.status, form(request, "environment")
    )


async def _flow_of(s: Session, callback_id: str) -> str:
    return (await call(s.client.get_callback, callback_id)).flow_id


async def update_callback(request: Request, callback_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        flow_id = await _flow_of(s, callback_id)
    except BoomerangError as err:
        return failed(request, err)
    try:
        await call(
            s.client.update_callback,
            callback_id,
            content_type=_content_type(request),
            timeout_ms=number(request, "timeout_ms", low=0, high=300_000),
            rate_limit_per_minute=number(request, "rate_limit_per_minute", low=0, high=1_000_000),
        )
    except FieldError as e:
        return await _again(request, flow_id, e.problem, f"settings-{callback_id}")
    except BoomerangError as err:
        return await _again(request, flow_id, Problem.of(err), f"settings-{callback_id}")
    return back(request, _here(request, flow_id), "Callback settings saved.")


async def regenerate(request: Request, callback_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        flow_id = await _flow_of(s, callback_id)
    except BoomerangError as err:
        return failed(request, err)
    grace_s = form(request, "grace_period", "0")
    if grace_s not in {value for value, _ in GRACE_PERIODS}:
        problem = Problem.field("grace_period", "choose one of the grace periods offered")
        return await _again(request, flow_id, problem, f"regenerate-{callback_id}")
    grace = dt.timedelta(seconds=int(grace_s)) if grace_s != "0" else None
    try:
        await call(s.client.regenerate_signature, callback_id, grace)
    except BoomerangError as err:
        return await _again(request, flow_id, Problem.of(err), f"regenerate-{callback_id}")
    old = "stops working at once" if grace is None else "keeps working for the grace period"
    return back(request, _here(request, flow_id), f"Signature regenerated: the old URL {old}.")


async def delete_callback(request: Request, callback_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        flow_id = await _flow_of(s, callback_id)
        await call(s.client.delete_callback, callback_id)
    except BoomerangError as err:
        return failed(request, err)
    return back(request, _here(request, flow_id), "Callback deleted.")
