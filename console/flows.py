"""A flow: its draft's definition (an editor with the validation errors at their field path and
an outline of its shapes), its versions and its deployments (deploy, enable/disable, roll back:
deploying an older version again)."""

from __future__ import annotations

import json
from typing import Any

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from boomerang.sdk import BoomerangError, definition_dict
from boomerang.v1 import resources_pb2 as r
from console.sessions import Session
from console.web import (
    FieldError,
    Problem,
    back,
    call,
    enum_name,
    failed,
    form,
    listing,
    number,
    render,
)

#: Shape settings the outline names, in this order; others are shown as compact JSON.
_OUTLINE_KEYS = ("expression", "status", "unwrap", "headers", "variables", "payload", "seconds")


def register(app: Sanic) -> None:
    app.add_route(flow_page, "/flows/<flow_id>", methods=("GET",))
    app.add_route(save_draft, "/flows/<flow_id>/draft", methods=("POST",))
    app.add_route(deploy, "/flows/<flow_id>/deploy", methods=("POST",))
    app.add_route(set_enabled, "/flows/<flow_id>/deployments/enabled", methods=("POST",))
    app.add_route(delete_flow, "/flows/<flow_id>/delete", methods=("POST",))


def outline(definition: Any, problem: Problem) -> list[dict[str, Any]]:
    """The shapes as rows for people: position, id, type, what it does, its errors."""
    shapes = definition.get("shapes") if isinstance(definition, dict) else None
    if not isinstance(shapes, list):
        return []
    rows = []
    for index, shape in enumerate(shapes):
        if not isinstance(shape, dict):
            shape = {"value": shape}
        details = [(k, shape[k]) for k in _OUTLINE_KEYS if k in shape]
        others = {k: v for k, v in shape.items() if k not in ("id", "type", *_OUTLINE_KEYS)}
        if others:
            details.append(("other settings", others))
        rows.append(
            {
                "index": index,
                "id": shape.get("id", ""),
                "type": shape.get("type", ""),
                "details": [
                    (k, v if isinstance(v, str) else json.dumps(v)[:300]) for k, v in details
                ],
                "errors": problem.at(f"definition.shapes[{index}]"),
            }
        )
    return rows


async def flow_page(
    request: Request,
    flow_id: str,
    problem: Problem | None = None,
    failed_form: str = "",
    status: int = 200,
    definition_text: str | None = None,
) -> HTTPResponse:
    s: Session = request.ctx.session
    problem = problem or Problem("")
    try:
        flow = await call(s.client.get_flow, flow_id)
        draft = await call(s.client.get_draft, flow_id)
        versions, more_versions = await listing(s.client.list_versions, flow_id)
        deployments = await call(s.client.list_deployments, flow_id)
        environments, _ = await listing(s.client.list_environments, flow.company)
    except BoomerangError as err:
        return failed(request, err)
    saved = definition_dict(draft)
    if definition_text is None:
        definition_text = json.dumps(saved, indent=2)
        shown = saved
    else:
        try:
            shown = json.loads(definition_text)
        except ValueError:
            shown = saved
    env_names = {e.id: f"{e.name} (/{e.url_prefix})" for e in environments}
    return render(
        request,
        "flow.html",
        status=status,
        flow=flow,
        draft=draft,
        definition_text=definition_text,
        outline=outline(shown, problem),
        versions=[(v, enum_name(r.VersionState.Name(v.state), "VERSION_STATE_")) for v in versions],
        more_versions=more_versions,
        deployments=[(d, env_names.get(d.environment_id, "Default")) for d in deployments],
        environments=environments,
        problem=problem,
        failed_form=failed_form,
    )


async def save_draft(request: Request, flow_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    text = form(request, "definition")
    try:
        definition = json.loads(text)
    except ValueError as e:
        problem = Problem.field("definition", f"not valid JSON: {e}")
        return await flow_page(request, flow_id, problem, "draft", problem.status, text)
    if not isinstance(definition, dict):
        problem = Problem.field("definition", 'must be a JSON object: {"shapes": [...]}')
        return await flow_page(request, flow_id, problem, "draft", problem.status, text)
    try:
        version = await call(s.client.update_draft, flow_id, definition)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await flow_page(request, flow_id, problem, "draft", problem.status, text)
    return back(request, f"/flows/{flow_id}", f"Draft version {version.number} saved.")


async def deploy(request: Request, flow_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    environment_id = form(request, "environment_id")
    try:
        version_number = number(request, "number", low=0, high=2**31 - 1)
        response = await call(
            s.client.deploy_version,
            flow_id,
            version_number,
            environment_id,
            form(request, "enabled") != "on",
        )
    except FieldError as e:
        return await flow_page(request, flow_id, e.problem, "deploy", e.problem.status)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await flow_page(request, flow_id, problem, "deploy", problem.status)
    deployment = response.deployment
    state = "enabled" if deployment.enabled else "disabled"
    return back(
        request,
        f"/flows/{flow_id}",
        f"Version {deployment.version_number} deployed ({state}).",
    )


async def set_enabled(request: Request, flow_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    environment_id = form(request, "environment_id")
    enabled = form(request, "enabled") == "true"
    try:
        await call(s.client.set_deployment_enabled, flow_id, enabled, environment_id)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await flow_page(
            request, flow_id, problem, f"deployment-{environment_id}", problem.status
        )
    return back(request, f"/flows/{flow_id}", f"Deployment {'enabled' if enabled else 'disabled'}.")


async def delete_flow(request: Request, flow_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        flow = await call(s.client.get_flow, flow_id)
        await call(s.client.delete_flow, flow_id)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await flow_page(request, flow_id, problem, "delete", problem.status)
    return back(request, f"/companies/{flow.company}", f"Flow {flow.name} deleted.")
