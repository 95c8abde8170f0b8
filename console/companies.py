"""Companies and their virtual environments (name, URL prefix), and each company's flows."""

from __future__ import annotations

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from boomerang.sdk import BoomerangError
from console.sessions import Session
from console.web import Problem, back, call, failed, form, listing, render, values


def register(app: Sanic) -> None:
    app.add_route(companies_page, "/companies", methods=("GET",))
    app.add_route(create_company, "/companies", methods=("POST",))
    app.add_route(company_page, "/companies/<slug>", methods=("GET",))
    app.add_route(delete_company, "/companies/<slug>/delete", methods=("POST",))
    app.add_route(create_environment, "/companies/<slug>/environments", methods=("POST",))
    app.add_route(
        delete_environment, "/companies/<slug>/environments/<env_id>/delete", methods=("POST",)
    )
    app.add_route(create_flow, "/companies/<slug>/flows", methods=("POST",))


async def companies_page(
    request: Request, problem: Problem | None = None, failed_form: str = "", status: int = 200
) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        companies, more = await listing(s.client.list_companies)
    except BoomerangError as err:
        return failed(request, err)
    return render(
        request,
        "companies.html",
        status=status,
        companies=companies,
        more=more,
        problem=problem,
        failed_form=failed_form,
        values=values(request) if problem else {},
    )


async def create_company(request: Request) -> HTTPResponse:
    s: Session = request.ctx.session
    name, slug = form(request, "name").strip(), form(request, "slug").strip()
    try:
        await call(s.client.create_company, name=name, slug=slug)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await companies_page(request, problem, "company", problem.status)
    return back(request, f"/companies/{slug}", f"Company {name} created.")


async def delete_company(request: Request, slug: str) -> HTTPResponse:
    s: Session = request.ctx.session
    if form(request, "confirm").strip() != slug:
        problem = Problem.field("confirm", f"type {slug} to confirm")
        return await company_page(request, slug, problem, "delete", problem.status)
    try:
        await call(s.client.delete_company, slug)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await company_page(request, slug, problem, "delete", problem.status)
    return back(request, "/companies", f"Company {slug} deleted, with everything it owned.")


async def company_page(
    request: Request,
    slug: str,
    problem: Problem | None = None,
    failed_form: str = "",
    status: int = 200,
) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        company = await call(s.client.get_company, slug)
        environments, more_envs = await listing(s.client.list_environments, slug)
        flows, more_flows = await listing(s.client.list_flows, slug)
    except BoomerangError as err:
        return failed(request, err)
    return render(
        request,
        "company.html",
        status=status,
        company=company,
        environments=environments,
        more_envs=more_envs,
        flows=flows,
        more_flows=more_flows,
        problem=problem,
        failed_form=failed_form,
        values=values(request) if problem else {},
    )


async def create_environment(request: Request, slug: str) -> HTTPResponse:
    s: Session = request.ctx.session
    name, prefix = form(request, "name").strip(), form(request, "url_prefix").strip()
    try:
        await call(s.client.create_environment, slug, name, prefix)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await company_page(request, slug, problem, "environment", problem.status)
    return back(request, f"/companies/{slug}", f"Virtual environment {name} created.")


async def delete_environment(request: Request, slug: str, env_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        await call(s.client.delete_environment, env_id)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await company_page(request, slug, problem, f"env-{env_id}", problem.status)
    return back(request, f"/companies/{slug}", "Virtual environment deleted.")


async def create_flow(request: Request, slug: str) -> HTTPResponse:
    s: Session = request.ctx.session
    name = form(request, "name").strip()
    try:
        created = await call(s.client.create_flow, slug, name)
    except BoomerangError as err:
        problem = Problem.of(err)
        return await company_page(request, slug, problem, "flow", problem.status)
    return back(request, f"/flows/{created.flow.id}", f"Flow {name} created.")
