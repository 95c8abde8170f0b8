"""Quotas over the API (docs/quotas.md): each is refused past its limit with the reason and the
limit, and the refusal changes nothing; a company's setting beats the installation's, which beats
the configured default; a company key reads its own company's quotas and sets none."""

from __future__ import annotations

import dataclasses
import json

import grpc
import pytest
from google.protobuf.field_mask_pb2 import FieldMask
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as r
from control_plane.domain.quotas import Quotas
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import Run, RunTask
from tests.api.helpers import CALLBACK_FLOW, Stubs, database_state, failure, insert_run, struct

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED
QUOTA_EXCEEDED = "ERROR_REASON_QUOTA_EXCEEDED"


def quota_info(err: grpc.aio.AioRpcError) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    """Code, ErrorInfo reason and ErrorInfo metadata of a failed call."""
    for detail in rpc_status.from_call(err).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return err.code(), info.reason, dict(info.metadata)
    raise AssertionError("no ErrorInfo")


def retry_delay(err: grpc.aio.AioRpcError) -> float | None:
    """The RetryInfo delay of a failed call, in seconds; None when it has no RetryInfo."""
    for detail in rpc_status.from_call(err).details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.ToTimedelta().total_seconds()
    return None


async def set_quotas(s: Stubs, md, company: str, **values: int) -> r.Quotas:
    request = cs.SetQuotasRequest(
        company=company, quotas=r.Quotas(**values), update_mask=FieldMask(paths=list(values))
    )
    return (await s.companies.SetQuotas(request, metadata=md)).quotas


async def get_quotas(s: Stubs, md, company: str = "") -> r.Quotas:
    return (await s.companies.GetQuotas(cs.GetQuotasRequest(company=company), metadata=md)).quotas


async def company(s: Stubs, md, slug: str) -> None:
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name=slug, slug=slug), metadata=md)


async def refused(call, quota: str, limit: int, used: int | None) -> None:
    """`call` fails with QUOTA_EXCEEDED naming `quota`, and the database is as it was."""
    before = database_state()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    expected = {"quota": quota, "limit": str(limit)}
    if used is not None:
        expected["used"] = str(used)
    assert quota_info(caught.value) == (EXHAUSTED, QUOTA_EXCEEDED, expected)
    # Sending it again would be refused again until the quota changes: no RetryInfo.
    assert retry_delay(caught.value) is None
    assert database_state() == before


