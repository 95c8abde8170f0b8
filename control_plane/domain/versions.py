"""Versions of a flow as a bounded document: ListVersions' pages, and the versions_kept quota.

docs/quotas.md ("versions_kept", "Bounded documents") describes both.
"""

from __future__ import annotations

import base64
import re

from control_plane.domain import quotas
from control_plane.domain.errors import Violations
from control_plane.store.models import Deployment, Flow, FlowVersion, Run, RunTask

#: ListVersions: the default and largest page, and the largest with definitions (VIEW_FULL).
DEFAULT_PAGE, MAX_PAGE, MAX_FULL_PAGE = 20, 100, 10
_TOKEN_RE = re.compile(r"v[1-9][0-9]{0,9}")


def page(page_size: int, page_token: str, full: bool) -> tuple[int, int]:
    """Returns (limit, number below which the page starts; 0 for the first page). The token is
    the last version number seen: numbers, unlike ids, are in the list's order."""
    v = Violations()
    if not 0 <= page_size <= MAX_PAGE:
        v.add("page_size", f"must be between 0 and {MAX_PAGE}")
    before = 0
    if page_token:
        try:
            text = base64.urlsafe_b64decode(page_token.encode()).decode()
        except ValueError:
            text = ""
        if _TOKEN_RE.fullmatch(text):
            before = int(text[1:])
        else:
            v.add("page_token", "is not a token returned by this list")
    v.raise_if_any()
    limit = page_size or DEFAULT_PAGE
    return (min(limit, MAX_FULL_PAGE) if full else limit), before


def token(number: int) -> str:
    return base64.urlsafe_b64encode(f"v{number}".encode()).decode()


def prune(flow: Flow) -> None:
    """Keeps the flow within its versions_kept quota after a deploy (docs/quotas.md).

    Removes the oldest versions that are not the draft, are deployed nowhere and that no run
    which has not ended needs (a run resumed by another runner loads its version again);
    refuses the deploy, which then changes nothing, when removing those is not enough.
    """
    limit = quotas.for_company(flow.company_id).versions_kept
    kept = FlowVersion.select().where(FlowVersion.flow == flow).count()
    if kept <= limit:
        return
    needed = {
        d.version_id for d in Deployment.select(Deployment.version).where(Deployment.flow == flow)
    }
    needed |= {
        row.version_id
        for row in RunTask.select(Run.version_id).join(Run).where(Run.flow_id == flow.id).objects()
    }
    removable = [
        row.id
        for row in FlowVersion.select(FlowVersion.id)
        .where(
            (FlowVersion.flow == flow)
            & (FlowVersion.number != flow.draft_number)
            & FlowVersion.id.not_in(needed)
        )
        .order_by(FlowVersion.number)
        .limit(kept - limit)
    ]
    if len(removable) < kept - limit:
        raise quotas.exceeded("versions_kept", limit, kept)
    FlowVersion.delete().where(FlowVersion.id.in_(removable)).execute()
