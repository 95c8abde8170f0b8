"""A connection's credentials, each kind, on real calls: what the upstream receives; OAuth2
tokens fetched once, cached, refreshed; credentials kept from other origins; rate limits."""

from __future__ import annotations

import asyncio
import base64
import time
from typing import Any
from urllib.parse import parse_qsl

import pytest

from boomerang.local import free_port
from control_plane.engine import (
    Progress,
    RunState,
    ShapeFailed,
    run_async_shape,
    validate_definition,
)
from control_plane.engine.budgets import Budgets, Meter
from control_plane.outbound.credentials import (
    ApiKeyCredentials,
    BasicCredentials,
    BearerCredentials,
    OAuth2ClientCredentials,
    ResolvedConnection,
)
from control_plane.outbound.ratelimit import RateLimiter, RateLimitWait
from tests.outbound.conftest import make_outbound
from tests.outbound.test_connector_shape import INPUT
from tests.outbound.upstream import Reply, Seen, Upstream


def connection(base_url: str, credentials=None, **kw) -> ResolvedConnection:
    fields: dict[str, Any] = {
        "id": "conn-1",
        "company": "acme",
        "name": "erp",
        "base_url": base_url,
        "default_headers": (("X-Tenant", "acme"),),
        "timeout_s": 5.0,
        "rate_limit_per_minute": 0,
        "credentials": credentials,
        "revision": "conn-1.1",
    }
    fields.update(kw)
    return ResolvedConnection(**fields)


async def call_once(outbound, *, payloads=({"a": 1},), deadline_s: float = 30.0, **fields):
    """Runs one connector shape on connection "erp"; returns the new bucket."""
    shape = {"id": "call", "type": "connector", "connection": "erp", "path": "/api", **fields}
    definition = validate_definition({"shapes": [{"id": "t", "type": "trigger"}, shape]})
    progress = Progress(position=1, bucket=list(payloads))
    meter = Meter(Budgets(), deadline=time.monotonic() + deadline_s)
    await run_async_shape(definition, progress, RunState(INPUT, meter, outbound))
    return progress.bucket


@pytest.fixture
async def closing():
    clients = []
    yield clients.append
    for client in clients:
        await client.aclose()


def outbound_for(conn, closing, **settings):
    client = make_outbound(connections={("acme", "erp"): conn}, **settings)
    closing(client)
    return client


def echo(seen: Seen) -> Reply:
    return Reply(200, {"auth": seen.headers.get("authorization"), "query": seen.query})


async def test_no_credentials_default_headers(upstream, closing):
    upstream.route("/api", echo)
    client = outbound_for(connection(upstream.url), closing)
    [answer] = await call_once(client)
    assert answer == {"auth": None, "query": []}
    assert upstream.requests("/api")[0].headers["x-tenant"] == "acme"


async def test_basic(upstream, closing):
    upstream.route("/api", echo)
    client = outbound_for(connection(upstream.url, BasicCredentials("ann", "s3cret:x")), closing)
    [answer] = await call_once(client)
    assert answer["auth"] == "Basic " + base64.b64encode(b"ann:s3cret:x").decode()


async def test_bearer_overrides_the_flows_header(upstream, closing):
    upstream.route("/api", echo)
    client = outbound_for(connection(upstream.url, BearerCredentials("tok-9")), closing)
    [answer] = await call_once(client, headers={"Authorization": "'Bearer forged'"})
    assert answer["auth"] == "Bearer tok-9"


async def test_api_key_in_a_header(upstream, closing):
    upstream.route("/api", echo)
    creds = ApiKeyCredentials("X-Api-Key", "header", "k-123")
    client = outbound_for(connection(upstream.url, creds), closing)
    await call_once(client, headers={"x-api-key": "'forged'"})
    assert upstream.requests("/api")[0].headers["x-api-key"] == "k-123"


async def test_api_key_in_the_query(upstream, closing):
    upstream.route("/api", echo)
    creds = ApiKeyCredentials("api_key", "query", "k-456")
    client = outbound_for(connection(upstream.url, creds), closing)
    [answer] = await call_once(client, query={"api_key": "'forged'", "q": "'1'"})
    assert answer["query"] == [["q", "1"], ["api_key", "k-456"]]


