"""Connections: the named upstream systems of a company that connector shapes call
(docs/connections.md).

A connection holds where to call (base URL, default headers, timeout, rate limit) and with which
credentials. Credentials are write-only: the API answers their kind and non-secret fields only
(`public_credentials`), the secret is sealed at rest with the installation's secret key
(control_plane/secrets, as callback signatures are), edges never hear of connections (no change
is recorded for the sync stream), and nothing here logs. Only the runner opens a secret, through
`resolve_connection`, just before a call.

Credentials travel in the domain as the runner's own dataclasses (control_plane/outbound/
credentials.py), so the API, the store and the runner share one description of each kind.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import peewee

from control_plane import secrets
from control_plane.domain import errors, quotas, tenancy
from control_plane.domain.errors import Violations, echo
from control_plane.domain.ids import new_id
from control_plane.domain.tenancy import Principal
from control_plane.domain.validation import check_slug, is_slug, page, paginate, require_id
from control_plane.outbound.credentials import (
    ApiKeyCredentials,
    BasicCredentials,
    BearerCredentials,
    Credentials,
    OAuth2ClientCredentials,
    ResolvedConnection,
)
from control_plane.store.clock import utcnow
from control_plane.store.db import lock_rows, write_transaction
from control_plane.store.models import Company, Connection, connection_secret_aad

MAX_URL_CHARS = 2048
MAX_HEADERS = 50
MAX_HEADER_NAME_CHARS = 128
MAX_HEADER_VALUE_CHARS = 4096
#: Names and values of all default headers together: well under what servers accept (8-16 KiB).
MAX_HEADERS_CHARS = 16_384
DEFAULT_TIMEOUT_MS = 30_000
MIN_TIMEOUT_MS = 100
MAX_TIMEOUT_MS = 60_000
MAX_RATE_LIMIT_PER_MINUTE = 1_000_000
MAX_USERNAME_CHARS = 256
MAX_SECRET_CHARS = 8192  # long enough for JWTs used as bearer tokens
MAX_CLIENT_ID_CHARS = 512
MAX_AUDIENCE_CHARS = 1024
MAX_SCOPES = 50
MAX_SCOPE_CHARS = 256
SETTABLE = ("name", "base_url", "default_headers", "timeout", "rate_limit_per_minute", "auth")

# RFC 9110 §5.6.2 token: what a header name (and here an API key's name) may be.
TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# RFC 6749 §3.3 scope-token: printable ASCII but space, '"' and '\'.
SCOPE_RE = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")
# Headers the HTTP client owns: framing and hop-by-hop ones a stored value would corrupt or
# smuggle through (RFC 9110 §7.6.1, §6.4; RFC 9112 §6).
FRAMING_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "upgrade",
        "expect",
    }
)
# Default headers are readable by every key of the company: credentials belong in `auth`, where
# they are write-only and sealed.
CREDENTIAL_HEADERS = frozenset({"authorization", "proxy-authorization"})

KINDS = {
    BasicCredentials: "basic",
    BearerCredentials: "bearer",
    ApiKeyCredentials: "api_key",
    OAuth2ClientCredentials: "oauth2_client_credentials",
}


@dataclass(frozen=True)
class Settings:
    """A connection as requested. `timeout_ms` 0 means the default (30 s); `credentials` None
    means none."""

    name: str = ""
    base_url: str = ""
    default_headers: tuple[tuple[str, str], ...] = ()
    timeout_ms: int = 0
    rate_limit_per_minute: int = 0
    credentials: Credentials | None = field(default=None, repr=False)


# -- validation -------------------------------------------------------------------------------


def _control(value: str) -> bool:
    """True if `value` holds a C0 control character or DEL (NUL, CR, LF, tab, ...)."""
    return any(ord(c) < 0x20 or c == "\x7f" for c in value)


def _header_safe(value: str) -> bool:
    """Printable ASCII, spaces and tabs: what every HTTP client sends as a header value as is
    (RFC 9110 §5.5 without obs-text), so no CR/LF can split a header and no encoding differs."""
    return all(c == "\t" or " " <= c <= "~" for c in value)


def check_url(v: Violations, path: str, url: str) -> None:
    """An absolute http(s) URL without userinfo, query or fragment, in ASCII, bounded."""
    if not url:
        v.add(path, "must not be empty: an absolute http:// or https:// URL")
        return
    if len(url) > MAX_URL_CHARS:
        v.add(path, f"must be at most {MAX_URL_CHARS} characters")
        return
    if not url.isascii() or any(c <= " " or c == "\x7f" for c in url):
        v.add(path, "must be ASCII without spaces or control characters (percent-encode them)")
        return
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:  # a bad port or an unclosed IPv6 bracket
        v.add(path, "has an invalid host or port")
        return
    if parts.scheme not in ("http", "https") or not parts.hostname:
        v.add(path, "must be an absolute http:// or https:// URL with a host")
    elif "@" in parts.netloc:
        v.add(path, "must not hold user:password@; put credentials in auth")
    elif "#" in url:
        v.add(path, "must not have a fragment (#...)")
    elif "?" in url:
        v.add(path, "must not have a query (?...); connector shapes add their own")


def _headers(v: Violations, headers: tuple[tuple[str, str], ...]) -> None:
    if len(headers) > MAX_HEADERS:
        v.add("default_headers", f"must have at most {MAX_HEADERS} entries")
        return
    if sum(len(n) + len(value) for n, value in headers) > MAX_HEADERS_CHARS:
        v.add("default_headers", f"names and values must total at most {MAX_HEADERS_CHARS} chars")
    seen: set[str] = set()
    for name, value in headers:
        path = f"default_headers[{echo(name)}]"
        lowered = name.lower()
        if len(name) > MAX_HEADER_NAME_CHARS or not TOKEN_RE.fullmatch(name):
            v.add(path, f"name must be an HTTP token of 1-{MAX_HEADER_NAME_CHARS} characters")
        elif lowered in FRAMING_HEADERS:
            v.add(path, "is set by the HTTP client itself and cannot be a default header")
        elif lowered in CREDENTIAL_HEADERS:
            v.add(path, "holds credentials: use auth (e.g. api_key with this header name)")
        elif lowered in seen:
            v.add(path, "is given twice (header names are case-insensitive)")
        seen.add(lowered)
        if len(value) > MAX_HEADER_VALUE_CHARS:
            v.add(path, f"value must be at most {MAX_HEADER_VALUE_CHARS} characters")
        elif not _header_safe(value):
            v.add(path, "value must be printable ASCII, spaces or tabs (no CR, LF, NUL, ...)")


def _timeout(v: Violations, timeout_ms: int) -> int:
    if timeout_ms and not MIN_TIMEOUT_MS <= timeout_ms <= MAX_TIMEOUT_MS:
        v.add("timeout", "must be between 0.1 s and 60 s (unset for the default, 30 s)")
    return timeout_ms or DEFAULT_TIMEOUT_MS


def _rate_limit(v: Violations, per_minute: int) -> None:
    if not 0 <= per_minute <= MAX_RATE_LIMIT_PER_MINUTE:
        v.add(
            "rate_limit_per_minute",
            f"must be between 0 (unlimited) and {MAX_RATE_LIMIT_PER_MINUTE}",
        )


def _text(
    v: Violations, path: str, value: str, limit: int, *, required: bool = True, header: bool = False
) -> None:
    """A credential field; `header`: sent as a header value as is (a token, an API key in a
    header). Descriptions never repeat the value: it may be a secret."""
    if required and not value:
        v.add(path, "must not be empty")
    elif len(value) > limit:
        v.add(path, f"must be at most {limit} characters")
    elif _control(value):
        v.add(path, "must not contain control characters (CR, LF, NUL, ...)")
    elif header and not _header_safe(value):
        v.add(path, "must be printable ASCII: it is sent in a header")


def _credentials(v: Violations, c: Credentials | None) -> None:
    """Every field of the kind, with its request path (`auth.<kind>.<field>`)."""
    if c is None:
        return
    base = f"auth.{KINDS[type(c)]}"
    if isinstance(c, BasicCredentials):
        _text(v, f"{base}.username", c.username, MAX_USERNAME_CHARS)
        if ":" in c.username:
            v.add(f"{base}.username", "must not contain ':' (RFC 7617)")
        _text(v, f"{base}.password", c.password, MAX_SECRET_CHARS)
    elif isinstance(c, BearerCredentials):
        _text(v, f"{base}.token", c.token, MAX_SECRET_CHARS, header=True)
    elif isinstance(c, ApiKeyCredentials):
        if len(c.name) > MAX_HEADER_NAME_CHARS or not TOKEN_RE.fullmatch(c.name):
            v.add(f"{base}.name", f"must be an HTTP token of 1-{MAX_HEADER_NAME_CHARS} characters")
        elif c.location == "header" and c.name.lower() in FRAMING_HEADERS:
            v.add(f"{base}.name", "is set by the HTTP client itself and cannot carry a key")
        _text(v, f"{base}.value", c.value, MAX_SECRET_CHARS, header=c.location == "header")
    else:
        check_url(v, f"{base}.token_url", c.token_url)
        _text(v, f"{base}.client_id", c.client_id, MAX_CLIENT_ID_CHARS)
        _text(v, f"{base}.client_secret", c.client_secret, MAX_SECRET_CHARS)
        if len(c.scopes) > MAX_SCOPES:
            v.add(f"{base}.scopes", f"must have at most {MAX_SCOPES} entries")
        else:
            for i, scope in enumerate(c.scopes):
                if len(scope) > MAX_SCOPE_CHARS or not SCOPE_RE.fullmatch(scope):
                    v.add(
                        f"{base}.scopes[{i}]",
                        f"must be a scope token (RFC 6749) of 1-{MAX_SCOPE_CHARS} characters",
                    )
        _text(v, f"{base}.audience", c.audience, MAX_AUDIENCE_CHARS, required=False)


# -- storing credentials ----------------------------------------------------------------------


def _secret(c: Credentials) -> str:
    if isinstance(c, BasicCredentials):
        return c.password
    if isinstance(c, BearerCredentials):
        return c.token
    if isinstance(c, ApiKeyCredentials):
        return c.value
    return c.client_secret


def _store_credentials(row: Connection, c: Credentials | None) -> None:
    """Sets the row's kind, non-secret fields and sealed secret (the row's id set first)."""
    if c is None:
        row.auth_kind, row.auth = "", "{}"
        row.set_secret("")
        return
    public = dataclasses.asdict(_without_secret(c))
    row.auth_kind = KINDS[type(c)]
    row.auth = json.dumps({k: v for k, v in public.items() if v not in ("", ())})
    row.set_secret(_secret(c))


def _without_secret(c: Credentials) -> Credentials:
    if isinstance(c, BasicCredentials):
        return dataclasses.replace(c, password="")
    if isinstance(c, BearerCredentials):
        return dataclasses.replace(c, token="")
    if isinstance(c, ApiKeyCredentials):
        return dataclasses.replace(c, value="")
    return dataclasses.replace(c, client_secret="")


def _load_credentials(row: Connection, secret: str) -> Credentials | None:
    fields = json.loads(row.auth)
    if row.auth_kind == "basic":
        return BasicCredentials(fields.get("username", ""), secret)
    if row.auth_kind == "bearer":
        return BearerCredentials(secret)
    if row.auth_kind == "api_key":
        return ApiKeyCredentials(fields.get("name", ""), fields.get("location", "header"), secret)
    if row.auth_kind == "oauth2_client_credentials":
        return OAuth2ClientCredentials(
            fields.get("token_url", ""),
            fields.get("client_id", ""),
            secret,
            tuple(fields.get("scopes", ())),
            fields.get("audience", ""),
        )
    return None


def public_credentials(row: Connection) -> Credentials | None:
    """The row's credentials with the secret empty: what the API may answer."""
    return _load_credentials(row, "")


