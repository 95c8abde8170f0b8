"""Per-company quotas (docs/quotas.md): how much of each kind of object a tenant may keep.

A quota's value comes from, first to last: the company's own setting (SetQuotas with a company),
the installation's setting (SetQuotas without one), the configured default
(BOOMERANG_QUOTA_<NAME>, read once at start: `configure`), the built-in default (`Quotas`).
Settings live in the quota_setting table, one row per (scope, quota) set, so a quota not set
anywhere follows the defaults as they change.

Counting is race-safe: a create locks its company's row (`lock_company`) before it counts, so
concurrent creates queue behind each other instead of all seeing room for one more.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, fields

from control_plane.domain import errors, tenancy
from control_plane.domain.errors import DomainError, Violations
from control_plane.domain.tenancy import Principal
from control_plane.store.db import lock_rows, write_transaction
from control_plane.store.models import Company, QuotaSetting

#: The scope of the installation's own settings (a company's scope is its id).
INSTALLATION = ""
#: How a create locks its company's row (see lock_company).
LOCK = "FOR NO KEY UPDATE"
#: Quota values are int32 in the API.
MAX_VALUE = 2**31 - 1


@dataclass(frozen=True)
class Quotas:
    """Limits in force, and the built-in defaults (docs/quotas.md says why each)."""

    environments: int = 50
    flows: int = 500
    versions_kept: int = 50
    callbacks: int = 5_000
    connections: int = 200
    definition_bytes: int = 1 << 20
    definition_depth: int = 16
    runs_in_flight: int = 50
    answer_bytes: int = 64 << 20
    api_keys: int = 100

    def merged(self, values: Mapping[str, int]) -> Quotas:
        return dataclasses.replace(self, **values)


NAMES: tuple[str, ...] = tuple(f.name for f in fields(Quotas))
#: Below these a quota would forbid what every flow needs: a draft beside a deployed version, the
#: default definition (about 60 bytes, 3 levels deep). Every other quota is at least 1.
#: answer_bytes at least 64 KiB: room for a few dozen kept answers' reservations.
MINIMUMS: dict[str, int] = {
    "versions_kept": 2,
    "definition_bytes": 1024,
    "definition_depth": 4,
    "answer_bytes": 64 << 10,
}
#: Above these a definition could be stored but not read back. Depth: responses wrap the Struct in
#: more messages than requests, and protobuf's decoder stops at 100 levels; every request is held
#: to 24 JSON levels whatever the quota (grpckit/convert.py MAX_STRUCT_DEPTH). Bytes: GetDraft
#: must fit a default gRPC client's 4 MiB receive limit with the version's other fields.
MAXIMUMS: dict[str, int] = {"definition_bytes": 3 << 20, "definition_depth": 24}

_configured = Quotas()


def check_value(v: Violations, field_path: str, name: str, value: int) -> None:
    low, high = MINIMUMS.get(name, 1), MAXIMUMS.get(name, MAX_VALUE)
    if not low <= value <= high:
        v.add(field_path, f"must be between {low} and {high} (0 for the default)")


def from_env(env: Mapping[str, str]) -> Quotas:
    """The configured defaults: BOOMERANG_QUOTA_<NAME> for each quota, else the built-in one.

    BOOMERANG_COMPANY_RUNS_IN_FLIGHT, the older name of BOOMERANG_QUOTA_RUNS_IN_FLIGHT, is still
    read when the new one is not set."""
    values: dict[str, int] = {}
    legacy = env.get("BOOMERANG_COMPANY_RUNS_IN_FLIGHT")
    if legacy:
        values["runs_in_flight"] = int(legacy)
    for name in NAMES:
        raw = env.get(f"BOOMERANG_QUOTA_{name.upper()}")
        if raw:
            try:
                values[name] = int(raw)
            except ValueError:
                raise ValueError(f"BOOMERANG_QUOTA_{name.upper()} must be an integer") from None
    v = Violations()
    for name, value in values.items():
        check_value(v, f"BOOMERANG_QUOTA_{name.upper()}", name, value)
    if v.items:
        raise ValueError("; ".join(f"{f} {d}" for f, d in v.items))
    return Quotas().merged(values)


def configure(defaults: Quotas) -> None:
    """Sets the configured defaults of this process (control_plane.server, at start)."""
    global _configured
    _configured = defaults


def configured() -> Quotas:
    return _configured


# -- reading ----------------------------------------------------------------------------------


def _settings(*scopes: str) -> dict[str, dict[str, int]]:
    rows = QuotaSetting.select().where(QuotaSetting.scope.in_(scopes))
    out: dict[str, dict[str, int]] = {scope: {} for scope in scopes}
    for row in rows:
        if row.name in NAMES:  # a quota a later version removed is ignored, not fatal
            out[row.scope][row.name] = row.value
    return out


def installation() -> Quotas:
    return _configured.merged(_settings(INSTALLATION)[INSTALLATION])


def for_company(company_id: str) -> Quotas:
    """The quotas in force for a company: one query."""
    found = _settings(INSTALLATION, company_id)
    return _configured.merged(found[INSTALLATION]).merged(found[company_id])


def get_quotas(p: Principal, company_slug: str) -> Quotas:
    if not company_slug:
        p.require_admin()
        return installation()
    return for_company(tenancy.company(p, company_slug).id)


# -- setting ----------------------------------------------------------------------------------


def set_quotas(p: Principal, company_slug: str, values: Quotas, mask: list[str]) -> Quotas:
    """Sets the quotas named in `mask` (0: back to the default); returns those in force."""
    p.require_admin()
    v = Violations()
    if not mask:
        v.add("update_mask", f"must name at least one of {', '.join(NAMES)}")
    for i, path in enumerate(mask):
        if path not in NAMES:
            v.add(f"update_mask[{i}]", f"unknown quota {path!r}; one of: {', '.join(NAMES)}")
        elif getattr(values, path):
            check_value(v, f"quotas.{path}", path, getattr(values, path))
    v.raise_if_any()
    with write_transaction():
        scope = INSTALLATION
        if company_slug:
            scope = tenancy.company(p, company_slug, lock=LOCK).id
        for name in dict.fromkeys(mask):
            value = getattr(values, name)
            where = (QuotaSetting.scope == scope) & (QuotaSetting.name == name)
            if value:
                QuotaSetting.insert(scope=scope, name=name, value=value).on_conflict(
                    conflict_target=[QuotaSetting.scope, QuotaSetting.name],
                    update={QuotaSetting.value: value},
                ).execute()
            else:
                QuotaSetting.delete().where(where).execute()
    return for_company(scope) if scope else installation()


def forget_company(company_id: str) -> None:
    """Deletes a company's settings (with the company: they are not a foreign key)."""
    QuotaSetting.delete().where(QuotaSetting.scope == company_id).execute()


