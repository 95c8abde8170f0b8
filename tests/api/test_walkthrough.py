"""The issue's walkthrough over real gRPC: everything an internal service does, in order."""

from __future__ import annotations

import grpc
import pytest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as r
from tests.api.helpers import CALLBACK_FLOW, Stubs, failure, struct


async def test_walkthrough(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    company = (
        await s.companies.CreateCompany(
            cs.CreateCompanyRequest(name="Acme", slug="acme"), metadata=md
        )
    ).company
    assert company.slug == "acme" and len(company.id) == 26

    env = (
        await s.environments.CreateEnvironment(
            es.CreateEnvironmentRequest(company="acme", name="UK live", url_prefix="uk-live"),
            metadata=md,
        )
    ).environment
    created = await s.flows.CreateFlow(
        fs.CreateFlowRequest(company="acme", name="stock"), metadata=md
    )
    flow = created.flow
    assert created.draft.number == 1 and created.draft.state == r.VERSION_STATE_DRAFT

    saved = await s.flows.UpdateDraft(
        fs.UpdateDraftRequest(flow_id=flow.id, definition=struct(CALLBACK_FLOW)), metadata=md
    )
    assert saved.version.has_callback

    dep = await s.flows.DeployVersion(fs.DeployVersionRequest(flow_id=flow.id), metadata=md)
    assert dep.version.number == 1 and dep.draft.number == 2 and dep.deployment.enabled
    dep_ve = await s.flows.DeployVersion(
        fs.DeployVersionRequest(flow_id=flow.id, environment_id=env.id, disabled=True), metadata=md
    )
    assert dep_ve.version.number == 2 and not dep_ve.deployment.enabled
    enabled = await s.flows.SetDeploymentEnabled(
        fs.SetDeploymentEnabledRequest(flow_id=flow.id, environment_id=env.id, enabled=True),
        metadata=md,
    )
    assert enabled.deployment.enabled

    cb = (
        await s.callbacks.CreateCallback(cbs.CreateCallbackRequest(flow_id=flow.id), metadata=md)
    ).callback
    assert cb.content_type == "application/json" and len(cb.signature) == 52
    assert cb.url == f"http://edge.test/api/v1/acme/{cb.id}?patchworks_signature={cb.signature}"

    urls = await s.callbacks.GetCallbackUrl(
        cbs.GetCallbackUrlRequest(id=cb.id, environment_id=env.id), metadata=md
    )
    assert urls.url == cb.url
    assert urls.environment_url == (
        f"http://edge.test/api/v1/acme/{cb.id}/uk-live?patchworks_signature={cb.signature}"
    )

    regenerated = (
        await s.callbacks.RegenerateSignature(cbs.RegenerateSignatureRequest(id=cb.id), metadata=md)
    ).callback
    assert regenerated.signature != cb.signature and len(regenerated.signature) == 52
    again = (await s.callbacks.GetCallback(cbs.GetCallbackRequest(id=cb.id), metadata=md)).callback
    assert again.signature == regenerated.signature

    updated = (
        await s.callbacks.UpdateCallback(
            cbs.UpdateCallbackRequest(
                id=cb.id, content_type=cbs.CONTENT_TYPE_XML, update_mask=["content_type"]
            ),
            metadata=md,
        )
    ).callback
    assert updated.content_type == "application/xml"

    assert [
        c.slug
        for c in (await s.companies.ListCompanies(cs.ListCompaniesRequest(), metadata=md)).companies
    ] == ["acme"]
    assert [
        e.url_prefix
        for e in (
            await s.environments.ListEnvironments(
                es.ListEnvironmentsRequest(company="acme"), metadata=md
            )
        ).environments
    ] == ["uk-live"]
    assert [
        f.id
        for f in (await s.flows.ListFlows(fs.ListFlowsRequest(company="acme"), metadata=md)).flows
    ] == [flow.id]
    versions = (
        await s.flows.ListVersions(fs.ListVersionsRequest(flow_id=flow.id), metadata=md)
    ).versions
    assert [(v.number, v.state) for v in versions] == [
        (3, r.VERSION_STATE_DRAFT),
        (2, r.VERSION_STATE_DEPLOYED),
        (1, r.VERSION_STATE_DEPLOYED),
    ]
    deployments = (
        await s.flows.ListDeployments(fs.ListDeploymentsRequest(flow_id=flow.id), metadata=md)
    ).deployments
    assert sorted((d.environment_id, d.version_number) for d in deployments) == [
        ("", 1),
        (env.id, 2),
    ]
    listed = (
        await s.callbacks.ListCallbacks(cbs.ListCallbacksRequest(flow_id=flow.id), metadata=md)
    ).callbacks
    assert [c.id for c in listed] == [cb.id] and listed[0].signature == "" and listed[0].url == ""
    keys = (await s.keys.ListApiKeys(aks.ListApiKeysRequest(), metadata=md)).api_keys
    assert len(keys) == 1 and keys[0].company == ""


async def test_reflection_lists_every_service(plane):
    stub = reflection_pb2_grpc.ServerReflectionStub(plane.channel)
    responses = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    async for response in responses:
        names = {s.name for s in response.list_services_response.service}
        break
    assert {
        "boomerang.v1.CompanyService",
        "boomerang.v1.EnvironmentService",
        "boomerang.v1.FlowService",
        "boomerang.v1.CallbackService",
        "boomerang.v1.ApiKeyService",
        "boomerang.v1.RunService",
        "boomerang.v1.CallbackSyncService",
        "boomerang.v1.RunnerService",
        "grpc.health.v1.Health",
    } <= names


@pytest.mark.parametrize("key", ["", "bmk_wrong"])
async def test_every_call_needs_a_valid_key(plane, key):
    s = Stubs.on(plane.channel)
    md = plane.metadata(key) if key else ()
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await s.companies.ListCompanies(cs.ListCompaniesRequest(), metadata=md)
    f = failure(err.value)
    assert f.code == grpc.StatusCode.UNAUTHENTICATED
    assert f.reason == ("ERROR_REASON_INVALID_API_KEY" if key else "ERROR_REASON_MISSING_API_KEY")