def default_headers(row: Connection) -> tuple[tuple[str, str], ...]:
    return tuple(json.loads(row.default_headers).items())


# -- the API's operations ---------------------------------------------------------------------


def _connection(p: Principal, connection_id: str, lock: str = "") -> Connection:
    """The connection if `p` may see it; NOT_FOUND exactly as if it did not exist otherwise."""
    require_id("id", connection_id)
    # A write locks the connection's row alone: locking the joined company row too would make
    # every insert that references the company (runs, keys) wait for it.
    query = Connection.select() if lock else Connection.select(Connection, Company).join(Company)
    row = lock_rows(query.where(Connection.id == connection_id), lock).get_or_none()
    if row is None or not p.can_see(row.company_id):
        raise errors.not_found(f"connection {connection_id!r}", "CONNECTION_NOT_FOUND")
    return row


def _name_taken(name: str) -> errors.DomainError:
    return errors.already_exists(
        f"the company already has a connection named {name!r}", "CONNECTION_NAME_TAKEN"
    )


def create_connection(p: Principal, company_slug: str, s: Settings) -> Connection:
    v = Violations()
    check_slug(v, "name", s.name)
    check_url(v, "base_url", s.base_url)
    _headers(v, s.default_headers)
    timeout_ms = _timeout(v, s.timeout_ms)
    _rate_limit(v, s.rate_limit_per_minute)
    _credentials(v, s.credentials)
    v.raise_if_any()
    try:
        with write_transaction():
            company = tenancy.company(p, company_slug)
            quotas.lock_company(company.id)  # counts stay true until commit (domain/quotas.py)
            used = Connection.select().where(Connection.company == company.id).count()
            quotas.require_room("connections", quotas.for_company(company.id).connections, used)
            if Connection.get_or_none(company=company.id, name=s.name) is not None:
                raise _name_taken(s.name)
            now = utcnow()
            row = Connection(
                id=new_id(),
                company=company,
                name=s.name,
                base_url=s.base_url,
                default_headers=json.dumps(dict(s.default_headers)),
                timeout_ms=timeout_ms,
                rate_limit_per_minute=s.rate_limit_per_minute,
                version=1,
                created_at=now,
                updated_at=now,
            )
            _store_credentials(row, s.credentials)
            row.save(force_insert=True)
    except peewee.IntegrityError:  # the unique index, should a check ever be bypassed
        raise _name_taken(s.name) from None
    return row


