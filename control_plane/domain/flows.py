"""Flows, their versions and deployments: the version lifecycle of docs/design.md §2.

A version's state is derived, never stored: the draft is the version numbered `flow.draft_number`;
a version is deployed while a deployment points at it, and inactive once none does. Only the draft
is ever written, which is what makes deployed versions safe to cache forever.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from control_plane.domain import errors, quotas, tenancy, versions
from control_plane.domain.errors import Violations
from control_plane.domain.ids import new_id
from control_plane.domain.tenancy import Principal
from control_plane.domain.validation import check_name, page, paginate
from control_plane.engine import DEFAULT_DEFINITION, DefinitionError, validate_definition
from control_plane.store.changes import record_change
from control_plane.store.clock import utcnow
from control_plane.store.db import write_transaction
from control_plane.store.models import Callback, Deployment, Flow, FlowVersion

DRAFT, DEPLOYED, INACTIVE = "draft", "deployed", "inactive"


@dataclass(frozen=True)
class VersionView:
    version: FlowVersion
    state: str


def _checked_definition(doc: object, limits: quotas.Quotas) -> tuple[str, bool]:
    """Validates a definition within the company's quotas; returns it as stored JSON and whether
    it has a callback shape."""
    quotas.check_definition_depth(doc, limits)
    text = json.dumps(doc, separators=(",", ":"), sort_keys=True)
    quotas.check_definition_bytes(text, limits)
    try:
        parsed = validate_definition(doc)
    except DefinitionError as e:
        raise errors.invalid(list(e.violations), reason="INVALID_DEFINITION") from None
    return text, parsed.has_callback


def _state(flow: Flow, version: FlowVersion, deployed_ids: set[str]) -> str:
    if version.number == flow.draft_number:
        return DRAFT
    return DEPLOYED if version.id in deployed_ids else INACTIVE


def _deployed_ids(flow: Flow) -> set[str]:
    return {
        d.version_id for d in Deployment.select(Deployment.version).where(Deployment.flow == flow)
    }


def _view(flow: Flow, version: FlowVersion) -> VersionView:
    return VersionView(version, _state(flow, version, _deployed_ids(flow)))


def _version(flow: Flow, number: int) -> FlowVersion:
    if number < 0:
        raise errors.invalid([("number", "must not be negative")])
    row = FlowVersion.get_or_none(
        (FlowVersion.flow == flow) & (FlowVersion.number == (number or flow.draft_number))
    )
    if row is None:
        raise errors.not_found(f"version {number} of flow {flow.id!r}", "VERSION_NOT_FOUND")
    return row


def _environment_id(p: Principal, flow: Flow, env_id: str) -> str:
    """Checks that a (possibly empty = default) environment id is one of the flow's company."""
    if env_id:
        # Share-locked: a concurrent DeleteEnvironment waits, then sees this deployment.
        env = tenancy.environment(p, env_id, "environment_id", lock="FOR SHARE")
        if env.company_id != flow.company_id:
            raise errors.not_found(f"environment {env_id!r}", "ENVIRONMENT_NOT_FOUND")
    return env_id


def create_flow(
    p: Principal, company_slug: str, name: str, definition: dict | None
) -> tuple[Flow, VersionView]:
    v = Violations()
    check_name(v, "name", name)
    v.raise_if_any()
    limits = quotas.for_company(tenancy.company(p, company_slug).id)
    # Absent (None) means the default; present but empty (`{}`) is validated like any other
    # definition and refused, rather than silently stored as the default.
    text, has_callback = _checked_definition(
        DEFAULT_DEFINITION if definition is None else definition, limits
    )
    with write_transaction():
        company = tenancy.company(p, company_slug, lock=quotas.LOCK)  # counts stay true
        used = Flow.select().where(Flow.company == company).count()
        quotas.require_room("flows", limits.flows, used)
        now = utcnow()
        flow = Flow.create(id=new_id(), company=company, name=name, draft_number=1, created_at=now)
        draft = FlowVersion.create(
            id=new_id(),
            flow=flow,
            number=1,
            definition=text,
            has_callback=has_callback,
            created_at=now,
            updated_at=now,
        )
    return flow, VersionView(draft, DRAFT)


def get_flow(p: Principal, flow_id: str) -> Flow:
    return tenancy.flow(p, flow_id, "id")


def list_flows(
    p: Principal, company_slug: str, page_size: int, page_token: str
) -> tuple[list[Flow], str]:
    limit, after = page(page_size, page_token)
    company = tenancy.company(p, company_slug)
    query = Flow.select().where((Flow.company == company) & (Flow.id > after)).order_by(Flow.id)
    return paginate(query, limit)


def delete_flow(p: Principal, flow_id: str) -> None:
    with write_transaction():
        flow = tenancy.flow(p, flow_id, "id")
        for cb in Callback.select(Callback.id).where(Callback.flow == flow):
            record_change("callback", cb.id)
        record_change("flow", flow.id)  # edges drop its FlowRecord too
        flow.delete_instance(recursive=True)


def get_draft(p: Principal, flow_id: str) -> VersionView:
    flow = tenancy.flow(p, flow_id)
    return VersionView(_version(flow, 0), DRAFT)


