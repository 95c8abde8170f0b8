"""The SDK against the real control plane: the whole life of a callback, then every list."""

from __future__ import annotations

import asyncio

import pytest
from client_samples import CALLBACK_FLOW

from boomerang.sdk import Client, NotFound, definition_dict
from boomerang.v1 import resources_pb2 as r
from tests.conftest import ADMIN_KEY


def walkthrough(c: Client) -> None:
    company = c.create_company(name="Acme", slug="acme")
    assert (company.slug, company.name, len(company.id)) == ("acme", "Acme", 26)
    assert c.get_company("acme") == company

    env = c.create_environment("acme", "UK live", "uk-live")
    assert c.get_environment(env.id).url_prefix == "uk-live"

    created = c.create_flow("acme", "stock")
    flow = created.flow
    assert created.draft.number == 1 and created.draft.state == r.VERSION_STATE_DRAFT
    assert c.get_flow(flow.id).name == "stock"

    saved = c.update_draft(flow.id, CALLBACK_FLOW, number=1)
    assert saved.has_callback
    # Integers come back as ints, not as the doubles a Struct stores.
    assert definition_dict(saved) == CALLBACK_FLOW
    assert isinstance(definition_dict(c.get_draft(flow.id))["shapes"][2]["status"], int)

    deployed = c.deploy_version(flow.id)
    assert deployed.version.number == 1 and deployed.draft.number == 2
    assert deployed.deployment.enabled and deployed.deployment.environment_id == ""
    on_ve = c.deploy_version(flow.id, environment_id=env.id, disabled=True)
    assert on_ve.version.number == 2 and not on_ve.deployment.enabled
    assert c.set_deployment_enabled(flow.id, True, env.id).enabled

    cb = c.create_callback(flow.id, name="stock check")
    assert cb.content_type == "application/json" and cb.timeout_ms == 30_000
    assert cb.url == f"http://edge.test/api/v1/acme/{cb.id}?patchworks_signature={cb.signature}"
    urls = c.get_callback_url(cb.id, environment_id=env.id)
    assert urls.url == cb.url
    assert urls.environment_url == (
        f"http://edge.test/api/v1/acme/{cb.id}/uk-live?patchworks_signature={cb.signature}"
    )

    fresh = c.regenerate_signature(cb.id)
    assert fresh.signature != cb.signature and len(fresh.signature) == 52
    assert c.get_callback(cb.id).signature == fresh.signature
    waited = c.regenerate_signature_and_wait(cb.id, wait_for_edges_ms=1000)
    assert waited.callback.signature != fresh.signature
    assert list(waited.pending_edge_ids) == []  # no edge is connected to this control plane

    xml = c.update_callback(cb.id, content_type="xml")
    assert (xml.content_type, xml.name, xml.timeout_ms) == (
        "application/xml",
        "stock check",
        30_000,
    )
    custom = c.update_callback(cb.id, content_type="application/vnd.acme+json", timeout_ms=5000)
    assert (custom.content_type, custom.timeout_ms) == ("application/vnd.acme+json", 5000)
    renamed = c.update_callback(cb.id, name="renamed")
    assert (renamed.name, renamed.content_type) == ("renamed", "application/vnd.acme+json")
    text = c.create_callback(flow.id, content_type="text", timeout_ms=1000)
    assert (text.content_type, text.timeout_ms) == ("text/plain", 1000)

    assert [co.slug for co in c.list_companies()] == ["acme"]
    assert [e.id for e in c.list_environments("acme")] == [env.id]
    assert [f.id for f in c.list_flows("acme")] == [flow.id]
    assert [(v.number, v.state) for v in c.list_versions(flow.id)] == [
        (3, r.VERSION_STATE_DRAFT),
        (2, r.VERSION_STATE_DEPLOYED),
        (1, r.VERSION_STATE_DEPLOYED),
    ]
    assert definition_dict(c.get_version(flow.id, 1)) == CALLBACK_FLOW
    assert sorted((d.environment_id, d.version_number) for d in c.list_deployments(flow.id)) == [
        ("", 1),
        (env.id, 2),
    ]
    listed = list(c.list_callbacks(flow.id))
    assert [x.id for x in listed] == sorted([cb.id, text.id])
    assert all(x.signature == "" and x.url == "" for x in listed)
    assert list(c.list_runs("acme")) == []
    assert c.list_edges() == []

    c.delete_deployment(flow.id, env.id)
    assert [d.environment_id for d in c.list_deployments(flow.id)] == [""]
    c.delete_environment(env.id)
    c.delete_callback(text.id)
    assert [x.id for x in c.list_callbacks(flow.id)] == [cb.id]
    c.delete_flow(flow.id)
    with pytest.raises(NotFound):
        c.get_callback(cb.id)
    c.delete_company("acme")
    assert list(c.list_companies()) == []


