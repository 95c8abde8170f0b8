"""Callbacks: the secret URLs that run a flow and answer synchronously (docs/design.md §1)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from control_plane import secrets
from control_plane.domain import callback_settings as cs
from control_plane.domain import errors, quotas, tenancy
from control_plane.domain.errors import Violations, echo
from control_plane.domain.ids import new_id, new_signature
from control_plane.domain.tenancy import Principal
from control_plane.domain.validation import check_name, page, paginate
from control_plane.store.changes import record_change
from control_plane.store.clock import utcnow
from control_plane.store.db import write_transaction
from control_plane.store.models import Callback, Company, Flow, hmac_secret_aad, signature_aad

# Content types by their API names; "custom" takes a MIME type of the caller's.
CONTENT_TYPES = {"json": "application/json", "xml": "application/xml", "text": "text/plain"}
# RFC 6838 type/subtype with optional parameters, e.g. "application/vnd.acme+json; charset=utf-8".
_TOKEN = r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}"
# Matched whole (fullmatch): a trailing newline would otherwise pass and reach the header.
MIME_RE = re.compile(rf"{_TOKEN}/{_TOKEN}([ \t]*;[ \t]*{_TOKEN}=[A-Za-z0-9!#$&^_.+-]+)*")
DEFAULT_TIMEOUT_MS = 30_000
MAX_TIMEOUT_MS = 300_000
MAX_RATE_LIMIT_PER_MINUTE = 1_000_000
SETTABLE = (
    "name",
    "content_type",
    "timeout_ms",
    "rate_limit_per_minute",
    "hmac",
    "allowed_origins",
    "mode",
    "async_after_ms",
)


@dataclass(frozen=True)
class Settings:
    """Settings as requested: `content_type` is "", "json", "xml", "text" or "custom"."""

    name: str = ""
    content_type: str = ""
    custom_content_type: str = ""
    timeout_ms: int = 0
    rate_limit_per_minute: int = 0
    # Only settable with UpdateCallback (docs/callback-security.md). hmac_scheme and mode are
    # HmacScheme and CallbackMode values; the secret is write-only.
    hmac_scheme: int = 0
    hmac_secret: str = field(default="", repr=False)
    allowed_origins: tuple[str, ...] = ()
    mode: int = 0
    async_after_ms: int = 0


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


def previous_signature(cb: Callback, now: dt.datetime) -> tuple[bytes, dt.datetime] | None:
    """The replaced signature's digest and expiry while its grace lasts at `now`, else None."""
    expires = cb.previous_signature_expires_at
    if cb.previous_signature_digest is None or expires is None or expires <= now:
        return None
    return bytes(cb.previous_signature_digest), expires


def regenerate_signature(p: Principal, callback_id: str, grace_ms: int = 0) -> Callback:
    """A new signature; with `grace_ms`, the current one keeps working that long. Only one
    previous signature is kept: regenerating during a grace ends the older one at once."""
    v = Violations()
    cs.grace_ms(v, grace_ms)
    v.raise_if_any()
    with write_transaction():
        cb = tenancy.callback(p, callback_id)
        now = utcnow()
        if grace_ms:
            cb.previous_signature_digest = cb.signature_digest
            cb.previous_signature_expires_at = now + dt.timedelta(milliseconds=grace_ms)
        else:
            cb.previous_signature_digest = None
            cb.previous_signature_expires_at = None
        cb.set_signature(new_signature())
        cb.updated_at = now
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
    if "hmac" in mask:
        changes["hmac_scheme"] = s.hmac_scheme
        secret = cs.hmac_secret(v, s.hmac_scheme, s.hmac_secret)
    if "allowed_origins" in mask:
        changes["allowed_origins"] = cs.allowed_origins(v, list(s.allowed_origins))
    if "mode" in mask:
        changes["mode"] = cs.mode(v, s.mode)
    if "async_after_ms" in mask:
        changes["async_after_ms"] = cs.async_after_ms(v, s.async_after_ms)
    v.raise_if_any()
    with write_transaction():
        cb = tenancy.callback(p, callback_id)
        # async_after_ms is bounded by the timeout: checked against the values once applied.
        cs.below_timeout(
            v,
            changes.get("async_after_ms", cb.async_after_ms),
            changes.get("timeout_ms", cb.timeout_ms),
            "async_after_ms" if "async_after_ms" in mask else "timeout_ms",
        )
        v.raise_if_any()
        for name, value in changes.items():
            setattr(cb, name, value)
        if "hmac" in mask:
            cb.set_hmac_secret(secret)
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
    # HMAC secrets too: the sync stream opens them for every snapshot.
    with_hmac = (
        Callback.select()
        .where(Callback.hmac_secret_sealed.is_null(False))
        .order_by(Callback.id.desc())
        .first()
    )
    try:
        if with_hmac is not None:
            with_hmac.hmac_secret  # noqa: B018
    except secrets.SealError as e:
        return f"the secret key cannot open the stored callback HMAC secrets: {e}"
    return ""


def reseal_signatures(batch: int = 500) -> int:
    """Re-seals, with the current secret key, every signature and HMAC secret sealed with a
    previous one (after a key rotation, docs/security.md); returns how many values. Signatures,
    secrets and digests do not change."""
    box = secrets.box()
    resealed, after = 0, ""
    while True:
        with write_transaction():
            rows = list(
                Callback.select(Callback.id, Callback.signature_sealed, Callback.hmac_secret_sealed)
                .where(Callback.id > after)
                .order_by(Callback.id)
                .limit(batch)
            )
            for row in rows:
                for column, aad in (
                    (Callback.signature_sealed, signature_aad(row.id)),
                    (Callback.hmac_secret_sealed, hmac_secret_aad(row.id)),
                ):
                    old = getattr(row, column.name)
                    if old is None or box.is_current(old):
                        continue
                    sealed = box.seal(box.open(old, aad), aad)
                    # Only if unchanged: a value replaced meanwhile is already current.
                    resealed += (
                        Callback.update({column: sealed})
                        .where((Callback.id == row.id) & (column == old))
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
