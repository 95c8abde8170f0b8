"""API keys: stored as SHA-256 digests; the secret exists only in CreateApiKey's answer."""

from __future__ import annotations

import secrets

import peewee

from control_plane.domain import errors, quotas, tenancy
from control_plane.domain.errors import Violations
from control_plane.domain.ids import digest, new_id
from control_plane.domain.tenancy import Principal
from control_plane.domain.validation import check_name, page, paginate, require_id
from control_plane.store.clock import utcnow
from control_plane.store.db import write_transaction
from control_plane.store.models import ApiKey, Company

KEY_PREFIX = "bmk_"


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def create_api_key(
    p: Principal, company_slug: str, name: str, scope: str = tenancy.FULL
) -> tuple[ApiKey, str]:
    """A new key. EDGE and RUNNER keys are installation-wide machine keys that only an
    installation-wide FULL key may create (the caller's own scope was checked on the way in)."""
    v = Violations()
    check_name(v, "name", name)
    if scope not in tenancy.SCOPES:
        v.add("scope", "unknown scope; use FULL, EDGE or RUNNER")
    elif scope != tenancy.FULL and company_slug:
        v.add("scope", f"{scope.upper()} keys are installation-wide: leave company empty")
    v.raise_if_any()
    with write_transaction():
        if company_slug:
            company = tenancy.company(p, company_slug)
            quotas.lock_company(company.id)  # counts stay true until commit (domain/quotas.py)
            _make_room(company.id, quotas.for_company(company.id).api_keys)
        else:
            p.require_admin()
            company = None
        secret = new_secret()
        key = ApiKey.create(
            id=new_id(),
            company=company,
            name=name,
            secret_digest=digest(secret),
            created_at=utcnow(),
            scope=scope,
        )
    return key, secret


def _make_room(company_id: str, limit: int) -> None:
    """Room for one more of the company's keys under its `api_keys` quota, which counts revoked
    keys too (else creating and revoking keys would grow the table without end). Past it, the
    company's longest-revoked keys are deleted to make room: only ListApiKeys still showed them,
    and a key that is gone is refused like a revoked one. When revoked keys cannot make room
    (every key in use, or the quota lowered below the keys in use), nothing is deleted and the
    create is refused."""
    used = ApiKey.select().where(ApiKey.company == company_id).count()
    if used >= limit:
        oldest = (
            ApiKey.select(ApiKey.id)
            .where(ApiKey.company == company_id, ApiKey.revoked_at.is_null(False))
            .order_by(ApiKey.revoked_at, ApiKey.id)
            .limit(used - limit + 1)
        )
        ids = [key.id for key in oldest]
        if used - len(ids) < limit:
            used -= ApiKey.delete().where(ApiKey.id.in_(ids)).execute()
    quotas.require_room("api_keys", limit, used)


def create_admin_key(name: str, secret: str = "") -> str:
    """Registers an installation-wide key (a new secret unless one is given); returns it."""
    secret = secret or new_secret()
    with write_transaction():
        ApiKey.create(
            id=new_id(),
            company=None,
            name=name,
            secret_digest=digest(secret),
            created_at=utcnow(),
        )
    return secret


def ensure_admin_key(secret: str) -> tuple[bool, str]:
    """Makes sure an installation-wide key exists at start; returns (created, secret to show).

    With `secret` (BOOMERANG_ADMIN_KEY) that exact key is registered if new; a revoked one stays
    revoked (revocation must survive restarts). Without it, a key is generated only when the
    installation has no usable installation-wide key, and its secret is returned so the caller
    can print it, once.
    """
    if secret:
        if ApiKey.get_or_none(ApiKey.secret_digest == digest(secret)) is not None:
            return False, ""
        create_admin_key("bootstrap admin (BOOMERANG_ADMIN_KEY)", secret)
        return True, ""
    usable = ApiKey.select().where(
        ApiKey.company.is_null() & ApiKey.revoked_at.is_null() & (ApiKey.scope == tenancy.FULL)
    )
    if usable.exists():
        return False, ""
    return True, create_admin_key("bootstrap admin (generated)")


def list_api_keys(
    p: Principal, company_slug: str, page_size: int, page_token: str
) -> tuple[list[ApiKey], str]:
    limit, after = page(page_size, page_token)
    q = ApiKey.select(ApiKey, Company).join(Company, peewee.JOIN.LEFT_OUTER)
    if company_slug:
        q = q.where(ApiKey.company == tenancy.company(p, company_slug))
    elif not p.is_admin:
        q = q.where(ApiKey.company == p.company_id)
    return paginate(q.where(ApiKey.id > after).order_by(ApiKey.id), limit)


def revoked_among(key_ids: list[str]) -> set[str]:
    """Which of `key_ids` no longer authenticate: revoked, or deleted with their company."""
    live: set[str] = set()
    for start in range(0, len(key_ids), 500):  # bounded IN lists
        chunk = key_ids[start : start + 500]
        live.update(
            k.id
            for k in ApiKey.select(ApiKey.id).where(
                ApiKey.id.in_(chunk) & ApiKey.revoked_at.is_null()
            )
        )
    return set(key_ids) - live


def revoke_api_key(p: Principal, key_id: str) -> ApiKey:
    require_id("id", key_id)
    with write_transaction():
        key = ApiKey.get_or_none(ApiKey.id == key_id)
        if key is None or not (p.is_admin or key.company_id == p.company_id):
            raise errors.not_found(f"API key {key_id!r}", "API_KEY_NOT_FOUND")
        if key.revoked_at is not None:
            raise errors.failed_precondition("the key is already revoked", "API_KEY_REVOKED")
        key.revoked_at = utcnow()
        key.save()
    return key
