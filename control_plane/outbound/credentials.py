"""A connection as the runner uses it: where to call and with which credentials, secrets opened.

The store keeps connections (control_plane.domain.connections) with their secrets sealed; the
runner resolves a connector shape's `connection` name to one of these just before a call. These
objects never leave the runner: no RPC returns them and no log prints them (their repr hides the
secrets).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, slots=True)
class BasicCredentials:
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class BearerCredentials:
    token: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class ApiKeyCredentials:
    name: str
    location: Literal["header", "query"]
    value: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class OAuth2ClientCredentials:
    token_url: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...] = ()
    audience: str = ""


Credentials = BasicCredentials | BearerCredentials | ApiKeyCredentials | OAuth2ClientCredentials


@dataclass(frozen=True, slots=True)
class ResolvedConnection:
    id: str
    company: str  # slug
    name: str
    base_url: str
    default_headers: tuple[tuple[str, str], ...]
    timeout_s: float
    rate_limit_per_minute: int  # 0: unlimited
    credentials: Credentials | None
    # Changes whenever the connection is updated: caches keyed on it (OAuth2 tokens, rate
    # limiters) start afresh after an update.
    revision: str