def get_connection(p: Principal, connection_id: str) -> Connection:
    return _connection(p, connection_id)


def list_connections(
    p: Principal, company_slug: str, page_size: int, page_token: str
) -> tuple[list[Connection], str]:
    limit, after = page(page_size, page_token)
    company = tenancy.company(p, company_slug)
    query = (
        Connection.select(Connection, Company)
        .join(Company)
        .where((Connection.company == company.id) & (Connection.id > after))
        .order_by(Connection.id)  # ULIDs: creation order
    )
    return paginate(query, limit)


def update_connection(p: Principal, connection_id: str, s: Settings, mask: list[str]) -> Connection:
    """Changes the fields named in `mask`; "auth" replaces the credentials whole (a secret is
    kept only while "auth" is not in the mask)."""
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
        check_slug(v, "name", s.name)
        changes["name"] = s.name
    if "base_url" in mask:
        check_url(v, "base_url", s.base_url)
        changes["base_url"] = s.base_url
    if "default_headers" in mask:
        _headers(v, s.default_headers)
        changes["default_headers"] = json.dumps(dict(s.default_headers))
    if "timeout" in mask:
        changes["timeout_ms"] = _timeout(v, s.timeout_ms)
    if "rate_limit_per_minute" in mask:
        _rate_limit(v, s.rate_limit_per_minute)
        changes["rate_limit_per_minute"] = s.rate_limit_per_minute
    if "auth" in mask:
        _credentials(v, s.credentials)
    v.raise_if_any()
    try:
        with write_transaction():
            row = _connection(p, connection_id, lock="FOR UPDATE")
            if "name" in mask and s.name != row.name:
                taken = Connection.get_or_none(company=row.company_id, name=s.name)
                if taken is not None:
                    raise _name_taken(s.name)
            for name, value in changes.items():
                setattr(row, name, value)
            if "auth" in mask:
                _store_credentials(row, s.credentials)
            row.version += 1
            row.updated_at = utcnow()
            row.save()
    except peewee.IntegrityError:
        raise _name_taken(s.name) from None
    return row


