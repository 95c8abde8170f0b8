"""Runs, read side: the audit trail. The runner writes them (control_plane/runner/records.py)."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re

from control_plane.domain import errors, tenancy
from control_plane.domain.tenancy import Principal
from control_plane.domain.validation import MAX_PAGE_TOKEN_CHARS, page, require_id
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
    """Newest first: by start time, then id. A page is read in that order straight from the
    (company, started_at) or (flow_id, started_at) index, and the token is the last row's
    (started_at, id), so a page costs about its size however many runs the company has; ordered
    by id alone, every page sorted all of the company's runs (docs/runs.md, "Listing runs")."""
    after = _decode(page_token) if page_token else None
    limit, _ = page(page_size, "" if after else page_token)  # the size's error, or the token's
    company = tenancy.company(p, company_slug)
    if after is not None and after[0] is None:
        after = (_started_at(company, after[1]), after[1])
    q = Run.select().where(Run.company == company)
    if flow_id:
        require_id("flow_id", flow_id)
        # A flow's runs are all its company's: if one is another's, this company has none. Else
        # the (flow_id, started_at) index would walk the other company's runs to find out.
        owner = Run.select(Run.company).where(Run.flow_id == flow_id).limit(1).get_or_none()
        if owner is not None and owner.company_id != company.id:
            return [], ""
        q = q.where(Run.flow_id == flow_id)
    if status:
        q = q.where(Run.status == status)
    if start_from is not None:
        q = q.where(Run.started_at >= start_from)
    if start_to is not None:
        q = q.where(Run.started_at < start_to)
    if after is not None:
        at, last_id = after
        # The first condition alone is what an index range can use; the second breaks ties.
        q = q.where(Run.started_at <= at, (Run.started_at < at) | (Run.id < last_id))
    rows = list(q.order_by(Run.started_at.desc(), Run.id.desc()).limit(limit + 1))
    if len(rows) <= limit:
        return rows, ""
    rows = rows[:limit]
    return rows, _token(rows[-1])


# A token is base64url("{id}.{microseconds since the epoch}") of the page's last run.
_EPOCH = dt.datetime(1970, 1, 1)
_TOKEN_RE = re.compile(r"([0-9a-hjkmnp-tv-z]{26})(?:\.(-?[0-9]{1,18}))?")


def _token(row: Run) -> str:
    micros = (row.started_at - _EPOCH) // dt.timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{row.id}.{micros}".encode()).decode()


def _decode(page_token: str) -> tuple[dt.datetime | None, str] | None:
    """(started_at, id) from a page token; None when it is not one. A token of the earlier form
    (the id alone, before the keyset) gives (None, id): see `_started_at`."""
    if len(page_token) > MAX_PAGE_TOKEN_CHARS:
        return None
    try:
        match = _TOKEN_RE.fullmatch(base64.urlsafe_b64decode(page_token.encode()).decode())
    except (ValueError, binascii.Error, UnicodeError):
        return None
    if match is None:
        return None
    run_id, micros = match.groups()
    if micros is None:
        return None, run_id
    try:
        return _EPOCH + dt.timedelta(microseconds=int(micros)), run_id
    except OverflowError:
        return None


def _started_at(company: Company, run_id: str) -> dt.datetime:
    """The start time of an earlier-form token's run, so a listing paged across an upgrade goes
    on; gone (pruned meanwhile, or another company's), the token is refused like any other."""
    row = Run.select(Run.started_at).where(Run.id == run_id, Run.company == company).get_or_none()
    if row is None:
        raise errors.invalid([("page_token", "is not a token returned by this list")])
    return row.started_at


def get_run(p: Principal, run_id: str) -> tuple[Run, str]:
    require_id("id", run_id)
    row = Run.select(Run, Company).join(Company).where(Run.id == run_id).get_or_none()
    if row is None or not p.can_see(row.company_id):
        raise errors.not_found(f"run {run_id!r}", "RUN_NOT_FOUND")
    return row, row.company.slug
