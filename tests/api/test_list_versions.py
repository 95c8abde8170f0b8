"""ListVersions is a bounded document: pages, newest first, definitions only in the FULL view
(at most 10 to a page)."""

from __future__ import annotations

import base64

import grpc
import pytest

from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import flow_service_pb2 as fs
from tests.api.helpers import CALLBACK_FLOW, Stubs, failure, struct

VERSIONS = 25


@pytest.fixture
async def flow(plane) -> str:
    """A flow with VERSIONS versions: 1-24 deployed in turn, 25 the draft."""
    s, md = Stubs.on(plane.channel), plane.metadata()
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="A", slug="acme"), metadata=md)
    request = fs.CreateFlowRequest(company="acme", name="f", definition=struct(CALLBACK_FLOW))
    flow_id = (await s.flows.CreateFlow(request, metadata=md)).flow.id
    for _ in range(VERSIONS - 1):
        await s.flows.DeployVersion(fs.DeployVersionRequest(flow_id=flow_id), metadata=md)
    return flow_id


async def _walk(s, md, flow_id, **kw) -> list[fs.ListVersionsResponse]:
    pages, token = [], ""
    while True:
        request = fs.ListVersionsRequest(flow_id=flow_id, page_token=token, **kw)
        page = await s.flows.ListVersions(request, metadata=md)
        pages.append(page)
        token = page.next_page_token
        if not token:
            return pages


async def test_basic_pages_are_newest_first_without_definitions(plane, flow):
    s, md = Stubs.on(plane.channel), plane.metadata()
    pages = await _walk(s, md, flow)
    assert [len(p.versions) for p in pages] == [20, 5]  # the default page is 20
    versions = [v for p in pages for v in p.versions]
    assert [v.number for v in versions] == list(range(VERSIONS, 0, -1))
    assert not any(v.HasField("definition") for v in versions)
    assert [v.state for v in versions[:3]] == [1, 2, 3]  # draft, deployed, inactive
    assert all(v.id and v.flow_id == flow and v.HasField("create_time") for v in versions)


async def test_full_pages_carry_definitions_ten_at_most(plane, flow):
    s, md = Stubs.on(plane.channel), plane.metadata()
    for size in (0, 50):
        pages = await _walk(s, md, flow, view=fs.VERSION_VIEW_FULL, page_size=size)
        assert [len(p.versions) for p in pages] == [10, 10, 5]
        versions = [v for p in pages for v in p.versions]
        assert [v.number for v in versions] == list(range(VERSIONS, 0, -1))
        assert all(v.definition == struct(CALLBACK_FLOW) for v in versions)


async def test_page_size_is_honoured(plane, flow):
    s, md = Stubs.on(plane.channel), plane.metadata()
    pages = await _walk(s, md, flow, page_size=7, view=fs.VERSION_VIEW_BASIC)
    assert [len(p.versions) for p in pages] == [7, 7, 7, 4]
    # A page that ends the list says so: no token to an empty page.
    pages = await _walk(s, md, flow, page_size=25)
    assert [len(p.versions) for p in pages] == [25]


@pytest.mark.parametrize(
    ("fields", "bad"),
    [
        ({"page_size": 101}, "page_size"),
        ({"page_size": -1}, "page_size"),
        ({"page_token": "nonsense"}, "page_token"),
        ({"page_token": base64.urlsafe_b64encode(b"v0").decode()}, "page_token"),
        (
            {"page_token": base64.urlsafe_b64encode(b"01h0000000000000000000000a").decode()},
            "page_token",
        ),
        ({"view": 7}, "view"),
    ],
)
async def test_bad_paging_is_invalid(plane, flow, fields, bad):
    s, md = Stubs.on(plane.channel), plane.metadata()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await s.flows.ListVersions(fs.ListVersionsRequest(flow_id=flow, **fields), metadata=md)
    got = failure(caught.value)
    assert (got.code, got.fields) == (grpc.StatusCode.INVALID_ARGUMENT, [bad])