# -- enforcing --------------------------------------------------------------------------------


def lock_company(company_id: str) -> None:
    """Locks the company's row until commit, so counts taken after it stay true until then.

    FOR NO KEY UPDATE, not FOR UPDATE: it queues creates of the same company behind each other
    but not the inserts that merely reference the company (runs, keys), which take FOR KEY SHARE.
    SQLite needs nothing: write transactions already run one at a time (store/db.py)."""
    query = Company.select(Company.id).where(Company.id == company_id)
    if lock_rows(query, LOCK).get_or_none() is None:  # deleted since it was read
        raise errors.not_found(f"company {company_id!r}", "COMPANY_NOT_FOUND")


def exceeded(name: str, limit: int, used: int | None = None) -> DomainError:
    metadata = {"quota": name, "limit": str(limit)}
    if used is not None:
        metadata["used"] = str(used)
    what = f"{used} of {limit} used" if used is not None else f"the limit is {limit}"
    return errors.resource_exhausted(
        f"quota {name} exceeded ({what}); ask the installation's operator to raise it",
        "QUOTA_EXCEEDED",
        metadata,
    )


def require_room(name: str, limit: int, used: int) -> None:
    """Refuses one more object when `used` already reaches `limit`."""
    if used >= limit:
        raise exceeded(name, limit, used)


def definition_depth(doc: object, limit: int) -> int:
    """Nesting depth of a JSON value (objects and lists; a scalar is 0), counted without
    recursion; stops once past `limit`, so a hostile document costs no more than a valid one."""
    deepest, stack = 0, [(doc, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        deepest = max(deepest, level)
        if deepest > limit:
            break
        stack.extend((child, level + 1) for child in children)
    return deepest


def check_definition_depth(doc: object, limits: Quotas) -> None:
    """Checked before anything walks the document recursively (encoding, validation)."""
    if definition_depth(doc, limits.definition_depth) > limits.definition_depth:
        raise exceeded("definition_depth", limits.definition_depth)


def check_definition_bytes(text: str, limits: Quotas) -> None:
    """`text` is the definition as stored: compact JSON, ASCII (one character, one byte)."""
    if len(text) > limits.definition_bytes:
        raise exceeded("definition_bytes", limits.definition_bytes, len(text))
