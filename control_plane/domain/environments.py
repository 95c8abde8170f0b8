"""Virtual environments of a company."""

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
from control_plane.store.models import Deployment, Environment


def create_environment(p: Principal, company_slug: str, name: str, url_prefix: str) -> Environment:
    v = Violations()
    check_name(v, "name", name)
    check_slug(v, "url_prefix", url_prefix)
    v.raise_if_any()
    try:
        with write_transaction():
            company = tenancy.company(p, company_slug, lock=quotas.LOCK)  # counts stay true
            used = Environment.select().where(Environment.company == company).count()
            quotas.require_room("environments", quotas.for_company(company.id).environments, used)
            env = Environment.create(
                id=new_id(),
                company=company,
                name=name,
                url_prefix=url_prefix,
                created_at=utcnow(),
            )
            record_change("environment", env.id)
            return env
    except peewee.IntegrityError:
        raise errors.already_exists(
            f"url_prefix {url_prefix!r} is taken in this company", "URL_PREFIX_TAKEN"
        ) from None


def get_environment(p: Principal, env_id: str) -> Environment:
    return tenancy.environment(p, env_id)


def list_environments(
    p: Principal, company_slug: str, page_size: int, page_token: str
) -> tuple[list[Environment], str]:
    limit, after = page(page_size, page_token)
    company = tenancy.company(p, company_slug)
    query = (
        Environment.select()
        .where((Environment.company == company) & (Environment.id > after))
        .order_by(Environment.id)
    )
    return paginate(query, limit)


def delete_environment(p: Principal, env_id: str) -> None:
    with write_transaction():
        # Locked before the in-use check: deploys share-lock the environment (domain/flows.py).
        env = tenancy.environment(p, env_id, lock="FOR UPDATE")
        if Deployment.select().where(Deployment.environment_id == env.id).exists():
            raise errors.failed_precondition(
                "a flow is deployed to this environment; undeploy it first", "ENVIRONMENT_IN_USE"
            )
        env.delete_instance()
        record_change("environment", env.id)
