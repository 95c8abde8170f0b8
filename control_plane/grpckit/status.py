"""The one place where domain errors become gRPC status.

Every error carries google.rpc.ErrorInfo (reason = an ErrorReason value name, domain
"boomerang.dev"); invalid input also carries google.rpc.BadRequest field violations.
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


def _pack(message) -> any_pb2.Any:
    detail = any_pb2.Any()
    detail.Pack(message)
    return detail


def to_status(err: DomainError) -> grpc.Status:
    details = [
        _pack(
            error_details_pb2.ErrorInfo(
                reason=f"ERROR_REASON_{err.reason}", domain=DOMAIN, metadata=err.metadata
            )
        )
    ]
    if err.violations:
        details.append(
            _pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(field=f, description=d)
                        for f, d in err.violations
                    ]
                )
            )
        )
    status = status_pb2.Status(code=CODES[err.kind], message=err.message, details=details)
    return rpc_status.to_status(status)


def internal_status() -> grpc.Status:
    """What a caller sees for a bug: no stack trace, no internal names."""
    return rpc_status.to_status(
        status_pb2.Status(code=code_pb2.INTERNAL, message="internal error; see server logs")
    )
