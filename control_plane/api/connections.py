"""ConnectionService (docs/connections.md).

Answers never carry a secret: `connection` builds every Connection message from the row's
public credentials (secrets empty) and says with `secret_set` whether one is stored.
"""

from __future__ import annotations

from google.protobuf import duration_pb2

from boomerang.v1 import connection_service_pb2 as cs
from boomerang.v1 import connection_service_pb2_grpc as cs_grpc
from control_plane.domain import connections
from control_plane.domain.errors import invalid
from control_plane.grpckit.convert import ts
from control_plane.grpckit.servicer import Servicer
from control_plane.outbound.credentials import (
    ApiKeyCredentials,
    BasicCredentials,
    BearerCredentials,
    Credentials,
    OAuth2ClientCredentials,
)
from control_plane.store.models import Connection

LOCATIONS = {
    cs.API_KEY_LOCATION_UNSPECIFIED: "header",
    cs.API_KEY_LOCATION_HEADER: "header",
    cs.API_KEY_LOCATION_QUERY: "query",
}
LOCATION_VALUES = {"header": cs.API_KEY_LOCATION_HEADER, "query": cs.API_KEY_LOCATION_QUERY}


def _timeout_ms(d: duration_pb2.Duration, given: bool) -> int:
    """The timeout in whole milliseconds; 0 when unset (the domain checks the range)."""
    if not given:
        return 0
    if d.nanos % 1_000_000 or d.seconds < 0 or d.nanos < 0:
        raise invalid([("timeout", "must be between 0.1 s and 60 s, in whole milliseconds")])
    return d.seconds * 1000 + d.nanos // 1_000_000


def _credentials(auth: cs.ConnectionAuth) -> Credentials | None:
    kind = auth.WhichOneof("kind")
    if kind == "basic":
        return BasicCredentials(auth.basic.username, auth.basic.password)
    if kind == "bearer":
        return BearerCredentials(auth.bearer.token)
    if kind == "api_key":
        location = LOCATIONS.get(auth.api_key.location)
        if location is None:
            raise invalid([("auth.api_key.location", "must be HEADER or QUERY")])
        return ApiKeyCredentials(auth.api_key.name, location, auth.api_key.value)
    if kind == "oauth2_client_credentials":
        o = auth.oauth2_client_credentials
        return OAuth2ClientCredentials(
            o.token_url, o.client_id, o.client_secret, tuple(o.scopes), o.audience
        )
    return None


def _settings(request, mask: list[str] | None = None) -> connections.Settings:
    """The request's settings; with an update's `mask`, fields it does not name are not read
    (a value there changes nothing, so it cannot be refused either)."""

    def named(path: str) -> bool:
        return mask is None or path in mask

    return connections.Settings(
        name=request.name,
        base_url=request.base_url,
        default_headers=tuple(request.default_headers.items()),
        timeout_ms=_timeout_ms(request.timeout, named("timeout") and request.HasField("timeout")),
        rate_limit_per_minute=request.rate_limit_per_minute,
        credentials=_credentials(request.auth) if named("auth") else None,
    )


def _auth(c: Credentials | None) -> cs.ConnectionAuth:
    """The kind and non-secret fields only: the secret is never copied into a message."""
    if isinstance(c, BasicCredentials):
        return cs.ConnectionAuth(basic=cs.BasicAuth(username=c.username))
    if isinstance(c, BearerCredentials):
        return cs.ConnectionAuth(bearer=cs.BearerAuth())
    if isinstance(c, ApiKeyCredentials):
        return cs.ConnectionAuth(
            api_key=cs.ApiKeyAuth(name=c.name, location=LOCATION_VALUES[c.location])
        )
    if isinstance(c, OAuth2ClientCredentials):
        return cs.ConnectionAuth(
            oauth2_client_credentials=cs.OAuth2ClientCredentials(
                token_url=c.token_url, client_id=c.client_id, scopes=c.scopes, audience=c.audience
            )
        )
    return cs.ConnectionAuth()


def connection(row: Connection) -> cs.Connection:
    timeout = duration_pb2.Duration()
    timeout.FromMilliseconds(row.timeout_ms)
    return cs.Connection(
        id=row.id,
        company=row.company.slug,
        name=row.name,
        base_url=row.base_url,
        default_headers=dict(connections.default_headers(row)),
        timeout=timeout,
        rate_limit_per_minute=row.rate_limit_per_minute,
        auth=_auth(connections.public_credentials(row)),
        secret_set=row.secret_sealed is not None,
        create_time=ts(row.created_at),
        update_time=ts(row.updated_at),
    )


class ConnectionServicer(Servicer, cs_grpc.ConnectionServiceServicer):
    # No call passes writes=True: that wakes the change feed for edges, and connections record
    # no change (edges never learn of them).

    async def CreateConnection(self, request, context):
        def fn(p):
            row = connections.create_connection(p, request.company, _settings(request))
            return cs.CreateConnectionResponse(connection=connection(row))

        return await self.call(context, fn)

    async def GetConnection(self, request, context):
        return await self.call(
            context,
            lambda p: cs.GetConnectionResponse(
                connection=connection(connections.get_connection(p, request.id))
            ),
        )

    async def ListConnections(self, request, context):
        def fn(p):
            rows, token = connections.list_connections(
                p, request.company, request.page_size, request.page_token
            )
            return cs.ListConnectionsResponse(
                connections=[connection(row) for row in rows], next_page_token=token
            )

        return await self.call(context, fn)

    async def UpdateConnection(self, request, context):
        def fn(p):
            mask = list(request.update_mask)
            row = connections.update_connection(p, request.id, _settings(request, mask), mask)
            return cs.UpdateConnectionResponse(connection=connection(row))

        return await self.call(context, fn)

    async def DeleteConnection(self, request, context):
        def fn(p):
            connections.delete_connection(p, request.id)
            return cs.DeleteConnectionResponse()

        return await self.call(context, fn)
