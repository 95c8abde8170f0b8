"""Key scopes (ApiKeyScope): EDGE keys sync and run flows, RUNNER keys run flows, and nothing
else; only an installation-wide FULL key makes them (docs/security.md). Both backends."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from google.protobuf import message_factory

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_sync_service_pb2 as sync_pb2
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import resources_pb2 as r
from tests.api.helpers import SERVICES, Failure, Stubs, failure, outcome
from tests.security.keys import Requests, bearer, hello, new_key

DENIED = Failure(grpc.StatusCode.PERMISSION_DENIED, "ERROR_REASON_KEY_SCOPE", [])
# Every unary RPC of the management services, plus ListEdges: none takes a narrow key.
UNARY = {
    **{f"{attr}.{m.name}": m for attr, service in SERVICES.items() for m in service.methods},
    "sync.ListEdges": sync_pb2.DESCRIPTOR.services_by_name["CallbackSyncService"].methods_by_name[
        "ListEdges"
    ],
}


async def call_empty(stubs: Stubs, rpc: str, md) -> Failure:
    """`rpc` with an empty request: scope is checked before anything is read from it."""
    attr, method = rpc.split(".")
    request = message_factory.GetMessageClass(UNARY[rpc].input_type)()
    return await outcome(getattr(getattr(stubs, attr), method)(request, metadata=md))


@pytest.mark.parametrize("scope", ["edge", "runner"])
async def test_a_narrow_key_is_refused_every_management_rpc(plane, scope):
    stubs, md = Stubs.on(plane.channel), plane.metadata()
    await stubs.companies.CreateCompany(cs.CreateCompanyRequest(name="A", slug="acme"), metadata=md)
    _, secret = await new_key(stubs, md, scope)
    got = {rpc: await call_empty(stubs, rpc, bearer(secret)) for rpc in sorted(UNARY)}
    # RPCs of the contract not served yet by this build answer UNIMPLEMENTED to anyone.
    unimplemented = {rpc for rpc, f in got.items() if f.code == grpc.StatusCode.UNIMPLEMENTED}
    assert unimplemented <= {"companies.GetQuotas", "companies.SetQuotas"}
    assert {rpc: f for rpc, f in got.items() if rpc not in unimplemented and f != DENIED} == {}
    # The refusals changed nothing: the company is still there, alone.
    listed = await stubs.companies.ListCompanies(cs.ListCompaniesRequest(), metadata=md)
    assert [c.slug for c in listed.companies] == ["acme"]


async def sync_opens(stubs: Stubs, secret: str) -> Failure:
    requests = Requests()
    call = stubs.sync.SyncCallbacks(requests, metadata=bearer(secret))
    requests.send(hello())
    try:
        first = await asyncio.wait_for(call.read(), 5)
        assert first.epoch
        return Failure(grpc.StatusCode.OK, "", [])
    except grpc.aio.AioRpcError as err:
        return failure(err)
    finally:
        requests.close()
        call.cancel()


async def runflow_opens(stubs: Stubs, secret: str) -> Failure:
    requests = Requests()
    call = stubs.runner.RunFlow(requests, metadata=bearer(secret))
    requests.close()  # nothing to run: the stream ends OK once the server took it
    try:
        await asyncio.wait_for(call.read(), 5)
    except grpc.aio.AioRpcError as err:
        return failure(err)
    return Failure(await call.code(), "", [])


@pytest.mark.parametrize(
    ("scope", "sync_ok", "runflow_ok"),
    [("full", True, True), ("edge", True, True), ("runner", False, True)],
)
async def test_machine_rpcs_take_the_scopes_made_for_them(plane, scope, sync_ok, runflow_ok):
    stubs, md = Stubs.on(plane.channel), plane.metadata()
    _, secret = await new_key(stubs, md, scope)
    ok = Failure(grpc.StatusCode.OK, "", [])
    assert await sync_opens(stubs, secret) == (ok if sync_ok else DENIED)
    assert await runflow_opens(stubs, secret) == (ok if runflow_ok else DENIED)


async def test_list_shows_scopes_and_unspecified_means_full(plane):
    stubs, md = Stubs.on(plane.channel), plane.metadata()
    made = await stubs.keys.CreateApiKey(aks.CreateApiKeyRequest(name="plain"), metadata=md)
    assert made.api_key.scope == r.API_KEY_SCOPE_FULL
    edge_id, _ = await new_key(stubs, md, "edge")
    listed = await stubs.keys.ListApiKeys(aks.ListApiKeysRequest(), metadata=md)
    scopes = {k.id: k.scope for k in listed.api_keys}
    assert scopes[made.api_key.id] == r.API_KEY_SCOPE_FULL
    assert scopes[edge_id] == r.API_KEY_SCOPE_EDGE


async def test_who_may_make_narrow_keys(plane):
    stubs, md = Stubs.on(plane.channel), plane.metadata()
    await stubs.companies.CreateCompany(cs.CreateCompanyRequest(name="A", slug="acme"), metadata=md)
    _, company_key = await new_key(stubs, md, "full", company="acme")
    _, edge_key = await new_key(stubs, md, "edge")
    before = len((await stubs.keys.ListApiKeys(aks.ListApiKeysRequest(), metadata=md)).api_keys)

    def create(key_md, **fields):
        return outcome(stubs.keys.CreateApiKey(aks.CreateApiKeyRequest(**fields), metadata=key_md))

    invalid = grpc.StatusCode.INVALID_ARGUMENT
    cases = [
        # A narrow key is installation-wide: with a company, refused whoever asks.
        (md, dict(name="k", company="acme", scope=r.API_KEY_SCOPE_EDGE), invalid, ["scope"]),
        (
            bearer(company_key),
            dict(name="k", company="acme", scope=r.API_KEY_SCOPE_RUNNER),
            invalid,
            ["scope"],
        ),
        (md, dict(name="k", scope=99), invalid, ["scope"]),
        # A company key may not make installation-wide keys of any scope.
        (
            bearer(company_key),
            dict(name="k", scope=r.API_KEY_SCOPE_EDGE),
            grpc.StatusCode.PERMISSION_DENIED,
            [],
        ),
        # A narrow key makes nothing.
        (
            bearer(edge_key),
            dict(name="k", scope=r.API_KEY_SCOPE_EDGE),
            grpc.StatusCode.PERMISSION_DENIED,
            [],
        ),
    ]
    for key_md, fields, code, violations in cases:
        got = await create(key_md, **fields)
        assert (got.code, got.fields) == (code, violations), fields
    assert (await create(bearer(company_key), name="k", scope=r.API_KEY_SCOPE_EDGE)).reason == (
        "ERROR_REASON_ADMIN_KEY_REQUIRED"
    )
    assert (await create(bearer(edge_key), name="k")).reason == "ERROR_REASON_KEY_SCOPE"
    after = len((await stubs.keys.ListApiKeys(aks.ListApiKeysRequest(), metadata=md)).api_keys)
    assert after == before  # nothing was made


def test_create_admin_key_makes_a_full_key(tmp_path):
    import os
    import subprocess
    import sys

    from control_plane.domain.tenancy import FULL, authenticate
    from control_plane.store.db import database, open_database

    url = f"sqlite:///{tmp_path}/cp.db"
    env = {**os.environ, "DATABASE_URL": url}
    run = [sys.executable, "-m", "control_plane"]
    assert subprocess.run([*run, "migrate"], env=env, capture_output=True).returncode == 0
    made = subprocess.run([*run, "create-admin-key"], env=env, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    with open_database(url).connection_context():
        principal = authenticate(made.stdout.strip())
    database.obj.close()
    assert principal.is_admin and principal.scope == FULL
