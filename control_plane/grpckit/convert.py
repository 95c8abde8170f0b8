"""Store rows to API messages."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math

from google.protobuf import struct_pb2, timestamp_pb2

from boomerang.v1 import resources_pb2 as r
from control_plane.domain import callback_settings, callbacks
from control_plane.domain.errors import Violations
from control_plane.domain.flows import VersionView
from control_plane.domain.quotas import Quotas
from control_plane.store import models as m
from control_plane.store.clock import utcnow

VERSION_STATES = {
    "draft": r.VERSION_STATE_DRAFT,
    "deployed": r.VERSION_STATE_DEPLOYED,
    "inactive": r.VERSION_STATE_INACTIVE,
}
RUN_STATUSES = {
    "running": r.RUN_STATUS_RUNNING,
    "responded": r.RUN_STATUS_RESPONDED,
    "succeeded": r.RUN_STATUS_SUCCEEDED,
    "failed": r.RUN_STATUS_FAILED,
    "timed_out": r.RUN_STATUS_TIMED_OUT,
}
RUN_STATUS_NAMES = {v: k for k, v in RUN_STATUSES.items()}


def ts(value: dt.datetime | None) -> timestamp_pb2.Timestamp | None:
    if value is None:
        return None
    if value.tzinfo is None:  # SQLite hands back naive datetimes; we only ever store UTC
        value = value.replace(tzinfo=dt.UTC)
    out = timestamp_pb2.Timestamp()
    out.FromDatetime(value)
    return out


def from_ts(value: timestamp_pb2.Timestamp) -> dt.datetime:
    return value.ToDatetime()  # naive UTC, as stored


#: JSON nesting a Struct may have: an object or array counts one level. Requests cannot nest
#: much deeper anyway (protobuf's decoder stops at 100 message levels, about 33 JSON levels, see
#: grpckit/decode.py), but a response wraps the Struct in more messages than the request did, so
#: a definition at the decoder's limit could be stored and then never read back.
MAX_STRUCT_DEPTH = 24


def struct_to_dict(value: struct_pb2.Struct, field: str = "definition") -> dict:
    """A Struct as plain JSON, or INVALID_DEFINITION naming each path that JSON cannot hold.

    Struct stores every number as a double, so integral values come back as ints: `"status":
    200` must stay 200, not 200.0. NaN and ±Infinity have no JSON form (json_format raises
    ValueError on them), and are refused here with their path rather than failing later.
    """
    v = Violations()
    out = _struct(value, field, 1, v)
    v.raise_if_any("INVALID_DEFINITION")
    return out


def _struct(value: struct_pb2.Struct, path: str, depth: int, v: Violations) -> dict:
    if depth > MAX_STRUCT_DEPTH:
        v.add(path, f"nests deeper than {MAX_STRUCT_DEPTH} levels")
        return {}
    return {k: _value(item, f"{path}.{k}", depth, v) for k, item in value.fields.items()}


def _value(value: struct_pb2.Value, path: str, depth: int, v: Violations):
    kind = value.WhichOneof("kind")
    if kind == "struct_value":
        return _struct(value.struct_value, path, depth + 1, v)
    if kind == "list_value":
        if depth + 1 > MAX_STRUCT_DEPTH:
            v.add(path, f"nests deeper than {MAX_STRUCT_DEPTH} levels")
            return []
        return [
            _value(item, f"{path}[{i}]", depth + 1, v)
            for i, item in enumerate(value.list_value.values)
        ]
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            v.add(path, "must be a finite number (JSON has no NaN or Infinity)")
            return 0
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    return None  # null_value, or no kind set: JSON null, as json_format reads it


def company(row: m.Company) -> r.Company:
    return r.Company(id=row.id, slug=row.slug, name=row.name, create_time=ts(row.created_at))


def environment(row: m.Environment, company_slug: str) -> r.Environment:
    return r.Environment(
        id=row.id,
        company=company_slug,
        name=row.name,
        url_prefix=row.url_prefix,
        create_time=ts(row.created_at),
    )


def flow(row: m.Flow, company_slug: str) -> r.Flow:
    return r.Flow(
        id=row.id,
        company=company_slug,
        name=row.name,
        draft_version=row.draft_number,
        create_time=ts(row.created_at),
    )


def version(view: VersionView, with_definition: bool = True) -> r.FlowVersion:
    """`with_definition` False: the BASIC view of ListVersions (the row was read without it)."""
    row = view.version
    definition = None
    if with_definition:
        definition = struct_pb2.Struct()
        definition.update(json.loads(row.definition))
    return r.FlowVersion(
        id=row.id,
        flow_id=row.flow_id,
        number=row.number,
        state=VERSION_STATES[view.state],
        definition=definition,
        has_callback=row.has_callback,
        create_time=ts(row.created_at),
        update_time=ts(row.updated_at),
    )


def quotas(values: Quotas) -> r.Quotas:
    return r.Quotas(**dataclasses.asdict(values))


def deployment(row: m.Deployment) -> r.Deployment:
    return r.Deployment(
        flow_id=row.flow_id,
        environment_id=row.environment_id,
        version_id=row.version_id,
        version_number=row.version.number,
        enabled=row.enabled,
        deploy_time=ts(row.deployed_at),
    )


def callback(row: m.Callback, company_slug: str, url: str = "") -> r.Callback:
    """`url` given: a full view with the signature; empty: the list view, without it. Never the
    HMAC secret (write-only)."""
    previous = callbacks.previous_signature(row, utcnow())
    return r.Callback(
        id=row.id,
        company=company_slug,
        flow_id=row.flow_id,
        name=row.name,
        content_type=row.content_type,
        timeout_ms=row.timeout_ms,
        rate_limit_per_minute=row.rate_limit_per_minute,
        signature=row.signature if url else "",
        url=url,
        create_time=ts(row.created_at),
        update_time=ts(row.updated_at),
        previous_signature_expire_time=ts(previous[1]) if previous else None,
        hmac_scheme=row.hmac_scheme,
        allowed_origins=callback_settings.origins_list(row.allowed_origins),
        mode=row.mode,
        async_after_ms=row.async_after_ms,
    )


#: ApiKeyScope values -> the stored scope (UNSPECIFIED means FULL).
KEY_SCOPES = {
    r.API_KEY_SCOPE_UNSPECIFIED: "full",
    r.API_KEY_SCOPE_FULL: "full",
    r.API_KEY_SCOPE_EDGE: "edge",
    r.API_KEY_SCOPE_RUNNER: "runner",
}


def api_key(row: m.ApiKey, company_slug: str) -> r.ApiKey:
    return r.ApiKey(
        id=row.id,
        company=company_slug,
        name=row.name,
        create_time=ts(row.created_at),
        revoke_time=ts(row.revoked_at),
        scope=r.ApiKeyScope.Value(f"API_KEY_SCOPE_{row.scope.upper()}"),
    )


def run(row: m.Run, company_slug: str, with_shapes: bool) -> r.Run:
    out = r.Run(
        id=row.id,
        company=company_slug,
        flow_id=row.flow_id,
        version_id=row.version_id,
        environment_id=row.environment_id,
        callback_id=row.callback_id,
        status=RUN_STATUSES[row.status],
        start_time=ts(row.started_at),
        respond_time=ts(row.responded_at),
        end_time=ts(row.ended_at),
        response_status=row.response_status,
        error=row.error,
        reason=row.reason,
        attempts=row.attempts,
        parent_run_id=row.parent_run_id,
    )
    if with_shapes:
        out.shapes.extend(r.ShapeLog(**s) for s in json.loads(row.shapes))
        out.notices.extend(_notice(n) for n in json.loads(row.notices))
    return out


def _notice(doc: dict) -> r.RunNotice:
    notice = r.RunNotice(shape_id=doc["shape_id"], level=doc["level"], message=doc["message"])
    notice.time.FromNanoseconds(int(doc["time"] * 1e9))
    return notice
