"""Installation pages: the edges and the revisions they applied (CallbackSyncService.ListEdges),
and API keys (create, shown once; revoke)."""

from __future__ import annotations

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from boomerang.sdk import BoomerangError
from boomerang.v1 import resources_pb2 as r
from console.sessions import Session
from console.web import Problem, back, call, enum_name, failed, form, listing, render, values

#: Scopes an installation-wide key may give a new key: (form value, label).
SCOPES = (
    ("full", "Full: manages what its company (or the installation) has"),
    ("edge", "Edge: may only sync callbacks and run flows"),
    ("runner", "Runner: may only run flows"),
)


def register(app: Sanic) -> None:
    app.add_route(edges_page, "/edges", methods=("GET",))
    app.add_route(keys_page, "/keys", methods=("GET",))
    app.add_route(create_key, "/keys", methods=("POST",))
    app.add_route(revoke_key, "/keys/<key_id>/revoke", methods=("POST",))


async def edges_page(request: Request) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        edges = await call(s.client.list_edges)
    except BoomerangError as err:
        return failed(request, err)
    return render(request, "edges.html", edges=edges)


async def keys_page(
    request: Request,
    problem: Problem | None = None,
    status: int = 200,
    created=None,
) -> HTTPResponse:
    s: Session = request.ctx.session
    company = request.args.get("company", "") if s.installation_wide else s.company
    try:
        keys, more = await listing(s.client.list_api_keys, company)
        companies, _ = await listing(s.client.list_companies)
    except BoomerangError as err:
        return failed(request, err)
    return render(
        request,
        "keys.html",
        status=status,
        keys=[(k, enum_name(r.ApiKeyScope.Name(k.scope), "API_KEY_SCOPE_")) for k in keys],
        more=more,
        company=company,
        companies=companies,
        scopes=SCOPES,
        created=created,
        problem=problem,
        failed_form="create",
        values=values(request) if problem else {},
    )


async def create_key(request: Request) -> HTTPResponse:
    s: Session = request.ctx.session
    company = form(request, "company") if s.installation_wide else s.company
    scope = form(request, "scope", "full") if s.installation_wide else "full"
    if scope not in {value for value, _ in SCOPES}:
        problem = Problem.field("scope", "choose one of the scopes offered")
        return await keys_page(request, problem, problem.status)
    try:
        created = await call(s.client.create_api_key, form(request, "name").strip(), company, scope)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await keys_page(request, problem, problem.status)
    # Shown in this answer only (never stored, never in a URL): the API keeps only its hash.
    return await keys_page(request, status=201, created=created)


async def revoke_key(request: Request, key_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        key = await call(s.client.revoke_api_key, key_id)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await keys_page(request, problem, problem.status)
    return back(request, "/keys", f"Key {key.name} revoked.")
