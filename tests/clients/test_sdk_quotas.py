"""Quotas and paged versions through the SDK and the CLI."""

from __future__ import annotations

import asyncio

import pytest
from client_samples import CALLBACK_FLOW

from boomerang.sdk import Client, PermissionDenied, ResourceExhausted, definition_dict
from tests.clients.test_cli import cli  # noqa: F401 (the fixture)


def quotas_walkthrough(c: Client) -> None:
    c.create_company(name="Acme", slug="acme")
    assert c.get_quotas().flows == 500
    set_ = c.set_quotas("acme", flows=1, versions_kept=2)
    assert (set_.flows, set_.versions_kept, set_.environments) == (1, 2, 50)
    assert c.get_quotas("acme") == set_
    flow = c.create_flow("acme", "f", CALLBACK_FLOW).flow
    with pytest.raises(ResourceExhausted) as caught:
        c.create_flow("acme", "g")
    assert caught.value.reason == "ERROR_REASON_QUOTA_EXCEEDED"
    assert caught.value.metadata == {"quota": "flows", "limit": "1", "used": "1"}
    assert c.set_quotas("acme", flows=0).flows == 500  # back to the default
    assert c.set_quotas("acme", answer_bytes=1 << 20).answer_bytes == 1 << 20

    key = c.create_api_key("acme key", "acme").secret
    with Client(c.target, key) as own:
        assert own.get_quotas("acme").versions_kept == 2
        with pytest.raises(PermissionDenied):
            own.set_quotas("acme", flows=9)

    c.set_quotas("acme", versions_kept=50)
    for _ in range(12):
        c.deploy_version(flow.id)
    basic = list(c.list_versions(flow.id, page_size=5))
    assert [v.number for v in basic] == list(range(13, 0, -1))
    assert not any(v.HasField("definition") for v in basic)
    full = list(c.list_versions(flow.id, full=True))
    assert [v.number for v in full] == list(range(13, 0, -1))
    assert all(definition_dict(v) == CALLBACK_FLOW for v in full)


async def test_quotas_and_versions_through_the_sdk(client):
    await asyncio.to_thread(quotas_walkthrough, client)


async def test_quotas_through_the_cli(cli):  # noqa: F811
    await cli("companies", "create", "--slug", "acme", "--name", "Acme")
    assert (await cli("quotas", "get")).json()["flows"] == 500
    set_ = await cli("quotas", "set", "--company", "acme", "--flows", "2", "--runs-in-flight", "3")
    assert (set_.json()["flows"], set_.json()["runs_in_flight"]) == (2, 3)
    set_ = await cli("quotas", "set", "--company", "acme", "--answer-bytes", "1048576")
    assert set_.json()["answer_bytes"] == 1 << 20
    assert (await cli("quotas", "get", "--company", "acme")).json()["flows"] == 2
    flow = (await cli("flows", "create", "--company", "acme", "--name", "f")).json()
    await cli("flows", "create", "--company", "acme", "--name", "g")
    refused = await cli("flows", "create", "--company", "acme", "--name", "h")
    assert refused.code == 1
    assert refused.stderr.startswith("error: RESOURCE_EXHAUSTED (ERROR_REASON_QUOTA_EXCEEDED): ")
    await cli("flows", "deploy", flow["flow"]["id"])
    versions = (await cli("flows", "versions", flow["flow"]["id"])).json()
    assert [(v["number"], "definition" in v) for v in versions] == [(2, False), (1, False)]
    full = (await cli("flows", "versions", flow["flow"]["id"], "--full")).json()
    assert all(v["definition"]["shapes"][0]["type"] == "trigger" for v in full)
