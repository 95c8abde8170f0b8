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
    by id alone, every page sorted all of the company's runs (docs/runs.md, "Listing runs").

    A status filter is not in those indexes, so a page looks at no more than SCAN_ROWS of the
    runs the other filters leave: a page may then hold fewer runs than asked, even none, and
    its token goes on from where the scan stopped (a short page that is not the last, as
    AIP-158 allows). Unbounded, a status few runs have walked all of a company's runs."""
    after = _decode(page_token) if page_token else None
    limit, _ = page(page_size, "" if after else page_token)  # the size's error, or the token's
    company = tenancy.company(p, company_slug)
    if after is not None and after[0] is None:
        after = (_started_at(company, after[1]), after[1])
    # What the index range holds: one flow's runs (all its company's) or the company's.
    scope = [Run.company == company]
    if flow_id:
        require_id("flow_id", flow_id)
        # A flow's runs are all its company's: if one is another's, this company has none. Else
        # the (flow_id, started_at) index would walk the other company's runs to find out.
        owner = Run.select(Run.company).where(Run.flow_id == flow_id).limit(1).get_or_none()
        if owner is not None and owner.company_id != company.id:
            return [], ""
        scope = [Run.flow_id == flow_id]
    if start_from is not None:
        scope.append(Run.started_at >= start_from)
    if start_to is not None:
        scope.append(Run.started_at < start_to)
    at, last_id = after if after is not None else (None, "")
    if at is not None:  # (a short page's token has no id: its scan took every run of `at`)
        scope.append(Run.started_at <= at if last_id else Run.started_at < at)
    q = Run.select().where(Run.company == company, *scope)
    if last_id:  # ties on the last page's last start time, ordered by id
        q = q.where((Run.started_at < at) | (Run.id < last_id))
    scan_end = None
    if status:
        scan_end = _scan_end(scope)
        q = q.where(Run.status == status)
        if scan_end is not None:
            q = q.where(Run.started_at >= scan_end)
    rows = list(q.order_by(Run.started_at.desc(), Run.id.desc()).limit(limit + 1))
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, _token(rows[-1].id, rows[-1].started_at)
    return rows, "" if scan_end is None else _token("", scan_end)


#: Most runs one page with a status filter looks at (5 pages of the largest size): a few ms.
SCAN_ROWS = 5000


def _scan_end(scope: list) -> dt.datetime | None:
    """The start time of the SCAN_ROWS-th run in `scope`, newest first; None when it holds
    fewer. The conditions and the column read are all in the index, so the walk reads nothing
    else (SQLite: a covering index). A page then reads the runs started at that time or later;
    the few that tie with it are all taken, so the next page starts strictly before it."""
    walk = Run.select(Run.started_at).where(*scope).order_by(Run.started_at.desc())
    rows = list(walk.offset(SCAN_ROWS - 1).limit(1))
    return rows[0].started_at if rows else None


# A token is base64url("{id}.{microseconds since the epoch}") of the page's last run, or, after
# a short page, ".{microseconds}" of where its scan stopped (no id: every run started then was
# looked at).
_EPOCH = dt.datetime(1970, 1, 1)
_TOKEN_RE = re.compile(r"([0-9a-hjkmnp-tv-z]{26})?(?:\.(-?[0-9]{1,18}))?")


def _token(run_id: str, started_at: dt.datetime) -> str:
    micros = (started_at - _EPOCH) // dt.timedelta(microseconds=1)
    return base64.urlsafe_b64encode(f"{run_id}.{micros}".encode()).decode()


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
        return (None, run_id) if run_id else None
    try:
        return _EPOCH + dt.timedelta(microseconds=int(micros)), run_id or ""
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
