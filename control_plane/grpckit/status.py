"""The one place where domain errors become gRPC status.

Every error carries google.rpc.ErrorInfo (reason = an ErrorReason value name, domain
"boomerang.dev"); invalid input also carries google.rpc.BadRequest field violations, and a
refusal that may simply be sent again later (a company's calls at once) google.rpc.RetryInfo.

Every status is bounded (docs/errors.md): it travels in trailing metadata, which gRPC clients
refuse above 16 KB by default (8 KB soft), so an error quoting untrusted input at length, or
listing thousands of violations, would reach the caller as RESOURCE_EXHAUSTED instead of itself.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from control_plane.domain.errors import DomainError

DOMAIN = "boomerang.dev"

CODES = {
    "invalid_argument": code_pb2.INVALID_ARGUMENT,
    "not_found": code_pb2.NOT_FOUND,
    "already_exists": code_pb2.ALREADY_EXISTS,
    "failed_precondition": code_pb2.FAILED_PRECONDITION,
    "permission_denied": code_pb2.PERMISSION_DENIED,
    "unauthenticated": code_pb2.UNAUTHENTICATED,
    "resource_exhausted": code_pb2.RESOURCE_EXHAUSTED,
}

# Bounds, in UTF-8 bytes. Worst case: 20 x (80 + 120 + framing) + message + ErrorInfo stays
# under 5 KB serialised, about 6.5 KB once base64-encoded on the wire with grpc-message.
MAX_VIOLATIONS = 20
MAX_FIELD_BYTES = 80
MAX_DESCRIPTION_BYTES = 120
MAX_MESSAGE_BYTES = 256
MAX_METADATA_ENTRIES = 8
MAX_METADATA_BYTES = 64
#: ErrorInfo metadata key: how many field violations were left out of BadRequest.
OMITTED_VIOLATIONS = "omitted_violations"
ELLIPSIS = "…"


def clip(text: str, max_bytes: int) -> str:
    """`text` cut to at most `max_bytes` UTF-8 bytes, ending in an ellipsis if it was cut."""
    data = text.encode()
    if len(data) <= max_bytes:
        return text
    room = max_bytes - len(ELLIPSIS.encode())
    # errors="ignore" drops a multi-byte character cut in half rather than inventing one.
    return data[:room].decode(errors="ignore") + ELLIPSIS


def _pack(message) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)
    return detail


def _metadata(err: DomainError, omitted: int) -> dict[str, str]:
    # Errors may carry their own ErrorInfo metadata (quota errors do: quota, limit, used).
    given = dict(err.metadata)
    items = list(given.items())[:MAX_METADATA_ENTRIES]
    out = {clip(str(k), MAX_METADATA_BYTES): clip(str(v), MAX_METADATA_BYTES) for k, v in items}
    if omitted:
        out[OMITTED_VIOLATIONS] = str(omitted)
    return out


def to_status(err: DomainError) -> grpc.Status:
    shown = err.violations[:MAX_VIOLATIONS]
    omitted = len(err.violations) - len(shown) + err.omitted
    info = error_details_pb2.ErrorInfo(
        reason=f"ERROR_REASON_{err.reason}", domain=DOMAIN, metadata=_metadata(err, omitted)
    )
    details = [_pack(info)]
    if shown:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field=clip(f, MAX_FIELD_BYTES),
                            description=clip(d, MAX_DESCRIPTION_BYTES),
                        )
                        for f, d in shown
                    ]
                )
            )
        )
    if err.retry_after_s > 0:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(round(err.retry_after_s * 1000))
        details.append(_pack(retry))
    status = status_pb2.Status(
        code=CODES[err.kind], message=clip(err.message, MAX_MESSAGE_BYTES), details=details
    )
    return rpc_status.to_status(status)


def internal_status() -> grpc.Status:
    """What a caller sees for a bug: no stack trace, no internal names."""
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; see server logs")
    )
