"""Callbacks: the secret URLs that run a flow and answer synchronously (docs/design.md §1)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from control_plane import secrets
from control_plane.domain import errors, quotas, tenancy
from control_plane.domain.errors import Violations, echo
from control_plane.domain.ids import new_id, new_signature
from control_plane.domain.tenancy import Principal
from control_plane.domain.validation import check_name, page, paginate
from control_plane.store.changes import record_change
from control_plane.store.clock import utcnow
from control_plane.store.db import write_transaction
from control_plane.store.models import Callback, Company, Flow, signature_aad

# Content types by their API names; "custom" takes a MIME type of the caller's.
CONTENT_TYPES = {"json": "application/json", "xml": "application/xml", "text": "text/plain"}
# RFC 6838 type/subtype with optional parameters, e.g. "application/vnd.acme+json; charset=utf-8".
_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
# Matched whole (fullmatch): a trailing newline would otherwise pass and reach the header.
MIME_RE = re.compile(rf"{_TOKEN}/{_TOKEN}([ \t]*;[ \t]*{_TOKEN}=[A-Za-z0-9!#$&^_.+-]+)*")
DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 300_000
MAX_RATE_LIMIT_PER_MINUTE = 1_000_000
SETTABLE = ("name", "content_type", "timeout_ms", "rate_limit_per_minute")


@dataclass(frozen=True)
class Settings:
    """Settings as requested: `content_type` is "", "json", "xml", "text" or "custom"."""

    name: str = ""
    content_type: str = ""
    custom_content_type: str = ""
    timeout_ms: int = 0
    rate_limit_per_minute: int = 0


def _content_type(v: Violations, kind: str, custom: str) -> str:
    if kind == "custom":
        if len(custom) > 255 or not MIME_RE.fullmatch(custom):
            v.add("custom_content_type", "must be a MIME type such as 'application/vnd.x+json'")
        return custom
    if custom:
        v.add("custom_content_type", "is only allowed with content_type CUSTOM")
    return CONTENT_TYPES[kind or "json"]


def _timeout(v: Violations, timeout_ms: int) -> int:
    if timeout_ms < 0 or timeout_ms > MAX_TIMEOUT_MS:
        v.add("timeout_ms", f"must be between 1 and {MAX_TIMEOUT_MS} (0 for the default)")
    return timeout_ms or DEFAULT_TIMEOUT_MS


def _rate_limit(v: Violations, per_minute: int) -> int:
    if per_minute < 0 or per_minute > MAX_RATE_LIMIT_PER_MINUTE:
        v.add(
            "rate_limit_per_minute",
            f"must be between 0 (unlimited) and {MAX_RATE_LIMIT_PER_MINUTE}",
        )
    return per_minute


def url(public_base: str, company_slug: str, cb: Callback, prefix: str = "") -> str:
    tail = f"/{prefix}" if prefix else ""
    return f"{public_base}/api/v1/{company_slug}/{cb.id}{tail}?patchworks_signature={cb.signature}"


def company_slug(cb: Callback) -> str:
    return Company.get_by_id(cb.flow.company_id).slug


def create_callback(p: Principal, flow_id: str, s: Settings) -> Callback:
    v = Violations()
    check_name(v, "name", s.name, required=False)
    content_type = _content_type(v, s.content_type, s.custom_content_type)
    timeout_ms = _timeout(v, s.timeout_ms)
    rate_limit = _rate_limit(v, s.rate_limit_per_minute)
    v.raise_if_any()
    with write_transaction():
        # The company first, then the flow: every writer that locks both takes them in that order.
        quotas.lock_company(tenancy.flow(p, flow_id).company_id)
        flow = tenancy.flow(p, flow_id, lock="FOR SHARE")  # a concurrent DeleteFlow waits
        used = Callback.select().join(Flow).where(Flow.company == flow.company_id).count()
        quotas.require_room("callbacks", quotas.for_company(flow.company_id).callbacks, used)
        now = utcnow()
        cb = Callback(
            id=new_id(),
            flow=flow,
            name=s.name,
            content_type=content_type,
            timeout_ms=timeout_ms,
            rate_limit_per_minute=rate_limit,
            created_at=now,
            updated_at=now,
        )
        cb.set_signature(new_signature())  # sealed, bound to the id (docs/security.md)
        cb.save(force_insert=True)
        record_change("callback", cb.id)
    return cb


def get_callback(p: Principal, callback_id: str) -> Callback:
    return tenancy.callback(p, callback_id)


def list_callbacks(
    p: Principal, flow_id: str, page_size: int, page_token: str
) -> tuple[list[Callback], str]:
    limit, after = page(page_size, page_token)
    flow = tenancy.flow(p, flow_id)
    query = (
        Callback.select(Callback, Flow)
        .join(Flow)
        .where((Callback.flow == flow) & (Callback.id > after))
        .order_by(Callback.id)
    )
    return paginate(query, limit)


def delete_callback(p: Principal, callback_id: str) -> None:
    with write_transaction():
        cb = tenancy.callback(p, callback_id)
        cb.delete_instance()
        record_change("callback", cb.id)


def regenerate_signature(p: Principal, callback_id: str) -> Callback:
    with write_transaction():
        cb = tenancy.callback(p, callback_id)
        cb.set_signature(new_signature())
        cb.updated_at = utcnow()
        cb.save()
        record_change("callback", cb.id)
    return cb


def update_callback(p: Principal, callback_id: str, s: Settings, mask: list[str]) -> Callback:
    v = Violations()
    if not mask:
        v.add("update_mask", f"must name at least one of {', '.join(SETTABLE)}")
    for i, path in enumerate(mask):
        if path not in SETTABLE:
            v.add(
                f"update_mask[{i}]", f"unknown field {echo(path)}; settable: {', '.join(SETTABLE)}"
            )
    changes: dict[str, object] = {}
    if "name" in mask:
        check_name(v, "name", s.name, required=False)
        changes["name"] = s.name
    if "content_type" in mask:
        changes["content_type"] = _content_type(v, s.content_type, s.custom_content_type)
    if "timeout_ms" in mask:
        changes["timeout_ms"] = _timeout(v, s.timeout_ms)
    if "rate_limit_per_minute" in mask:
        changes["rate_limit_per_minute"] = _rate_limit(v, s.rate_limit_per_minute)
    v.raise_if_any()
    with write_transaction():
        cb = tenancy.callback(p, callback_id)
        for name, value in changes.items():
            setattr(cb, name, value)
        cb.updated_at = utcnow()
        cb.save()
        record_change("callback", cb.id)
    return cb


def check_secret_key() -> str:
    """Why this process's secret key cannot open the stored signatures ("" if it can), checked
    at start so a replica with another key refuses to serve rather than fail call by call."""
    row = Callback.select().order_by(Callback.id.desc()).first()
    if row is None:
        return ""
    try:
        row.signature  # noqa: B018 (opening it is the check)
    except secrets.SealError as e:
        return f"the secret key cannot open the stored callback signatures: {e}"
    return ""


def reseal_signatures(batch: int = 500) -> int:
    """Re-seals, with the current secret key, every signature sealed with a previous one (after a
    key rotation, docs/security.md); returns how many. Signatures and digests do not change."""
    box = secrets.box()
    resealed, after = 0, ""
    while True:
        with write_transaction():
            rows = list(
                Callback.select(Callback.id, Callback.signature_sealed)
                .where(Callback.id > after)
                .order_by(Callback.id)
                .limit(batch)
            )
            for row in rows:
                if not box.is_current(row.signature_sealed):
                    sealed = box.seal(row.signature, signature_aad(row.id))
                    # Only if unchanged: a signature regenerated meanwhile is already current.
                    resealed += (
                        Callback.update(signature_sealed=sealed)
                        .where(
                            (Callback.id == row.id)
                            & (Callback.signature_sealed == row.signature_sealed)
                        )
                        .execute()
                    )
        if len(rows) < batch:
            return resealed
        after = rows[-1].id


def callback_urls(p: Principal, public_base: str, callback_id: str, env_id: str) -> tuple[str, str]:
    cb = tenancy.callback(p, callback_id)
    slug = company_slug(cb)
    env_url = ""
    if env_id:
        env = tenancy.environment(p, env_id, "environment_id")
        if env.company_id != cb.flow.company_id:
            raise errors.not_found(f"environment {env_id!r}", "ENVIRONMENT_NOT_FOUND")
        env_url = url(public_base, slug, cb, env.url_prefix)
    return url(public_base, slug, cb, ""), env_url
