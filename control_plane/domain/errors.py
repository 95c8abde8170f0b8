"""Domain errors. Each names its gRPC-independent kind and an ErrorReason value name."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DomainError(Exception):
    kind: str  # invalid_argument | not_found | already_exists | failed_precondition | ...
    reason: str  # an ErrorReason value name without the ERROR_REASON_ prefix
    message: str
    violations: list[tuple[str, str]] = field(default_factory=list)
    #: ErrorInfo metadata, e.g. a quota's name and limit.
    metadata: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def invalid(violations: list[tuple[str, str]], reason: str = "INVALID_ARGUMENT") -> DomainError:
    text = "; ".join(f"{f}: {d}" for f, d in violations)
    return DomainError("invalid_argument", reason, f"invalid request: {text}", violations)


def not_found(what: str, reason: str) -> DomainError:
    return DomainError("not_found", reason, f"{what} not found")


def already_exists(message: str, reason: str) -> DomainError:
    return DomainError("already_exists", reason, message)


def failed_precondition(message: str, reason: str) -> DomainError:
    return DomainError("failed_precondition", reason, message)


def permission_denied(message: str, reason: str) -> DomainError:
    return DomainError("permission_denied", reason, message)


def resource_exhausted(message: str, reason: str, metadata: dict[str, str]) -> DomainError:
    return DomainError("resource_exhausted", reason, message, metadata=metadata)


def unauthenticated(message: str, reason: str) -> DomainError:
    return DomainError("unauthenticated", reason, message)


class Violations:
    """Collects every field violation of a request before failing, so callers fix all at once."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str]] = []

    def add(self, field_path: str, description: str) -> None:
        self.items.append((field_path, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise invalid(self.items)
