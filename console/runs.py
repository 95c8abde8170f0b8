"""Runs: a filterable list (flow, status, start time) and a run's page with its per-shape log,
errors and timings."""

from __future__ import annotations

import datetime as dt

from sanic import Request, Sanic
from sanic.response import HTTPResponse

from boomerang.sdk import BoomerangError, NotFound
from boomerang.v1 import resources_pb2 as r
from console.sessions import Session
from console.web import Problem, call, enum_name, failed, listing, render

#: Statuses offered by the filter: (form value, label).
STATUSES = tuple(
    (enum_name(name, "RUN_STATUS_"), enum_name(name, "RUN_STATUS_").capitalize())
    for name in r.RunStatus.keys()
    if name != "RUN_STATUS_UNSPECIFIED"
)


def register(app: Sanic) -> None:
    app.add_route(runs_page, "/companies/<slug>/runs", methods=("GET",))
    app.add_route(run_page, "/runs/<run_id>", methods=("GET",))


def _when(raw: str, name: str) -> dt.datetime | None:
    """A `datetime-local` field (taken as UTC) as a datetime; ValueError names the field."""
    if not raw:
        return None
    try:
        return dt.datetime.fromisoformat(raw).replace(tzinfo=dt.UTC)
    except ValueError:
        raise ValueError(name) from None


def status_label(run: r.Run) -> str:
    return enum_name(r.RunStatus.Name(run.status), "RUN_STATUS_")


def duration_ms(run: r.Run) -> str:
    if not run.end_time.seconds:
        return ""
    ms = (run.end_time.ToDatetime() - run.start_time.ToDatetime()).total_seconds() * 1000
    return f"{ms:.1f} ms" if ms < 10 else f"{ms:.0f} ms"


async def runs_page(request: Request, slug: str) -> HTTPResponse:
    s: Session = request.ctx.session
    filters = {k: request.args.get(k, "") for k in ("flow", "status", "from", "to")}
    problem = Problem("")
    try:
        start_from = _when(filters["from"], "from")
        start_to = _when(filters["to"], "to")
    except ValueError as e:
        problem = Problem.field(str(e), "a date and time, e.g. 2026-12-01T09:30")
        start_from = start_to = None
    status = filters["status"] if filters["status"] in {v for v, _ in STATUSES} else ""
    try:
        company = await call(s.client.get_company, slug)
        flows, _ = await listing(s.client.list_flows, slug)
        runs, more = (
            ([], False)
            if problem.fields
            else await listing(
                s.client.list_runs,
                slug,
                filters["flow"],
                status or None,
                start_time_from=start_from,
                start_time_to=start_to,
                page_size=100,
            )
        )
    except BoomerangError as err:
        if err.field_violations:  # a filter the API refused: show it at the filter
            problem = Problem.of(err)
            runs, more = [], False
        else:
            return failed(request, err)
    names = {f.id: f.name for f in flows}
    return render(
        request,
        "runs.html",
        status=problem.status if problem.message else 200,
        company=company,
        flows=flows,
        statuses=STATUSES,
        filters=filters,
        runs=[(run, names.get(run.flow_id, run.flow_id), status_label(run)) for run in runs],
        more=more,
        duration_ms=duration_ms,
        problem=problem,
        failed_form="filters",
    )


async def run_page(request: Request, run_id: str) -> HTTPResponse:
    s: Session = request.ctx.session
    try:
        run = await call(s.client.get_run, run_id)
    except BoomerangError as err:
        return failed(request, err)
    try:
        flow = await call(s.client.get_flow, run.flow_id)
    except NotFound:
        flow = None  # deleted since; its runs stay until their retention ends
    environment = ""
    if run.environment_id:
        try:
            found = await call(s.client.get_environment, run.environment_id)
            environment = f"{found.name} (/{found.url_prefix})"
        except NotFound:
            environment = run.environment_id  # deleted since
    return render(
        request,
        "run.html",
        run=run,
        flow=flow,
        status_label=status_label(run),
        reason=enum_name(r.RunReason.Name(run.reason), "RUN_REASON_") if run.reason else "",
        duration=duration_ms(run),
        environment=environment,
    )
