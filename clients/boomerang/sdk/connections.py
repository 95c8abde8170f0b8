"""Connections: named upstream systems that connector shapes call (docs/connections.md).

Credentials are write-only: answers keep their kind and non-secret fields, never the password,
token, key value or client secret (`Connection.secret_set` says one is stored). Build them with
`basic_auth`, `bearer_auth`, `api_key_auth` or `oauth2_client_credentials`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

from google.protobuf import duration_pb2

from boomerang.sdk.transport import Transport
from boomerang.v1 import connection_service_pb2 as cs

#: `update_connection(id, auth=NO_AUTH)` removes the credentials.
NO_AUTH = cs.ConnectionAuth()
API_KEY_LOCATIONS = {"header": cs.API_KEY_LOCATION_HEADER, "query": cs.API_KEY_LOCATION_QUERY}


def basic_auth(username: str, password: str) -> cs.ConnectionAuth:
    return cs.ConnectionAuth(basic=cs.BasicAuth(username=username, password=password))


def bearer_auth(token: str) -> cs.ConnectionAuth:
    """`Authorization: Bearer <token>`."""
    return cs.ConnectionAuth(bearer=cs.BearerAuth(token=token))


def api_key_auth(name: str, value: str, location: str = "header") -> cs.ConnectionAuth:
    """An API key in the header (or, with location "query", the query parameter) `name`."""
    if location not in API_KEY_LOCATIONS:
        raise ValueError(f"location must be 'header' or 'query', not {location!r}")
    return cs.ConnectionAuth(
        api_key=cs.ApiKeyAuth(name=name, location=API_KEY_LOCATIONS[location], value=value)
    )


def oauth2_client_credentials(
    token_url: str,
    client_id: str,
    client_secret: str,
    scopes: Sequence[str] = (),
    audience: str = "",
) -> cs.ConnectionAuth:
    """OAuth 2.0 client credentials: the runner fetches (and caches) the token itself."""
    return cs.ConnectionAuth(
        oauth2_client_credentials=cs.OAuth2ClientCredentials(
            token_url=token_url,
            client_id=client_id,
            client_secret=client_secret,
            scopes=list(scopes),
            audience=audience,
        )
    )


def _duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMilliseconds(round(seconds * 1000))
    return d


class ConnectionMethods(Transport):
    def create_connection(
        self,
        company: str,
        name: str,
        base_url: str,
        *,
        default_headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        rate_limit_per_minute: int = 0,
        auth: cs.ConnectionAuth | None = None,
    ) -> cs.Connection:
        """A new connection of `company`. `name` has a slug's syntax and is what connector
        shapes name; `timeout_s` 0.1 to 60 (None: 30); `rate_limit_per_minute` 0 is unlimited;
        `auth` None means no credentials. AlreadyExists when the name is taken,
        ResourceExhausted past the company's `connections` quota."""
        request = cs.CreateConnectionRequest(
            company=company,
            name=name,
            base_url=base_url,
            default_headers=dict(default_headers or {}),
            timeout=None if timeout_s is None else _duration(timeout_s),
            rate_limit_per_minute=rate_limit_per_minute,
            auth=auth,
        )
        return self._call(self._connections.CreateConnection, request).connection

    def get_connection(self, id: str) -> cs.Connection:
        request = cs.GetConnectionRequest(id=id)
        return self._call(self._connections.GetConnection, request).connection

    def list_connections(self, company: str, *, page_size: int = 0) -> Iterator[cs.Connection]:
        """The company's connections, in creation order."""
        request = cs.ListConnectionsRequest(company=company, page_size=page_size)
        return self._pages(self._connections.ListConnections, request, "connections")

    def update_connection(
        self,
        id: str,
        *,
        name: str | None = None,
        base_url: str | None = None,
        default_headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
        rate_limit_per_minute: int | None = None,
        auth: cs.ConnectionAuth | None = None,
    ) -> cs.Connection:
        """Changes the fields given (and only those: they make the update mask).

        `default_headers` replaces them all ({} clears them); `timeout_s` 0 means the default;
        `auth` replaces the credentials whole, secret included (NO_AUTH removes them); without
        `auth` the stored secret is kept."""
        request = cs.UpdateConnectionRequest(id=id)
        if name is not None:
            request.name = name
            request.update_mask.append("name")
        if base_url is not None:
            request.base_url = base_url
            request.update_mask.append("base_url")
        if default_headers is not None:
            request.default_headers.update(default_headers)
            request.update_mask.append("default_headers")
        if timeout_s is not None:
            if timeout_s:
                request.timeout.CopyFrom(_duration(timeout_s))
            request.update_mask.append("timeout")
        if rate_limit_per_minute is not None:
            request.rate_limit_per_minute = rate_limit_per_minute
            request.update_mask.append("rate_limit_per_minute")
        if auth is not None:
            request.auth.CopyFrom(auth)
            request.update_mask.append("auth")
        return self._call(self._connections.UpdateConnection, request).connection

    def delete_connection(self, id: str) -> None:
        """Flows naming it fail at their connector shape from then on."""
        self._call(self._connections.DeleteConnection, cs.DeleteConnectionRequest(id=id))