def delete_connection(p: Principal, connection_id: str) -> None:
    with write_transaction():
        _connection(p, connection_id, lock="FOR UPDATE").delete_instance()


# -- the runner's view ------------------------------------------------------------------------


def resolve_connection(company: str, name: str) -> ResolvedConnection | None:
    """The connection `name` of the company whose slug is `company`, secret opened; None when
    there is none (unknown company or name, or another company's).

    Blocking database work: the runner calls it on the database pool (`Runtime.db`), like its
    other store reads. Raises secrets.SealError when this process's secret key cannot open the
    stored secret (a replica started with another key); the message names no secret.
    """
    if not (is_slug(company) and is_slug(name)):
        return None  # cannot name anything: no query
    row = (
        Connection.select(Connection, Company)
        .join(Company)
        .where((Company.slug == company) & (Connection.name == name))
        .get_or_none()
    )
    if row is None:
        return None
    return ResolvedConnection(
        id=row.id,
        company=row.company.slug,
        name=row.name,
        base_url=row.base_url,
        default_headers=default_headers(row),
        timeout_s=row.timeout_ms / 1000,
        rate_limit_per_minute=row.rate_limit_per_minute,
        credentials=_load_credentials(row, row.secret),
        revision=f"{row.id}.{row.version}",
    )


