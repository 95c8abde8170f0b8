"""Domain errors. Each names its gRPC-independent kind and an ErrorReason value name."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass, field

#: How much of a caller's own input an error may quote back (docs/errors.md).
MAX_ECHO_CHARS = 100


def echo(value: object) -> str:
    """`value` quoted for an error message, cut to MAX_ECHO_CHARS with an ellipsis.

    Callers are untrusted: a 1 MB slug quoted whole would make the error itself undeliverable
    (gRPC refuses trailing metadata over 16 KB), so every quoted input goes through here.
    """
    text = repr(value)
    if len(text) > MAX_ECHO_CHARS:
        return text[: MAX_ECHO_CHARS - 1] + "…"
    return text


@dataclass
class DomainError(Exception):
    kind: str  # invalid_argument | not_found | already_exists | failed_precondition | ...
    reason: str  # an ErrorReason value name without the ERROR_REASON_ prefix
    message: str
    violations: list[tuple[str, str]] = field(default_factory=list)
    _: KW_ONLY
    #: ErrorInfo metadata, e.g. a quota's name and limit.
    metadata: dict[str, str] = field(default_factory=dict)
    omitted: int = 0  # further violations found but not kept (Violations.MAX_KEPT)
    #: Seconds after which the same request may be sent again (google.rpc.RetryInfo): only for
    #: a refusal made before anything was done, which a retry cannot repeat. 0: no hint.
    retry_after_s: float = 0.0

    def __str__(self) -> str:
        return self.message


def invalid(
    violations: list[tuple[str, str]], reason: str = "INVALID_ARGUMENT", omitted: int = 0
) -> DomainError:
    # The message names the first few; the BadRequest detail lists them (bounded, grpckit/status).
    text = "; ".join(f"{f}: {d}" for f, d in violations[:3])
    more = len(violations) + omitted - 3
    if more > 0:
        text += f"; and {more} more"
    return DomainError(
        "invalid_argument", reason, f"invalid request: {text}", violations, omitted=omitted
    )


def not_found(what: str, reason: str) -> DomainError:
    return DomainError("not_found", reason, f"{what} not found")


def already_exists(message: str, reason: str) -> DomainError:
    return DomainError("already_exists", reason, message)


def failed_precondition(message: str, reason: str) -> DomainError:
    return DomainError("failed_precondition", reason, message)


def permission_denied(message: str, reason: str) -> DomainError:
    return DomainError("permission_denied", reason, message)


def resource_exhausted(
    message: str, reason: str, metadata: dict[str, str], retry_after_s: float = 0.0
) -> DomainError:
    return DomainError(
        "resource_exhausted", reason, message, metadata=metadata, retry_after_s=retry_after_s
    )


def unauthenticated(message: str, reason: str) -> DomainError:
    return DomainError("unauthenticated", reason, message)


class Violations:
    """Collects every field violation of a request before failing, so callers fix all at once.

    Only the first MAX_KEPT are kept, the rest counted: a 16 MB request of a million bad
    field-mask entries must not cost a million violations' worth of memory to refuse.
    """

    MAX_KEPT = 100

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []
        self.dropped = 0

    def add(self, field_path: str, description: str) -> None:
        if len(self.items) < self.MAX_KEPT:
            self.items.append((field_path, description))
        else:
            self.dropped += 1

    def raise_if_any(self, reason: str = "INVALID_ARGUMENT") -> None:
        if self.items:
            raise invalid(self.items, reason, self.dropped)
