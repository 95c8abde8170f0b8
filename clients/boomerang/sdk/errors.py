"""Typed errors: every failed RPC becomes one `BoomerangError` subclass, chosen by status code.

`from_rpc_error` is the one place an `grpc.RpcError` is translated (Temporal's `RPCError` is the
model). The reason is the `google.rpc.ErrorInfo` reason of the status details — an `ErrorReason`
value name such as "ERROR_REASON_FLOW_NOT_FOUND" (proto/boomerang/v1/error_reason.proto) — and
field violations come from `google.rpc.BadRequest`, and `retry_delay` from `google.rpc.RetryInfo`
(the server's word that the same request may be sent again after that many seconds: the
transport does so, docs/errors.md). Errors raised by gRPC itself (the server is unreachable, the
deadline passed) carry no details: their reason is "".
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

DOMAIN = "boomerang.dev"


class BoomerangError(Exception):
    """A failed Boomerang RPC. Catch a subclass (`NotFound`, ...) to handle one status code."""

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(
        self,
        code: grpc.StatusCode,
        reason: str,
        message: str,
        field_violations: list[tuple[str, str]] | None = None,
        metadata: dict[str, str] | None = None,
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(code, reason, message, field_violations or [])
        self.code = code
        #: An ErrorReason value name, e.g. "ERROR_REASON_SLUG_TAKEN"; "" when the status had none.
        self.reason = reason
        self.message = message
        #: (field, description) pairs naming each invalid request field.
        self.field_violations: list[tuple[str, str]] = field_violations or []
        #: The ErrorInfo metadata, e.g. {"quota": "flows", "limit": "500", "used": "500"} for
        #: QUOTA_EXCEEDED.
        self.metadata: dict[str, str] = metadata or {}
        #: Seconds after which the server says the same request may be sent again (RetryInfo):
        #: nothing was done. None when it gave no such word.
        self.retry_delay = retry_delay

    def __str__(self) -> str:
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.code.name}{reason}: {self.message}"


class Cancelled(BoomerangError):
    code = grpc.StatusCode.CANCELLED


class Unknown(BoomerangError):
    code = grpc.StatusCode.UNKNOWN


class InvalidArgument(BoomerangError):
    code = grpc.StatusCode.INVALID_ARGUMENT


class DeadlineExceeded(BoomerangError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED


class NotFound(BoomerangError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(BoomerangError):
    code = grpc.StatusCode.ALREADY_EXISTS


class PermissionDenied(BoomerangError):
    code = grpc.StatusCode.PERMISSION_DENIED


class ResourceExhausted(BoomerangError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED


class FailedPrecondition(BoomerangError):
    code = grpc.StatusCode.FAILED_PRECONDITION


class Aborted(BoomerangError):
    code = grpc.StatusCode.ABORTED


class OutOfRange(BoomerangError):
    code = grpc.StatusCode.OUT_OF_RANGE


class Unimplemented(BoomerangError):
    code = grpc.StatusCode.UNIMPLEMENTED


class Internal(BoomerangError):
    code = grpc.StatusCode.INTERNAL


class Unavailable(BoomerangError):
    code = grpc.StatusCode.UNAVAILABLE


class DataLoss(BoomerangError):
    code = grpc.StatusCode.DATA_LOSS


class Unauthenticated(BoomerangError):
    code = grpc.StatusCode.UNAUTHENTICATED


_BY_CODE: dict[grpc.StatusCode, type[BoomerangError]] = {
    cls.code: cls
    for cls in (
        Cancelled,
        Unknown,
        InvalidArgument,
        DeadlineExceeded,
        NotFound,
        AlreadyExists,
        PermissionDenied,
        ResourceExhausted,
        FailedPrecondition,
        Aborted,
        OutOfRange,
        Unimplemented,
        Internal,
        Unavailable,
        DataLoss,
        Unauthenticated,
    )
}


@dataclass
class _Details:
    reason: str = ""
    violations: list[tuple[str, str]] = field(default_factory=list)
    metadata: dict[str, str] = field(default_factory=dict)
    retry_delay: float | None = None


def _details(err: grpc.RpcError) -> _Details:
    try:
        status = rpc_status.from_call(err)  # type: ignore[arg-type]
    except ValueError:  # trailers contradict the status line: trust the status line alone
        status = None
    found = _Details()
    for detail in status.details if status else ():
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == DOMAIN or not found.reason:
                found.reason, found.metadata = info.reason, dict(info.metadata)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            found.violations += [(v.field, v.description) for v in bad.field_violations]
        elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            retry = error_details_pb2.RetryInfo()
            detail.Unpack(retry)
            found.retry_delay = max(0.0, retry.retry_delay.ToTimedelta().total_seconds())
    return found


def from_rpc_error(err: grpc.RpcError) -> BoomerangError:
    """The typed error for a failed call (`err` is also a `grpc.Call`, as gRPC raises them)."""
    code: grpc.StatusCode = err.code()  # type: ignore[attr-defined]
    message: str = err.details() or ""  # type: ignore[attr-defined]
    d = _details(err)
    return _BY_CODE.get(code, BoomerangError)(
        code, d.reason, message, d.violations, d.metadata, d.retry_delay
    )