# -- the secret key ---------------------------------------------------------------------------


def check_secret_key() -> str:
    """Why this process's secret key cannot open the stored connection secrets ("" if it can),
    checked at start (control_plane/__main__.py) like the callbacks' (domain/callbacks.py)."""
    row = (
        Connection.select()
        .where(Connection.secret_sealed.is_null(False))
        .order_by(Connection.updated_at.desc(), Connection.id.desc())
        .first()
    )
    try:
        if row is not None:
            row.secret  # noqa: B018 (opening it is the check)
    except secrets.SealError as e:
        return f"the secret key cannot open the stored connection secrets: {e}"
    return ""


def reseal_secrets(batch: int = 500) -> int:
    """Re-seals, with the current secret key, every connection secret sealed with a previous one
    (after a key rotation, docs/connections.md); returns how many. Secrets do not change."""
    box = secrets.box()
    resealed, after = 0, ""
    while True:
        with write_transaction():
            rows = list(
                Connection.select(Connection.id, Connection.auth_kind, Connection.secret_sealed)
                .where(Connection.id > after)
                .order_by(Connection.id)
                .limit(batch)
            )
            for row in rows:
                old = row.secret_sealed
                if old is None or box.is_current(old):
                    continue
                aad = connection_secret_aad(row.id, row.auth_kind)
                sealed = box.seal(box.open(old, aad), aad)
                # Only if unchanged: a secret replaced meanwhile is already current.
                resealed += (
                    Connection.update(secret_sealed=sealed)
                    .where((Connection.id == row.id) & (Connection.secret_sealed == old))
                    .execute()
                )
        if len(rows) < batch:
            return resealed
        after = rows[-1].id
