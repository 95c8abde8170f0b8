"""docs/design.md §5: a key of company B can never read or change A — over every management RPC.

Companies A and B each get one of every object (tests/api/helpers.build_tenant). B's key then
calls every RPC on A's objects: each answers NOT_FOUND with the object's reason (exactly as if it
did not exist: never PERMISSION_DENIED, never data), admin-only RPCs answer PERMISSION_DENIED, lists
show only B's objects, and the database is byte-for-byte unchanged afterwards.

A new RPC is one line in FOREIGN, ADMIN_ONLY or LISTS; `test_every_rpc_has_a_case` fails until it
has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.protobuf.message import Message

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import callback_sync_service_pb2 as sync
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import connection_service_pb2 as conns
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rs
from boomerang.v1 import runner_service_pb2 as runner
from tests.api.helpers import (
    CALLBACK_FLOW,
    Failure,
    Stubs,
    Tenant,
    build_tenant,
    database_state,
    every_rpc,
    failure,
    method,
    outcome,
    struct,
)

OK = grpc.StatusCode.OK
NOT_FOUND = grpc.StatusCode.NOT_FOUND


@dataclass(frozen=True)
class Case:
    rpc: str
    # (target, own) -> request: `target` is the company whose objects are touched (A for the
    # foreign-key pass), `own` the caller's company (B).
    request: Callable[[Tenant, Tenant], Message]
    reason: str  # ERROR_REASON_ name without the prefix, for the foreign pass
    # Read-only: B's key must succeed with the same request on B's own objects, which proves the
    # NOT_FOUND above comes from the tenant rule and not from a broken request.
    read: bool = False


# B's key on A's objects: NOT_FOUND, as if they did not exist.
FOREIGN = [
    Case(
        "companies.GetCompany",
        lambda t, o: cs.GetCompanyRequest(slug=t.slug),
        "COMPANY_NOT_FOUND",
        read=True,
    ),
    Case(
        "companies.GetQuotas",
        lambda t, o: cs.GetQuotasRequest(company=t.slug),
        "COMPANY_NOT_FOUND",
        read=True,
    ),
    Case(
        "environments.CreateEnvironment",
        lambda t, o: es.CreateEnvironmentRequest(company=t.slug, name="new", url_prefix="new"),
        "COMPANY_NOT_FOUND",
    ),
    Case(
        "environments.GetEnvironment",
        lambda t, o: es.GetEnvironmentRequest(id=t.env),
        "ENVIRONMENT_NOT_FOUND",
        read=True,
    ),
    Case(
        "environments.ListEnvironments",
        lambda t, o: es.ListEnvironmentsRequest(company=t.slug),
        "COMPANY_NOT_FOUND",
        read=True,
    ),
    Case(
        "environments.DeleteEnvironment",
        lambda t, o: es.DeleteEnvironmentRequest(id=t.spare_env),
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "flows.CreateFlow",
        lambda t, o: fs.CreateFlowRequest(company=t.slug, name="new"),
        "COMPANY_NOT_FOUND",
    ),
    Case("flows.GetFlow", lambda t, o: fs.GetFlowRequest(id=t.flow), "FLOW_NOT_FOUND", read=True),
    Case(
        "flows.ListFlows",
        lambda t, o: fs.ListFlowsRequest(company=t.slug),
        "COMPANY_NOT_FOUND",
        read=True,
    ),
    Case("flows.DeleteFlow", lambda t, o: fs.DeleteFlowRequest(id=t.flow), "FLOW_NOT_FOUND"),
    Case(
        "flows.GetDraft",
        lambda t, o: fs.GetDraftRequest(flow_id=t.flow),
        "FLOW_NOT_FOUND",
        read=True,
    ),
    Case(
        "flows.UpdateDraft",
        lambda t, o: fs.UpdateDraftRequest(flow_id=t.flow, definition=struct(CALLBACK_FLOW)),
        "FLOW_NOT_FOUND",
    ),
    Case(
        "flows.ListVersions",
        lambda t, o: fs.ListVersionsRequest(flow_id=t.flow),
        "FLOW_NOT_FOUND",
        read=True,
    ),
    Case(
        "flows.GetVersion",
        lambda t, o: fs.GetVersionRequest(flow_id=t.flow, number=1),
        "FLOW_NOT_FOUND",
        read=True,
    ),
    Case(
        "flows.DeployVersion",
        lambda t, o: fs.DeployVersionRequest(flow_id=t.flow),
        "FLOW_NOT_FOUND",
    ),
    Case(
        "flows.DeployVersion",
        lambda t, o: fs.DeployVersionRequest(flow_id=t.flow, number=1, environment_id=t.spare_env),
        "FLOW_NOT_FOUND",
    ),
    Case(
        "flows.DeployVersion",
        lambda t, o: fs.DeployVersionRequest(flow_id=o.flow, environment_id=t.spare_env),
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "flows.SetDeploymentEnabled",
        lambda t, o: fs.SetDeploymentEnabledRequest(flow_id=t.flow, enabled=False),
        "FLOW_NOT_FOUND",
    ),
    Case(
        "flows.SetDeploymentEnabled",
        lambda t, o: fs.SetDeploymentEnabledRequest(
            flow_id=o.flow, environment_id=t.env, enabled=False
        ),
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "flows.ListDeployments",
        lambda t, o: fs.ListDeploymentsRequest(flow_id=t.flow),
        "FLOW_NOT_FOUND",
        read=True,
    ),
    Case(
        "flows.DeleteDeployment",
        lambda t, o: fs.DeleteDeploymentRequest(flow_id=t.flow),
        "FLOW_NOT_FOUND",
    ),
    Case(
        "flows.DeleteDeployment",
        lambda t, o: fs.DeleteDeploymentRequest(flow_id=o.flow, environment_id=t.env),
        "ENVIRONMENT_NOT_FOUND",
    ),
    Case(
        "callbacks.CreateCallback",
        lambda t, o: cbs.CreateCallbackRequest(flow_id=t.flow),
        "FLOW_NOT_FOUND",
    ),
    Case(
        "callbacks.GetCallback",
        lambda t, o: cbs.GetCallbackRequest(id=t.callback),
        "CALLBACK_NOT_FOUND",
        read=True,
    ),
    Case(
        "callbacks.ListCallbacks",
        lambda t, o: cbs.ListCallbacksRequest(flow_id=t.flow),
        "FLOW_NOT_FOUND",
        read=True,
    ),
    Case(
        "callbacks.DeleteCallback",
        lambda t, o: cbs.DeleteCallbackRequest(id=t.callback),
        "CALLBACK_NOT_FOUND",
    ),
    Case(
        "callbacks.RegenerateSignature",
        lambda t, o: cbs.RegenerateSignatureRequest(id=t.callback),
        "CALLBACK_NOT_FOUND",
    ),
    Case(
        "callbacks.UpdateCallback",
        lambda t, o: cbs.UpdateCallbackRequest(
            id=t.callback, timeout_ms=1000, update_mask=["timeout_ms"]
        ),
        "CALLBACK_NOT_FOUND",
    ),
    Case(
        "callbacks.GetCallbackUrl",
        lambda t, o: cbs.GetCallbackUrlRequest(id=t.callback),
        "CALLBACK_NOT_FOUND",
        read=True,
    ),
    Case(
        "callbacks.GetCallbackUrl",
        lambda t, o: cbs.GetCallbackUrlRequest(id=o.callback, environment_id=t.env),
        "ENVIRONMENT_NOT_FOUND",
        read=True,
    ),
    Case(
        "keys.CreateApiKey",
        lambda t, o: aks.CreateApiKeyRequest(company=t.slug, name="new"),
        "COMPANY_NOT_FOUND",
    ),
    Case(
        "keys.ListApiKeys",
        lambda t, o: aks.ListApiKeysRequest(company=t.slug),
        "COMPANY_NOT_FOUND",
        read=True,
    ),
    Case(
        "keys.RevokeApiKey", lambda t, o: aks.RevokeApiKeyRequest(id=t.key_id), "API_KEY_NOT_FOUND"
    ),
    Case(
        "runs.ListRuns",
        lambda t, o: rs.ListRunsRequest(company=t.slug),
        "COMPANY_NOT_FOUND",
        read=True,
    ),
    Case("runs.GetRun", lambda t, o: rs.GetRunRequest(id=t.run), "RUN_NOT_FOUND", read=True),
    Case(
        "connections.CreateConnection",
        lambda t, o: conns.CreateConnectionRequest(
            company=t.slug, name="new", base_url="https://new.example.com"
        ),
        "COMPANY_NOT_FOUND",
    ),
    Case(
        "connections.GetConnection",
        lambda t, o: conns.GetConnectionRequest(id=t.connection),
        "CONNECTION_NOT_FOUND",
        read=True,
    ),
    Case(
        "connections.ListConnections",
        lambda t, o: conns.ListConnectionsRequest(company=t.slug),
        "COMPANY_NOT_FOUND",
        read=True,
    ),
    Case(
        "connections.UpdateConnection",
        lambda t, o: conns.UpdateConnectionRequest(
            id=t.connection, name="renamed", update_mask=["name"]
        ),
        "CONNECTION_NOT_FOUND",
    ),
    Case(
        "connections.DeleteConnection",
        lambda t, o: conns.DeleteConnectionRequest(id=t.connection),
        "CONNECTION_NOT_FOUND",
    ),
]

# Installation-wide operations: PERMISSION_DENIED for any company key, even on its own company.
ADMIN_ONLY = [
    ("companies.CreateCompany", lambda t, o: cs.CreateCompanyRequest(name="C", slug="c")),
    ("companies.DeleteCompany", lambda t, o: cs.DeleteCompanyRequest(slug=t.slug)),
    ("companies.DeleteCompany", lambda t, o: cs.DeleteCompanyRequest(slug=o.slug)),
    ("keys.CreateApiKey", lambda t, o: aks.CreateApiKeyRequest(name="installation-wide")),
    ("sync.ListEdges", lambda t, o: sync.ListEdgesRequest()),
    # Quotas: a company key reads its own company's, but sets none, not even its own.
    ("companies.GetQuotas", lambda t, o: cs.GetQuotasRequest()),
    ("companies.SetQuotas", lambda t, o: _set_flows_quota(t.slug)),
    ("companies.SetQuotas", lambda t, o: _set_flows_quota(o.slug)),
    ("companies.SetQuotas", lambda t, o: _set_flows_quota("")),
]


def _set_flows_quota(slug: str) -> cs.SetQuotasRequest:
    return cs.SetQuotasRequest(
        company=slug, quotas=r.Quotas(flows=1), update_mask=FieldMask(paths=["flows"])
    )


# Lists with B's key: (rpc, request, attribute holding the items, ids B must see).
def _ids(items) -> list[str]:
    return [i.slug if hasattr(i, "slug") else i.id for i in items]


LISTS = [
    (
        "companies.ListCompanies",
        lambda t, o: cs.ListCompaniesRequest(),
        "companies",
        lambda t, o: [o.slug],
    ),
    (
        "environments.ListEnvironments",
        lambda t, o: es.ListEnvironmentsRequest(company=o.slug),
        "environments",
        lambda t, o: [o.env, o.spare_env],
    ),
    (
        "flows.ListFlows",
        lambda t, o: fs.ListFlowsRequest(company=o.slug),
        "flows",
        lambda t, o: [o.flow],
    ),
    (
        "callbacks.ListCallbacks",
        lambda t, o: cbs.ListCallbacksRequest(flow_id=o.flow),
        "callbacks",
        lambda t, o: [o.callback],
    ),
    (
        "keys.ListApiKeys",
        lambda t, o: aks.ListApiKeysRequest(),
        "api_keys",
        lambda t, o: [o.key_id],
    ),
    (
        "keys.ListApiKeys",
        lambda t, o: aks.ListApiKeysRequest(company=o.slug),
        "api_keys",
        lambda t, o: [o.key_id],
    ),
    (
        "runs.ListRuns",
        lambda t, o: rs.ListRunsRequest(company=o.slug),
        "runs",
        lambda t, o: [o.run],
    ),
    (
        "runs.ListRuns",
        lambda t, o: rs.ListRunsRequest(company=o.slug, flow_id=t.flow),
        "runs",
        lambda t, o: [],
    ),
    (
        "connections.ListConnections",
        lambda t, o: conns.ListConnectionsRequest(company=o.slug),
        "connections",
        lambda t, o: [o.connection],
    ),
]


def test_every_rpc_has_a_case():
    covered = {c.rpc for c in FOREIGN} | {rpc for rpc, _ in ADMIN_ONLY} | {c[0] for c in LISTS}
    assert every_rpc() - covered == set()


@pytest.fixture
async def tenants(plane) -> tuple[Stubs, Tenant, Tenant]:
    s, md = Stubs.on(plane.channel), plane.metadata()
    return s, await build_tenant(s, md, "a"), await build_tenant(s, md, "b")


async def test_a_company_key_cannot_reach_another_company(plane, tenants):
    s, a, b = tenants
    md = plane.metadata(b.key)
    denied = Failure(grpc.StatusCode.PERMISSION_DENIED, "ERROR_REASON_ADMIN_KEY_REQUIRED", [])
    cases = [
        (c.rpc, c.request, Failure(NOT_FOUND, f"ERROR_REASON_{c.reason}", [])) for c in FOREIGN
    ]
    cases += [(rpc, request, denied) for rpc, request in ADMIN_ONLY]
    before = database_state()

    wrong = []
    for rpc, request, expected in cases:
        got = await outcome(method(s, rpc)(request(a, b), metadata=md))
        if got != expected:
            wrong.append(f"{rpc}: {got.code.name} {got.reason}, expected {expected.reason}")

    assert not wrong, "\n".join(wrong)
    assert database_state() == before  # A's objects (and everything else) unchanged


async def test_lists_show_only_the_callers_company(plane, tenants):
    s, a, b = tenants
    md = plane.metadata(b.key)
    seen = [
        (rpc, _ids(getattr(await method(s, rpc)(request(a, b), metadata=md), items)))
        for rpc, request, items, _ in LISTS
    ]
    assert seen == [(rpc, ids(a, b)) for rpc, _, _, ids in LISTS]


async def test_the_same_reads_work_on_the_callers_own_objects(plane, tenants):
    s, _, b = tenants
    md = plane.metadata(b.key)
    reads = [c for c in FOREIGN if c.read]
    seen = [
        (c.rpc, (await outcome(method(s, c.rpc)(c.request(b, b), metadata=md))).code) for c in reads
    ]
    assert seen == [(c.rpc, OK) for c in reads]


async def test_a_revoked_key_is_refused(plane, tenants):
    s, _, b = tenants
    md = plane.metadata(b.key)
    assert (
        await outcome(s.companies.GetCompany(cs.GetCompanyRequest(slug="b"), metadata=md))
    ).code == OK

    await s.keys.RevokeApiKey(aks.RevokeApiKeyRequest(id=b.key_id), metadata=plane.metadata())

    assert await outcome(
        s.companies.GetCompany(cs.GetCompanyRequest(slug="b"), metadata=md)
    ) == Failure(grpc.StatusCode.UNAUTHENTICATED, "ERROR_REASON_INVALID_API_KEY", [])


async def test_a_company_key_manages_its_own_keys_only(plane, tenants):
    s, a, b = tenants
    md = plane.metadata(b.key)
    created = await s.keys.CreateApiKey(
        aks.CreateApiKeyRequest(company="b", name="ci"), metadata=md
    )
    assert created.api_key.company == "b"

    revoked = await s.keys.RevokeApiKey(aks.RevokeApiKeyRequest(id=created.api_key.id), metadata=md)
    assert revoked.api_key.HasField("revoke_time")
    # The installation-wide key is as invisible to B as A's keys are.
    admin_id = next(
        k.id
        for k in (
            await s.keys.ListApiKeys(aks.ListApiKeysRequest(), metadata=plane.metadata())
        ).api_keys
        if not k.company
    )
    assert await outcome(
        s.keys.RevokeApiKey(aks.RevokeApiKeyRequest(id=admin_id), metadata=md)
    ) == Failure(NOT_FOUND, "ERROR_REASON_API_KEY_NOT_FOUND", [])
    # A's key still works: B could not revoke it.
    assert (
        await outcome(
            s.companies.GetCompany(cs.GetCompanyRequest(slug="a"), metadata=plane.metadata(a.key))
        )
    ).code == OK


async def test_edge_and_runner_streams_need_an_installation_wide_key(plane, tenants):
    """Edges get every company's callbacks and runners run any flow: never for a company key."""
    s, _, b = tenants
    md = plane.metadata(b.key)
    streams = [
        s.sync.SyncCallbacks(
            iter([sync.SyncCallbacksRequest(hello=sync.SyncHello(edge_id="e"))]), metadata=md
        ),
        s.runner.RunFlow(iter([runner.RunFlowRequest()]), metadata=md),
    ]
    got = []
    for call in streams:
        try:
            got.append([message async for message in call])
        except grpc.aio.AioRpcError as err:
            got.append(failure(err))
    denied = Failure(grpc.StatusCode.PERMISSION_DENIED, "ERROR_REASON_ADMIN_KEY_REQUIRED", [])
    assert got == [denied, denied]
