"""A connection's credentials, put on a request: basic, bearer, API key, OAuth2.

Credentials are set last, over whatever the flow's headers and query say, so a flow cannot
replace or read them (expressions never see them: they are not in the run's context).
"""

from __future__ import annotations

import base64

from control_plane.outbound.credentials import (
    ApiKeyCredentials,
    BasicCredentials,
    BearerCredentials,
    OAuth2ClientCredentials,
    ResolvedConnection,
)
from control_plane.outbound.oauth2 import TokenCache


async def authorize(
    connection: ResolvedConnection,
    headers: dict[str, str],
    query: list[tuple[str, str]],
    tokens: TokenCache,
    timeout_s: float,
) -> str:
    """Adds the connection's credentials to `headers` (lowercase names) and `query`. Returns the
    OAuth2 access token used ("" for other kinds), so a 401 can drop it."""
    credentials = connection.credentials
    if credentials is None:
        return ""
    if isinstance(credentials, BasicCredentials):
        pair = f"{credentials.username}:{credentials.password}".encode()
        headers["authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    elif isinstance(credentials, BearerCredentials):
        headers["authorization"] = f"Bearer {credentials.token}"
    elif isinstance(credentials, ApiKeyCredentials):
        if credentials.location == "header":
            headers[credentials.name.lower()] = credentials.value
        else:
            query[:] = [(k, v) for k, v in query if k != credentials.name]
            query.append((credentials.name, credentials.value))
    elif isinstance(credentials, OAuth2ClientCredentials):
        token = await tokens.token(key(connection), credentials, timeout_s)
        headers["authorization"] = f"Bearer {token}"
        return token
    else:  # a kind this runner does not know: never call without what the connection asks for
        raise TypeError(f"unsupported credentials {type(credentials).__name__}")
    return ""


def key(connection: ResolvedConnection) -> tuple[str, str]:
    """What caches (tokens, rate limits) are keyed by: an update starts them afresh."""
    return (connection.id, connection.revision)
