"""Who is calling, and what they may see.

A company-scoped key sees only its company; everything else answers NOT_FOUND exactly as if it
did not exist, so a key never learns which other companies or objects exist.
"""

from __future__ import annotations

from dataclasses import dataclass

from control_plane.domain import errors
from control_plane.domain.ids import digest
from control_plane.domain.validation import is_slug, require_id
from control_plane.store.db import lock_rows
from control_plane.store.models import ApiKey, Callback, Company, Environment, Flow

#: Key scopes (ApiKeyScope): what a key may call. Narrow keys are installation-wide machine
#: keys (docs/security.md), so a leaked edge key cannot manage tenants.
FULL, EDGE, RUNNER = "full", "edge", "runner"
SCOPES = (FULL, EDGE, RUNNER)
#: Who may call what: every RPC takes FULL keys; only these also take narrower ones.
ONLY_FULL = frozenset({FULL})
SYNC_SCOPES = frozenset({FULL, EDGE})  # CallbackSyncService.SyncCallbacks
RUN_SCOPES = frozenset({FULL, EDGE, RUNNER})  # RunnerService.RunFlow


@dataclass(frozen=True)
class Principal:
    key_id: str
    company_id: str | None  # None: installation-wide
    scope: str = FULL

    def require_scope(self, allowed: frozenset[str]) -> None:
        if self.scope not in allowed:
            raise errors.permission_denied(
                f"this API key's scope ({self.scope}) does not allow this call", "KEY_SCOPE"
            )

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
    return Principal(key_id=key.id, company_id=key.company_id, scope=key.scope)


# Each lookup below takes an optional row lock (`lock`: "FOR UPDATE" / "FOR SHARE", held until
# commit on PostgreSQL) for writes that depend on the row staying as read; see db.lock_rows.


def company(p: Principal, slug: str, lock: str = "") -> Company:
    # A string that is not a slug names no company: answered without a query, so NUL or a
    # megabyte never reaches the database.
    query = lock_rows(Company.select().where(Company.slug == slug), lock)
    row = query.get_or_none() if is_slug(slug) else None
    if row is None or not p.can_see(row.id):
        raise errors.not_found(f"company {errors.echo(slug)}", "COMPANY_NOT_FOUND")
    return row


def environment(p: Principal, env_id: str, field_name: str = "id", lock: str = "") -> Environment:
    require_id(field_name, env_id)
    row = lock_rows(Environment.select().where(Environment.id == env_id), lock).get_or_none()
    if row is None or not p.can_see(row.company_id):
        raise errors.not_found(f"environment {env_id!r}", "ENVIRONMENT_NOT_FOUND")
    return row


def flow(p: Principal, flow_id: str, field_name: str = "flow_id", lock: str = "") -> Flow:
    require_id(field_name, flow_id)
    row = lock_rows(Flow.select().where(Flow.id == flow_id), lock).get_or_none()
    if row is None or not p.can_see(row.company_id):
        raise errors.not_found(f"flow {flow_id!r}", "FLOW_NOT_FOUND")
    return row


def callback(p: Principal, callback_id: str, field_name: str = "id") -> Callback:
    require_id(field_name, callback_id)
    row = Callback.select(Callback, Flow).join(Flow).where(Callback.id == callback_id).get_or_none()
    if row is None or not p.can_see(row.flow.company_id):
        raise errors.not_found(f"callback {callback_id!r}", "CALLBACK_NOT_FOUND")
    return row
