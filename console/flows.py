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
    """The shapes as rows for people: position, id, type, what it does, its errors, and the
    paths of route, branch and try_catch shapes as nested rows."""
    shapes = definition.get("shapes") if isinstance(definition, dict) else None
    return _rows(shapes, "definition.shapes", problem, 0)


#: Keys holding nested shapes: `paths` (route, branch: a list of {condition?, shapes}) and the
#: shape lists of try_catch and of a route's `otherwise`.
_PATH_KEYS = ("paths", "try", "catch", "otherwise")
#: Nesting shown; the control plane refuses definitions deeper than this anyway.
_MAX_OUTLINE_DEPTH = 10


def _rows(shapes: Any, prefix: str, problem: Problem, depth: int) -> list[dict[str, Any]]:
    if not isinstance(shapes, list) or depth > _MAX_OUTLINE_DEPTH:
        return []
    rows = []
    for index, shape in enumerate(shapes):
        if not isinstance(shape, dict):
            shape = {"value": shape}
        path = f"{prefix}[{index}]"
        children = _children(shape, path, problem, depth)
        details = [(k, shape[k]) for k in _OUTLINE_KEYS if k in shape]
        skip = ("id", "type", *_OUTLINE_KEYS, *_PATH_KEYS)
        others = {k: v for k, v in shape.items() if k not in skip}
        if others:
            details.append(("other settings", others))
        nested = _nested_prefixes(shape, path)
        rows.append(
            {
                "index": index,
                "id": shape.get("id", ""),
                "type": shape.get("type", ""),
                "details": [
                    (k, v if isinstance(v, str) else json.dumps(v)[:300]) for k, v in details
                ],
                # Its own errors: those inside its paths are shown at their own shapes.
                "errors": [
                    d
                    for field, descriptions in problem.fields.items()
                    if (field == path or field.startswith((path + ".", path + "[")))
                    and not field.startswith(nested)
                    for d in descriptions
                ],
                "children": children,
            }
        )
    return rows


def _nested_prefixes(shape: dict, path: str) -> tuple[str, ...]:
    """Field paths of the shapes inside `shape`'s paths (their errors show at those shapes;
    a path's own fields, e.g. `paths[0].condition`, stay with the shape)."""
    paths = shape.get("paths")
    count = len(paths) if isinstance(paths, list) else 0
    inside = [f"{path}.paths[{j}].shapes[" for j in range(count)]
    return (*inside, *(f"{path}.{key}[" for key in ("otherwise", "try", "catch")))


def _children(shape: dict, path: str, problem: Problem, depth: int) -> list[tuple[str, list]]:
    """(label, rows) for each path the shape holds."""
    children: list[tuple[str, list]] = []
    paths = shape.get("paths")
    if isinstance(paths, list):
        for j, branch in enumerate(paths):
            branch = branch if isinstance(branch, dict) else {}
            label = f"path {j + 1}"
            if isinstance(branch.get("condition"), str):
                label += f" when {branch['condition']}"
            rows = _rows(branch.get("shapes"), f"{path}.paths[{j}].shapes", problem, depth + 1)
            children.append((label, rows))
    for key in ("otherwise", "try", "catch"):
        if key in shape:
            children.append((key, _rows(shape[key], f"{path}.{key}", problem, depth + 1)))
    return children


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