async def test_walkthrough(client):
    await asyncio.to_thread(walkthrough, client)


def company_key(admin: Client, target: str) -> None:
    admin.create_company(name="Acme", slug="acme")
    admin.create_company(name="Other", slug="other")
    made = admin.create_api_key("ci", company="acme")
    assert made.api_key.company == "acme" and made.secret
    assert [k.name for k in admin.list_api_keys(company="acme")] == ["ci"]

    with Client(target, made.secret) as scoped:
        assert [co.slug for co in scoped.list_companies()] == ["acme"]
        with pytest.raises(NotFound) as err:
            scoped.get_company("other")
        assert err.value.reason == "ERROR_REASON_COMPANY_NOT_FOUND"
        revoked = admin.revoke_api_key(made.api_key.id)
        assert revoked.HasField("revoke_time")


async def test_company_key_sees_only_its_company(client, plane):
    await asyncio.to_thread(company_key, client, plane.target)


def fill(c: Client, n: int) -> dict[str, tuple[list[str], list[str]]]:
    """Creates `n` of each listable resource; returns (created ids, listed ids at page size 2)."""
    c.create_company(name="Acme", slug="acme")
    companies = ["acme"] + [c.create_company(name=f"C{i}", slug=f"c{i}").slug for i in range(n)]
    envs = [c.create_environment("acme", f"E{i}", f"e{i}").id for i in range(n)]
    flows = [c.create_flow("acme", f"F{i}").flow.id for i in range(n)]
    callbacks = [c.create_callback(flows[0]).id for _ in range(n)]
    keys = [c.create_api_key(f"K{i}", company="acme").api_key.id for i in range(n)]
    return {
        "companies": (companies, [x.slug for x in c.list_companies(page_size=2)]),
        "environments": (envs, [x.id for x in c.list_environments("acme", page_size=2)]),
        "flows": (flows, [x.id for x in c.list_flows("acme", page_size=2)]),
        "callbacks": (callbacks, [x.id for x in c.list_callbacks(flows[0], page_size=2)]),
        "api keys": (keys, [x.id for x in c.list_api_keys("acme", page_size=2)]),
        "default page size": (companies, [x.slug for x in c.list_companies()]),
    }


async def test_lists_iterate_every_page(client):
    # 6 companies, 5 of everything else, 2 per page: the last page is partial, and only
    # following next_page_token can return them all.
    results = await asyncio.to_thread(fill, client, 5)
    for name, (created, listed) in results.items():
        assert listed == created, name


def lazy_pages(c: Client) -> None:
    pages = c.list_companies(page_size=2)
    c.create_company(name="Late", slug="late")  # a generator asks nothing until it is iterated
    assert [x.slug for x in pages] == ["late"]


async def test_lists_are_lazy(client):
    await asyncio.to_thread(lazy_pages, client)


def test_client_needs_no_server_until_called():
    with Client("127.0.0.1:1", ADMIN_KEY) as c:
        assert c.timeout == 10.0
