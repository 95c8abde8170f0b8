"""Runs, read side: the audit trail. The runner writes them (control_plane/runner/records.py)."""

from __future__ import annotations

import datetime as dt

from control_plane.domain import errors, tenancy
from control_plane.domain.tenancy import Principal
from control_plane.domain.validation import page, paginate, require_id
from control_plane.store.models import Company, Run


def list_runs(
    p: Principal,
    company_slug: str,
    *,
    flow_id: str = "",
    status: str = "",
    start_from: dt.datetime | None = None,
    start_to: dt.datetime | None = None,
    page_size: int = 0,
    page_token: str = "",
) -> tuple[list[Run], str]:
    """Newest first; the page token is the last id seen (ids sort by start time)."""
    limit, before = page(page_size, page_token)
    company = tenancy.company(p, company_slug)
    q = Run.select().where(Run.company == company)
    if flow_id:
        require_id("flow_id", flow_id)
        q = q.where(Run.flow_id == flow_id)
    if status:
        q = q.where(Run.status == status)
    if start_from is not None:
        q = q.where(Run.started_at >= start_from)
    if start_to is not None:
        q = q.where(Run.started_at < start_to)
    if before:
        q = q.where(Run.id < before)
    return paginate(q.order_by(Run.id.desc()), limit)


def get_run(p: Principal, run_id: str) -> tuple[Run, str]:
    require_id("id", run_id)
    row = Run.select(Run, Company).join(Company).where(Run.id == run_id).get_or_none()
    if row is None or not p.can_see(row.company_id):
        raise errors.not_found(f"run {run_id!r}", "RUN_NOT_FOUND")
    return row, row.company.slug
