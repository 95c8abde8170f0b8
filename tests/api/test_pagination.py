"""Every list RPC pages: page_size 2 over 5 items walks all 5 in order, the last token empty."""

from __future__ import annotations

import datetime as dt

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import run_service_pb2 as rs
from control_plane.store.clock import utcnow
from tests.api.helpers import Stubs, insert_run, method

# (rpc, request for the flow with callbacks, field holding the items); `_five_of_each` gives
# the order each must return.
LISTS = [
    ("companies.ListCompanies", lambda flow: cs.ListCompaniesRequest(), "companies"),
    (
        "environments.ListEnvironments",
        lambda flow: es.ListEnvironmentsRequest(company="c0"),
        "environments",
    ),
    ("flows.ListFlows", lambda flow: fs.ListFlowsRequest(company="c0"), "flows"),
    ("callbacks.ListCallbacks", lambda flow: cbs.ListCallbacksRequest(flow_id=flow), "callbacks"),
    ("keys.ListApiKeys", lambda flow: aks.ListApiKeysRequest(company="c0"), "api_keys"),
    ("runs.ListRuns", lambda flow: rs.ListRunsRequest(company="c0"), "runs"),
]


async def _five_of_each(s: Stubs, md) -> dict[str, list[str]]:
    """Five objects for every list, in the order each list must return them."""
    out: dict[str, list[str]] = {}
    out["companies"] = [
        (
            await s.companies.CreateCompany(
                cs.CreateCompanyRequest(name=f"C{i}", slug=f"c{i}"), metadata=md
            )
        ).company.id
        for i in range(5)
    ]
    # Created in an order that is not alphabetical, so an order by name or prefix would show.
    out["environments"] = [
        (
            await s.environments.CreateEnvironment(
                es.CreateEnvironmentRequest(company="c0", name=n, url_prefix=n), metadata=md
            )
        ).environment.id
        for n in ("e", "d", "c", "b", "a")
    ]
    out["flows"] = [
        (await s.flows.CreateFlow(fs.CreateFlowRequest(company="c0", name=n), metadata=md)).flow.id
        for n in ("z", "y", "x", "w", "v")
    ]
    flow = out["flows"][0]
    out["callbacks"] = [
        (
            await s.callbacks.CreateCallback(cbs.CreateCallbackRequest(flow_id=flow), metadata=md)
        ).callback.id
        for _ in range(5)
    ]
    out["api_keys"] = [
        (
            await s.keys.CreateApiKey(aks.CreateApiKeyRequest(company="c0", name=n), metadata=md)
        ).api_key.id
        for n in ("k5", "k4", "k3", "k2", "k1")
    ]
    start = utcnow()
    runs = [
        insert_run(out["companies"][0], flow, started_at=start + dt.timedelta(seconds=i))
        for i in range(5)
    ]
    out["runs"] = runs[::-1]  # newest first
    return out


async def test_every_list_pages_through_five_items_two_at_a_time(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    expected = await _five_of_each(s, md)
    flow = expected["flows"][0]

    walked = {}
    for rpc, make, items in LISTS:
        request = make(flow)
        pages, token = [], ""
        for _ in range(5):  # 3 pages expected; more means the walk never ends
            request.page_size, request.page_token = 2, token
            response = await method(s, rpc)(request, metadata=md)
            token = response.next_page_token
            pages.append(([i.id for i in getattr(response, items)], bool(token)))
            if not token:
                break
        walked[items] = pages

    assert walked == {
        items: [(ids[0:2], True), (ids[2:4], True), (ids[4:5], False)]
        for items, ids in expected.items()
    }


async def test_page_size_zero_means_the_default_and_returns_everything(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    expected = await _five_of_each(s, md)
    flow = expected["flows"][0]

    for rpc, make, items in LISTS:
        response = await method(s, rpc)(make(flow), metadata=md)
        assert ([i.id for i in getattr(response, items)], response.next_page_token) == (
            expected[items],
            "",
        ), rpc


async def test_a_page_that_ends_the_list_has_no_token(plane):
    """Five items, pages of five (and of four, then one): the page holding the last item says
    so; no caller is sent for an empty page."""
    s, md = Stubs.on(plane.channel), plane.metadata()
    expected = await _five_of_each(s, md)
    flow = expected["flows"][0]

    for rpc, make, items in LISTS:
        request = make(flow)
        request.page_size = 5
        response = await method(s, rpc)(request, metadata=md)
        assert [i.id for i in getattr(response, items)] == expected[items], rpc
        assert response.next_page_token == "", rpc