async def test_credentials_do_not_follow_a_redirect_to_another_origin(upstream, closing):
    other = Upstream()
    try:
        other.route("/landing", echo)
        upstream.route("/api", Reply(307, "", {"Location": f"{other.url}/landing"}))
        creds = ApiKeyCredentials("X-Api-Key", "header", "k-123")
        client = outbound_for(connection(upstream.url, creds), closing)
        await call_once(client)
        [seen] = other.requests("/landing")
        assert "x-api-key" not in seen.headers and "authorization" not in seen.headers
        assert seen.headers["idempotency-key"] == "run-1.call"
    finally:
        other.close()


class TokenServer:
    """The upstream's /token: client credentials checked, a numbered token each time."""

    def __init__(self, upstream: Upstream, expires_in: int = 3600) -> None:
        self.issued = 0
        self.expires_in = expires_in
        upstream.route("/token", self.token)

    def token(self, seen: Seen) -> Reply:
        form = dict(parse_qsl(seen.body.decode()))
        good = "Basic " + base64.b64encode(b"client-1:secret-1").decode()
        if seen.headers.get("authorization") != good or form.get("grant_type") != (
            "client_credentials"
        ):
            return Reply(401, {"error": "invalid_client"})
        self.issued += 1
        return Reply(
            200,
            {
                "access_token": f"tok-{self.issued}",
                "token_type": "Bearer",
                "expires_in": self.expires_in,
                "scope": form.get("scope"),
                "audience": form.get("audience"),
            },
        )


def oauth2(upstream: Upstream, secret: str = "secret-1", url: str = "") -> OAuth2ClientCredentials:
    return OAuth2ClientCredentials(
        token_url=url or f"{upstream.url}/token",
        client_id="client-1",
        client_secret=secret,
        scopes=("read", "write"),
        audience="erp-api",
    )


async def test_oauth2_token_fetched_once_and_cached(upstream, closing):
    tokens = TokenServer(upstream)
    upstream.route("/api", echo)
    client = outbound_for(connection(upstream.url, oauth2(upstream)), closing)
    bucket = await call_once(client, payloads=[1, 2, 3], per="payload")
    assert [a["auth"] for a in bucket] == ["Bearer tok-1"] * 3
    await call_once(client)
    assert tokens.issued == 1 and client.tokens.fetches == 1
    [token_request] = upstream.requests("/token")
    form = dict(parse_qsl(token_request.body.decode()))
    assert form == {
        "grant_type": "client_credentials",
        "scope": "read write",
        "audience": "erp-api",
    }
    assert token_request.headers["accept-encoding"] == "identity"


async def test_oauth2_token_refreshed_when_it_expires(upstream, closing):
    tokens = TokenServer(upstream, expires_in=31)  # usable for 1 s: 30 s of leeway
    upstream.route("/api", echo)
    client = outbound_for(connection(upstream.url, oauth2(upstream)), closing)
    [first] = await call_once(client)
    await asyncio.sleep(1.1)
    [second] = await call_once(client)
    assert (first["auth"], second["auth"]) == ("Bearer tok-1", "Bearer tok-2")
    assert tokens.issued == 2


async def test_oauth2_a_new_revision_fetches_a_new_token(upstream, closing):
    tokens = TokenServer(upstream)
    upstream.route("/api", echo)
    conns = {("acme", "erp"): connection(upstream.url, oauth2(upstream))}

    async def resolve(company, name):
        return conns.get((company, name))

    client = make_outbound()
    client.resolve = resolve
    closing(client)
    await call_once(client)
    conns[("acme", "erp")] = connection(upstream.url, oauth2(upstream), revision="conn-1.2")
    [answer] = await call_once(client)
    assert answer["auth"] == "Bearer tok-2" and tokens.issued == 2