async def test_defaults_without_any_setting(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    expected = r.Quotas(**dataclasses.asdict(Quotas()))
    assert await get_quotas(s, md) == expected
    assert await get_quotas(s, md, "acme") == expected
    assert expected.runs_in_flight == 50 and expected.definition_bytes == 1 << 20
    assert expected.answer_bytes == 64 << 20


async def _create_environment(s, md, i):
    request = es.CreateEnvironmentRequest(company="acme", name=f"e{i}", url_prefix=f"e{i}")
    return await s.environments.CreateEnvironment(request, metadata=md)


async def _create_flow(s, md, i):
    return await s.flows.CreateFlow(fs.CreateFlowRequest(company="acme", name=f"f{i}"), metadata=md)


async def _create_callback(s, md, i):
    flows = await s.flows.ListFlows(fs.ListFlowsRequest(company="acme"), metadata=md)
    if not flows.flows:
        await _create_flow(s, md, 0)
        flows = await s.flows.ListFlows(fs.ListFlowsRequest(company="acme"), metadata=md)
    request = cbs.CreateCallbackRequest(flow_id=flows.flows[0].id)
    return await s.callbacks.CreateCallback(request, metadata=md)


async def _create_api_key(s, md, i):
    return await s.keys.CreateApiKey(
        aks.CreateApiKeyRequest(company="acme", name=f"k{i}"), metadata=md
    )


CREATES = {
    "environments": _create_environment,
    "flows": _create_flow,
    "callbacks": _create_callback,
    "api_keys": _create_api_key,
}


@pytest.mark.parametrize("quota", sorted(CREATES))
async def test_each_count_is_refused_past_its_limit(plane, quota):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    await company(s, md, "other")
    await set_quotas(s, md, "acme", **{quota: 2})
    create = CREATES[quota]
    for i in range(2):
        await create(s, md, i)
    await refused(create(s, md, 2), quota, 2, 2)
    # Raising the quota makes room at once; another company never shared the count.
    await set_quotas(s, md, "acme", **{quota: 3})
    await create(s, md, 2)
    await refused(create(s, md, 3), quota, 3, 3)


async def test_a_key_past_its_quota_takes_the_place_of_the_longest_revoked(plane):
    """api_keys counts revoked keys (else create-and-revoke would grow the table without end);
    past it, the company's longest-revoked keys make room, and a key that is gone is refused
    like a revoked one."""
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    await set_quotas(s, md, "acme", api_keys=3)
    made = [await _create_api_key(s, md, i) for i in range(3)]
    for key in (made[1], made[0]):  # revoked in this order: made[1] first
        await s.keys.RevokeApiKey(aks.RevokeApiKeyRequest(id=key.api_key.id), metadata=md)
    await _create_api_key(s, md, 3)  # replaces made[1], revoked longest
    listed = await s.keys.ListApiKeys(aks.ListApiKeysRequest(company="acme"), metadata=md)
    names = sorted(k.name for k in listed.api_keys)
    assert names == ["k0", "k2", "k3"]
    await _create_api_key(s, md, 4)  # replaces made[0]
    # Every key in use: refused, and nothing deleted to make room.
    await refused(_create_api_key(s, md, 5), "api_keys", 3, 3)
    for gone in (made[0], made[1]):
        meta = (("authorization", f"Bearer {gone.secret}"),)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await s.companies.GetCompany(cs.GetCompanyRequest(slug="acme"), metadata=meta)
        assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # A quota lowered below the keys in use: the one revoked key cannot make room, so the
    # create is refused and the revoked key is kept.
    await s.keys.RevokeApiKey(aks.RevokeApiKeyRequest(id=made[2].api_key.id), metadata=md)
    await set_quotas(s, md, "acme", api_keys=1)
    await refused(_create_api_key(s, md, 6), "api_keys", 1, 3)
    # Installation-wide keys are not the company's: they count against nothing.
    await s.keys.CreateApiKey(aks.CreateApiKeyRequest(name="ops"), metadata=md)


async def test_lowering_a_quota_below_use_removes_nothing(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    for i in range(3):
        await _create_flow(s, md, i)
    await set_quotas(s, md, "acme", flows=1)
    await refused(_create_flow(s, md, 3), "flows", 1, 3)
    listed = await s.flows.ListFlows(fs.ListFlowsRequest(company="acme"), metadata=md)
    assert len(listed.flows) == 3


async def test_a_company_setting_beats_the_installation_which_beats_the_default(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    await company(s, md, "other")
    installation = await set_quotas(s, md, "", flows=1, environments=7)
    assert (installation.flows, installation.environments) == (1, 7)
    acme = await set_quotas(s, md, "acme", flows=3)
    assert (acme.flows, acme.environments, acme.callbacks) == (3, 7, 5_000)
    assert (await get_quotas(s, md, "other")).flows == 1
    for i in range(3):
        await _create_flow(s, md, i)
    other = fs.CreateFlowRequest(company="other", name="x")
    await s.flows.CreateFlow(other, metadata=md)
    await refused(s.flows.CreateFlow(other, metadata=md), "flows", 1, 1)
    # 0 returns a setting to the default: the company follows the installation again, and the
    # installation the configured default.
    assert (await set_quotas(s, md, "acme", flows=0)).flows == 1
    assert (await set_quotas(s, md, "", flows=0)).flows == 500
    assert (await get_quotas(s, md, "acme")).flows == 500


async def test_a_company_key_reads_its_own_quotas_and_sets_none(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    await set_quotas(s, md, "acme", flows=9)
    key = await s.keys.CreateApiKey(aks.CreateApiKeyRequest(company="acme", name="k"), metadata=md)
    own = plane.metadata(key.secret)
    assert (await get_quotas(s, own, "acme")).flows == 9
    before = database_state()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await set_quotas(s, own, "acme", flows=1000)
    assert failure(caught.value).code == grpc.StatusCode.PERMISSION_DENIED
    assert failure(caught.value).reason == "ERROR_REASON_ADMIN_KEY_REQUIRED"
    assert database_state() == before


@pytest.mark.parametrize(
    ("request_", "fields"),
    [
        (cs.SetQuotasRequest(company="acme", quotas=r.Quotas(flows=1)), ["update_mask"]),
        (
            cs.SetQuotasRequest(company="acme", update_mask=FieldMask(paths=["flows", "bogus"])),
            ["update_mask[1]"],
        ),
        (
            cs.SetQuotasRequest(
                company="acme",
                quotas=r.Quotas(flows=-1, versions_kept=1, definition_bytes=100),
                update_mask=FieldMask(paths=["flows", "versions_kept", "definition_bytes"]),
            ),
            ["quotas.flows", "quotas.versions_kept", "quotas.definition_bytes"],
        ),
        (
            cs.SetQuotasRequest(
                company="acme",
                quotas=r.Quotas(answer_bytes=(64 << 10) - 1),
                update_mask=FieldMask(paths=["answer_bytes"]),
            ),
            ["quotas.answer_bytes"],
        ),
    ],
)
async def test_bad_settings_are_invalid_and_change_nothing(plane, request_, fields):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    before = database_state()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await s.companies.SetQuotas(request_, metadata=md)
    got = failure(caught.value)
    assert (got.code, got.reason, got.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ERROR_REASON_INVALID_ARGUMENT",
        fields,
    )
    assert database_state() == before


async def test_an_unknown_company_is_not_found(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    for call in (get_quotas(s, md, "nobody"), set_quotas(s, md, "nobody", flows=1)):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call
        assert failure(caught.value).reason == "ERROR_REASON_COMPANY_NOT_FOUND"


async def test_definitions_past_their_size_or_depth_are_refused(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    await set_quotas(s, md, "acme", definition_bytes=2048, definition_depth=5)
    flow = (
        await s.flows.CreateFlow(
            fs.CreateFlowRequest(company="acme", name="f", definition=struct(CALLBACK_FLOW)),
            metadata=md,
        )
    ).flow
    big = {
        "shapes": [
            {"id": "trigger", "type": "trigger"},
            {"id": "m", "type": "map", "expression": "'" + "x" * 3000 + "'"},
        ]
    }
    size = len(json.dumps(big, separators=(",", ":"), sort_keys=True))
    await refused(
        s.flows.CreateFlow(
            fs.CreateFlowRequest(company="acme", name="g", definition=struct(big)), metadata=md
        ),
        "definition_bytes",
        2048,
        size,
    )
    await refused(
        s.flows.UpdateDraft(
            fs.UpdateDraftRequest(flow_id=flow.id, definition=struct(big)), metadata=md
        ),
        "definition_bytes",
        2048,
        size,
    )
    # {"shapes": [{…}]} is three levels; set_variables' map of variables is the fourth.
    deep = {
        "shapes": [
            {"id": "trigger", "type": "trigger"},
            {"id": "v", "type": "set_variables", "variables": {"a": "payload"}},
        ]
    }
    await s.flows.UpdateDraft(
        fs.UpdateDraftRequest(flow_id=flow.id, definition=struct(deep)), metadata=md
    )
    await set_quotas(s, md, "acme", definition_depth=4)
    deeper = {"shapes": [{"id": "trigger", "type": "trigger", "name": "t"}, [[["x"]]]]}
    await refused(
        s.flows.UpdateDraft(
            fs.UpdateDraftRequest(flow_id=flow.id, definition=struct(deeper)), metadata=md
        ),
        "definition_depth",
        4,
        None,
    )


async def _deploy(s, md, flow_id: str, number: int = 0, env: str = ""):
    request = fs.DeployVersionRequest(flow_id=flow_id, number=number, environment_id=env)
    return await s.flows.DeployVersion(request, metadata=md)


async def _numbers(s, md, flow_id: str) -> list[int]:
    listed = await s.flows.ListVersions(fs.ListVersionsRequest(flow_id=flow_id), metadata=md)
    return [v.number for v in listed.versions]


async def test_deploying_past_versions_kept_removes_the_oldest_unused_versions(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    await set_quotas(s, md, "acme", versions_kept=3)
    flow = (await _create_flow(s, md, 0)).flow.id
    await _deploy(s, md, flow)  # 1 deployed, 2 draft
    await _deploy(s, md, flow)  # 2 deployed, 1 inactive, 3 draft
    assert await _numbers(s, md, flow) == [3, 2, 1]
    await _deploy(s, md, flow)  # 3 deployed, 4 draft: 1 (inactive) goes
    assert await _numbers(s, md, flow) == [4, 3, 2]
    # A run that has not ended still needs version 2: it stays, and 3 goes instead.
    database.connect(reuse_if_open=True)
    v2 = await s.flows.GetVersion(fs.GetVersionRequest(flow_id=flow, number=2), metadata=md)
    acme = (await s.companies.GetCompany(cs.GetCompanyRequest(slug="acme"), metadata=md)).company
    run_id = insert_run(acme.id, flow, version_id=v2.version.id, status="responded")
    RunTask.create(
        run=run_id,
        company_id=acme.id,
        lane=1,
        state="{}",
        owner="",
        lease_until=utcnow(),
        attempts=1,
        updated_at=utcnow(),
    )
    await _deploy(s, md, flow)  # 4 deployed, 5 draft
    assert await _numbers(s, md, flow) == [5, 4, 2]
    # Once the run has ended, version 2 is no longer needed.
    RunTask.delete().execute()
    Run.update(status="succeeded").execute()
    await _deploy(s, md, flow)  # 5 deployed, 6 draft
    assert await _numbers(s, md, flow) == [6, 5, 4]


async def test_a_deploy_is_refused_when_every_kept_version_is_needed(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    env = (await _create_environment(s, md, 0)).environment.id
    flow = (await _create_flow(s, md, 0)).flow.id
    await _deploy(s, md, flow)  # 1 deployed (default), 2 draft
    await set_quotas(s, md, "acme", versions_kept=2)
    # Deploying the draft opens draft 3: a third version, and 1 and 2 are both deployed.
    await refused(_deploy(s, md, flow, env=env), "versions_kept", 2, 3)
    # Deploying a version that exists adds none.
    await _deploy(s, md, flow, number=1, env=env)
    assert await _numbers(s, md, flow) == [2, 1]


def test_no_quota_admits_a_definition_that_cannot_be_read_back():
    from control_plane.domain import quotas
    from control_plane.grpckit.convert import MAX_STRUCT_DEPTH

    assert quotas.MAXIMUMS["definition_depth"] == MAX_STRUCT_DEPTH
    assert quotas.Quotas().definition_depth <= MAX_STRUCT_DEPTH
    assert quotas.MAXIMUMS["definition_bytes"] < 4 << 20  # a default client's receive limit
