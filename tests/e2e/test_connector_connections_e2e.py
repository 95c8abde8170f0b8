"""Connections end to end, real processes: a connection created through the API (its secret
sealed in the store), a flow's connector naming it, the runner resolving it and calling the
upstream with its credentials; an update of the credentials used by the next run."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from urllib.parse import parse_qsl

import httpx
import pytest
from google.protobuf import duration_pb2

from boomerang.v1 import connection_service_pb2 as cn
from boomerang.v1 import connection_service_pb2_grpc as cn_grpc
from tests.e2e.conftest import Api, eventually, shapes, start_stack
from tests.outbound.upstream import Reply, Seen, Upstream

pytestmark = pytest.mark.e2e


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


def _get(stack, cb, **params) -> httpx.Response:
    url = f"{stack.edge_url}/api/v1/acme/{cb.id}"
    with httpx.Client(timeout=30) as http:
        return http.get(url, params={"patchworks_signature": cb.signature, **params})


def _ready(stack, cb, **params) -> httpx.Response:
    answers: list[httpx.Response] = []

    def check() -> bool:
        answers.append(_get(stack, cb, **params))
        return answers[-1].status_code != 503

    eventually(check, timeout=20, interval=0.2)
    return answers[-1]


def echo(seen: Seen) -> Reply:
    return Reply(
        200,
        {
            "sku": dict(seen.query).get("sku"),
            "key": seen.headers.get("x-api-key"),
            "auth": seen.headers.get("authorization"),
            "tenant": seen.headers.get("x-tenant"),
        },
    )


def token(seen: Seen) -> Reply:
    form = dict(parse_qsl(seen.body.decode()))
    good = "Basic " + base64.b64encode(b"client-1:secret-1").decode()
    if seen.headers.get("authorization") != good or form.get("grant_type") != "client_credentials":
        return Reply(401, {"error": "invalid_client"})
    return Reply(200, {"access_token": "tok-from-idp", "token_type": "Bearer", "expires_in": 600})


def test_a_connection_created_through_the_api_is_called_with_its_credentials(
    tmp_path, stack_database, upstream
):
    upstream.route("/erp/stock", echo)
    upstream.route("/idp/token", token)
    upstream.route("/api/orders", echo)
    stack = start_stack(
        tmp_path,
        database_url=stack_database,
        extra_env={"BOOMERANG_EGRESS_ALLOW": "127.0.0.1/32"},
    )
    api = Api(stack.control_target)
    connections = cn_grpc.ConnectionServiceStub(api.channel)
    try:
        api.company("acme")
        erp = connections.CreateConnection(
            cn.CreateConnectionRequest(
                company="acme",
                name="erp",
                base_url=f"{upstream.url}/erp",
                default_headers={"X-Tenant": "acme"},
                timeout=duration_pb2.Duration(seconds=5),
                auth=cn.ConnectionAuth(
                    api_key=cn.ApiKeyAuth(
                        name="X-Api-Key", location=cn.API_KEY_LOCATION_HEADER, value="k-123"
                    )
                ),
            ),
            metadata=api.md,
        ).connection
        connections.CreateConnection(
            cn.CreateConnectionRequest(
                company="acme",
                name="shop",
                base_url=f"{upstream.url}/api",
                auth=cn.ConnectionAuth(
                    oauth2_client_credentials=cn.OAuth2ClientCredentials(
                        token_url=f"{upstream.url}/idp/token",
                        client_id="client-1",
                        client_secret="secret-1",
                    )
                ),
            ),
            metadata=api.md,
        )
        flow, cb = api.flow_with_callback(
            "acme",
            "f",
            shapes(
                {
                    "id": "stock",
                    "type": "connector",
                    "connection": "erp",
                    "path": "/stock",
                    "query": {"sku": "payload.sku"},
                },
                {
                    "id": "order",
                    "type": "connector",
                    "connection": "shop",
                    "path": "/orders",
                    "method": "POST",
                    "body": "{sku: payload.sku}",
                    "output": "response",
                },
                {
                    "id": "both",
                    "type": "map",
                    "expression": "{status: payload.status, body: payload.body}",
                },
                callback={"unwrap": True},
            ),
            timeout_ms=20_000,
        )
        api.deploy(flow.id)
        response = _ready(stack, cb, sku="XYZ-9")
        assert response.status_code == 200, response.text
        assert response.json() == {
            "status": 200,
            "body": {"sku": None, "key": None, "auth": "Bearer tok-from-idp", "tenant": None},
        }
        stock = upstream.requests("/erp/stock")[-1]
        assert stock.headers["x-api-key"] == "k-123" and stock.headers["x-tenant"] == "acme"
        assert dict(stock.query) == {"sku": "XYZ-9"}

        # New credentials: the next run uses them.
        connections.UpdateConnection(
            cn.UpdateConnectionRequest(
                id=erp.id,
                auth=cn.ConnectionAuth(
                    api_key=cn.ApiKeyAuth(
                        name="X-Api-Key", location=cn.API_KEY_LOCATION_HEADER, value="k-456"
                    )
                ),
                update_mask=["auth"],
            ),
            metadata=api.md,
        )
        again = _get(stack, cb, sku="B")
        assert again.status_code == 200, again.text
        assert upstream.requests("/erp/stock")[-1].headers["x-api-key"] == "k-456"

        # Deleted: the run fails naming the connection.
        connections.DeleteConnection(cn.DeleteConnectionRequest(id=erp.id), metadata=api.md)
        gone = _get(stack, cb, sku="C")
        assert gone.status_code == 502 and gone.json()["error"] == "flow_failed"
    finally:
        api.channel.close()
        stack.stop()