async def test_oauth2_a_refused_token_is_fetched_again_once(upstream, closing):
    tokens = TokenServer(upstream)
    upstream.route(
        "/api",
        lambda seen: (
            Reply(401, {"error": "revoked"})
            if seen.headers.get("authorization") == "Bearer tok-1"
            else echo(seen)
        ),
    )
    client = outbound_for(connection(upstream.url, oauth2(upstream)), closing)
    [answer] = await call_once(client)
    assert answer["auth"] == "Bearer tok-2" and tokens.issued == 2


async def test_oauth2_token_endpoint_refusal_fails_the_shape(upstream, closing):
    TokenServer(upstream)
    upstream.route("/api", echo)
    client = outbound_for(connection(upstream.url, oauth2(upstream, secret="wrong")), closing)
    with pytest.raises(ShapeFailed) as caught:
        await call_once(client)
    assert caught.value.error_type == "oauth2_token"
    assert "invalid_client" in str(caught.value)
    assert "wrong" not in str(caught.value)
    assert upstream.requests("/api") == []


async def test_oauth2_token_endpoint_obeys_the_egress_rule(upstream, closing):
    inner = Upstream("127.0.0.2")
    try:
        TokenServer(inner)
        upstream.route("/api", echo)
        creds = oauth2(upstream, url=f"{inner.url}/token")
        client = outbound_for(connection(upstream.url, creds), closing)
        with pytest.raises(ShapeFailed) as caught:
            await call_once(client)
        assert caught.value.error_type == "egress_refused"
        assert "127.0.0.2" in str(caught.value)
        assert inner.requests("/token") == []
    finally:
        inner.close()


def test_rate_limiter_spaces_calls_and_refuses_past_the_deadline():
    limiter = RateLimiter()
    key = ("conn-1", "r1")
    far = time.monotonic() + 100
    waits = [limiter.reserve(key, 120, far) for _ in range(3)]  # one every 0.5 s
    assert waits[0] == 0.0
    assert waits[1] == pytest.approx(0.5, abs=0.05)
    assert waits[2] == pytest.approx(1.0, abs=0.05)
    assert limiter.reserve(("other", "r1"), 120, far) == 0.0  # per connection
    assert limiter.reserve(key, 0, far) == 0.0  # 0: no limit
    with pytest.raises(RateLimitWait):
        limiter.reserve(key, 120, time.monotonic() + 0.2)


async def test_rate_limit_past_the_runs_time_fails_the_call(upstream, closing):
    upstream.route("/api", echo)
    client = outbound_for(connection(upstream.url, rate_limit_per_minute=1), closing)
    with pytest.raises(ShapeFailed) as caught:
        await call_once(client, payloads=[1, 2], per="payload", deadline_s=5)
    assert caught.value.error_type == "rate_limited"
    assert len(upstream.requests("/api")) == 1


async def test_rate_limited_calls_wait_their_turn(upstream, closing):
    upstream.route("/api", echo)
    client = outbound_for(connection(upstream.url, rate_limit_per_minute=600), closing)
    bucket = await call_once(client, payloads=[1, 2, 3], per="payload")
    assert len(bucket) == 3 and len(upstream.requests("/api")) == 3


async def test_oauth2_token_endpoint_down_fails_the_shape_clearly(upstream, closing):
    port = free_port()  # nothing listens there
    upstream.route("/api", echo)
    creds = oauth2(upstream, url=f"http://127.0.0.1:{port}/token")
    client = outbound_for(connection(upstream.url, creds), closing)
    with pytest.raises(ShapeFailed) as caught:
        await call_once(client)
    assert caught.value.error_type == "oauth2_token"
    assert "cannot reach the OAuth2 token endpoint" in str(caught.value)
    assert upstream.requests("/api") == []


async def test_a_shape_may_lower_the_connections_timeout_not_raise_it(upstream, closing):
    upstream.route("/api", Reply(200, "late", delay_s=1.0))
    client = outbound_for(connection(upstream.url, timeout_s=0.3), closing)
    with pytest.raises(ShapeFailed, match=r"within 0\.3 s"):
        await call_once(client, timeout_s=5)
    client = outbound_for(connection(upstream.url, timeout_s=5.0), closing)
    with pytest.raises(ShapeFailed, match=r"within 0\.2 s"):
        await call_once(client, timeout_s=0.2)
