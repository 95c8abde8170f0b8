"""Companies (tenants)."""

from __future__ import annotations

import peewee

from control_plane.domain import errors, quotas, tenancy
from control_plane.domain.errors import Violations
from control_plane.domain.ids import new_id
from control_plane.domain.tenancy import Principal
from control_plane.domain.validation import check_name, check_slug, page, paginate
from control_plane.store.changes import record_change
from control_plane.store.clock import utcnow
from control_plane.store.db import write_transaction
from control_plane.store.models import Callback, Company, Environment, Flow


def create_company(p: Principal, name: str, slug: str) -> Company:
    p.require_admin()
    v = Violations()
    check_name(v, "name", name)
    check_slug(v, "slug", slug)
    v.raise_if_any()
    try:
        with write_transaction():
            return Company.create(id=new_id(), slug=slug, name=name, created_at=utcnow())
    except peewee.IntegrityError:
        raise errors.already_exists(f"slug {slug!r} is taken", "SLUG_TAKEN") from None


def get_company(p: Principal, slug: str) -> Company:
    return tenancy.company(p, slug)


def list_companies(p: Principal, page_size: int, page_token: str) -> tuple[list[Company], str]:
    limit, after = page(page_size, page_token)
    q = Company.select().where(Company.id > after).order_by(Company.id)
    if not p.is_admin:
        q = q.where(Company.id == p.company_id)
    return paginate(q, limit)


def delete_company(p: Principal, slug: str) -> None:
    p.require_admin()
    with write_transaction():
        # Locked first, like every create that counts against its quotas (domain/quotas.py).
        company = tenancy.company(p, slug, lock="FOR UPDATE")
        quotas.forget_company(company.id)
        # Edges learn of every callback and environment that goes, so their URLs stop at once.
        for cb in Callback.select(Callback.id).join(Flow).where(Flow.company == company):
            record_change("callback", cb.id)
        for env in Environment.select(Environment.id).where(Environment.company == company):
            record_change("environment", env.id)
        for flow in Flow.select(Flow.id).where(Flow.company == company):
            record_change("flow", flow.id)
        company.delete_instance(recursive=True)
