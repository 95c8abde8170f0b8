"""Who is calling, and what they may see.

A company-scoped key sees only its company; everything else answers NOT_FOUND exactly as if it
did not exist, so a key never learns which other companies or objects exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.domain import errors
from control_plane.domain.ids import digest
from control_plane.domain.validation import require_id
from control_plane.store.models import ApiKey, Callback, Company, Environment, Flow


@dataclass(frozen=True)
class Principal:
    key_id: str
    company_id: str | None  # None: installation-wide

    @property
    def is_admin(self) -> bool:
        return self.company_id is None

    def require_admin(self) -> None:
        if not self.is_admin:
            raise errors.permission_denied(
                "this operation needs an installation-wide key", "ADMIN_KEY_REQUIRED"
            )

    def can_see(self, company_id: str) -> bool:
        return self.company_id is None or self.company_id == company_id


def authenticate(secret: str) -> Principal:
    if not secret:
        raise errors.unauthenticated(
            "missing 'authorization: Bearer <key>' metadata", "MISSING_API_KEY"
        )
    key = ApiKey.get_or_none(ApiKey.secret_digest == digest(secret))
    if key is None or key.revoked_at is not None:
        raise errors.unauthenticated("invalid or revoked API key", "INVALID_API_KEY")
    return Principal(key_id=key.id, company_id=key.company_id)


def company(p: Principal, slug: str) -> Company:
    row = Company.get_or_none(Company.slug == slug) if slug else None
    if row is None or not p.can_see(row.id):
        raise errors.not_found(f"company {slug!r}", "COMPANY_NOT_FOUND")
    return row


def environment(p: Principal, env_id: str, field_name: str = "id") -> Environment:
    require_id(field_name, env_id)
    row = Environment.get_or_none(Environment.id == env_id)
    if row is None or not p.can_see(row.company_id):
        raise errors.not_found(f"environment {env_id!r}", "ENVIRONMENT_NOT_FOUND")
    return row


def flow(p: Principal, flow_id: str, field_name: str = "flow_id") -> Flow:
    require_id(field_name, flow_id)
    row = Flow.get_or_none(Flow.id == flow_id)
    if row is None or not p.can_see(row.company_id):
        raise errors.not_found(f"flow {flow_id!r}", "FLOW_NOT_FOUND")
    return row


def callback(p: Principal, callback_id: str, field_name: str = "id") -> Callback:
    require_id(field_name, callback_id)
    row = Callback.select(Callback, Flow).join(Flow).where(Callback.id == callback_id).get_or_none()
    if row is None or not p.can_see(row.flow.company_id):
        raise errors.not_found(f"callback {callback_id!r}", "CALLBACK_NOT_FOUND")
    return row