def update_draft(p: Principal, flow_id: str, definition: dict | None, number: int) -> VersionView:
    if definition is None:
        raise errors.invalid([("definition", "is required")], reason="INVALID_DEFINITION")
    # Checked before the transaction: a large definition takes a while to validate.
    limits = quotas.for_company(tenancy.flow(p, flow_id).company_id)
    text, has_callback = _checked_definition(definition, limits)
    with write_transaction():
        # Locked: a concurrent deploy must not freeze the draft between this read and the save.
        flow = tenancy.flow(p, flow_id, lock="FOR UPDATE")
        if number and number != flow.draft_number:
            _version(flow, number)  # NOT_FOUND if it never existed
            raise errors.failed_precondition(
                f"version {number} is no longer the draft (the draft is {flow.draft_number}); "
                "deployed and inactive versions are immutable",
                "VERSION_IMMUTABLE",
            )
        draft = _version(flow, 0)
        draft.definition = text
        draft.has_callback = has_callback
        draft.updated_at = utcnow()
        draft.save()
    return VersionView(draft, DRAFT)


def list_versions(
    p: Principal, flow_id: str, page_size: int = 0, page_token: str = "", full: bool = False
) -> tuple[list[VersionView], str]:
    """A page of the flow's versions, newest first; `full` reads the definitions too (and then
    a page holds at most versions.MAX_FULL_PAGE: about 10 MiB at worst)."""
    limit, before = versions.page(page_size, page_token, full)
    flow = tenancy.flow(p, flow_id)
    deployed = _deployed_ids(flow)
    columns = [
        f for f in FlowVersion._meta.sorted_fields if full or f is not FlowVersion.definition
    ]
    query = FlowVersion.select(*columns).where(FlowVersion.flow == flow)
    if before:
        query = query.where(FlowVersion.number < before)
    rows = list(query.order_by(FlowVersion.number.desc()).limit(limit + 1))
    token = ""
    if len(rows) > limit:
        rows = rows[:limit]
        token = versions.token(rows[-1].number)
    return [VersionView(r, _state(flow, r, deployed)) for r in rows], token


def get_version(p: Principal, flow_id: str, number: int) -> VersionView:
    flow = tenancy.flow(p, flow_id)
    return _view(flow, _version(flow, number))


def deploy_version(
    p: Principal, flow_id: str, number: int, env_id: str, disabled: bool
) -> tuple[Deployment, VersionView, VersionView]:
    """Deploys a version (0: the draft) to an environment; returns (deployment, version, draft)."""
    with write_transaction():
        flow = tenancy.flow(p, flow_id, lock="FOR UPDATE")  # one deploy or draft edit at a time
        env_id = _environment_id(p, flow, env_id)
        version = _version(flow, number)
        now = utcnow()
        current = Deployment.get_or_none(
            (Deployment.flow == flow) & (Deployment.environment_id == env_id)
        )
        if current is not None and current.version_id == version.id:
            raise errors.failed_precondition(
                f"version {version.number} is already deployed there", "ALREADY_DEPLOYED"
            )
        if current is None:
            current = Deployment(flow=flow, environment_id=env_id)
        current.version = version
        current.enabled = not disabled
        current.deployed_at = now
        current.save()
        if version.number == flow.draft_number:
            # The draft freezes; a copy of it becomes the next draft.
            flow.draft_number += 1
            flow.save()
            draft = FlowVersion.create(
                id=new_id(),
                flow=flow,
                number=flow.draft_number,
                definition=version.definition,
                has_callback=version.has_callback,
                created_at=now,
                updated_at=now,
            )
            versions.prune(flow)  # the only deploy that adds a version
        else:
            draft = _version(flow, 0)
        record_change("flow", flow.id)
    return current, VersionView(version, DEPLOYED), VersionView(draft, DRAFT)


def _deployment(p: Principal, flow_id: str, env_id: str) -> Deployment:
    flow = tenancy.flow(p, flow_id)
    env_id = _environment_id(p, flow, env_id)
    row = Deployment.get_or_none((Deployment.flow == flow) & (Deployment.environment_id == env_id))
    if row is None:
        raise errors.not_found("deployment", "DEPLOYMENT_NOT_FOUND")
    return row


def set_deployment_enabled(p: Principal, flow_id: str, env_id: str, enabled: bool) -> Deployment:
    with write_transaction():
        row = _deployment(p, flow_id, env_id)
        if row.enabled != enabled:
            row.enabled = enabled
            row.save()
            record_change("flow", row.flow_id)
    return row


def delete_deployment(p: Principal, flow_id: str, env_id: str) -> None:
    with write_transaction():
        row = _deployment(p, flow_id, env_id)
        row.delete_instance()
        record_change("flow", row.flow_id)


def list_deployments(p: Principal, flow_id: str) -> list[Deployment]:
    flow = tenancy.flow(p, flow_id)
    return list(
        Deployment.select(Deployment, FlowVersion)
        .join(FlowVersion)
        .where(Deployment.flow == flow)
        .order_by(Deployment.environment_id)
    )
