"""Stubs and small builders for API tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import grpc
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import (
    api_key_service_pb2_grpc,
    callback_service_pb2_grpc,
    callback_sync_service_pb2_grpc,
    company_service_pb2_grpc,
    connection_service_pb2_grpc,
    environment_service_pb2_grpc,
    flow_service_pb2_grpc,
    run_service_pb2_grpc,
    runner_service_pb2_grpc,
)
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import connection_service_pb2 as conns
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import run_service_pb2 as rs
from control_plane.domain.ids import new_id
from control_plane.store import models
from control_plane.store.clock import utcnow
from control_plane.store.db import database

CALLBACK_FLOW = {
    "shapes": [
        {"id": "trigger", "type": "trigger"},
        {"id": "shape", "type": "map", "expression": "{sku: payload.sku, stock: `7`}"},
        {"id": "reply", "type": "callback"},
    ]
}


def struct(doc: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(doc)
    return s


@dataclass
class Stubs:
    companies: company_service_pb2_grpc.CompanyServiceStub
    environments: environment_service_pb2_grpc.EnvironmentServiceStub
    flows: flow_service_pb2_grpc.FlowServiceStub
    callbacks: callback_service_pb2_grpc.CallbackServiceStub
    keys: api_key_service_pb2_grpc.ApiKeyServiceStub
    runs: run_service_pb2_grpc.RunServiceStub
    sync: callback_sync_service_pb2_grpc.CallbackSyncServiceStub
    runner: runner_service_pb2_grpc.RunnerServiceStub
    connections: connection_service_pb2_grpc.ConnectionServiceStub

    @classmethod
    def on(cls, channel: grpc.aio.Channel) -> Stubs:
        return cls(
            company_service_pb2_grpc.CompanyServiceStub(channel),
            environment_service_pb2_grpc.EnvironmentServiceStub(channel),
            flow_service_pb2_grpc.FlowServiceStub(channel),
            callback_service_pb2_grpc.CallbackServiceStub(channel),
            api_key_service_pb2_grpc.ApiKeyServiceStub(channel),
            run_service_pb2_grpc.RunServiceStub(channel),
            callback_sync_service_pb2_grpc.CallbackSyncServiceStub(channel),
            runner_service_pb2_grpc.RunnerServiceStub(channel),
            connection_service_pb2_grpc.ConnectionServiceStub(channel),
        )


@dataclass
class Failure:
    code: grpc.StatusCode
    reason: str
    fields: list[str]


def failure(err: grpc.aio.AioRpcError) -> Failure:
    """Code, ErrorInfo reason and BadRequest fields of a failed call."""
    status = rpc_status.from_call(err)
    reason, fields = "", []
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return Failure(err.code(), reason, fields)


async def outcome(call: Awaitable[object]) -> Failure:
    """What a call ended with: its failure, or code OK (no reason, no fields) if it succeeded."""
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return failure(err)
    return Failure(grpc.StatusCode.OK, "", [])


# Stubs attribute -> the service it calls; "flows.GetFlow" names an RPC in tables of cases.
SERVICES = {
    "companies": cs.DESCRIPTOR.services_by_name["CompanyService"],
    "environments": es.DESCRIPTOR.services_by_name["EnvironmentService"],
    "flows": fs.DESCRIPTOR.services_by_name["FlowService"],
    "callbacks": cbs.DESCRIPTOR.services_by_name["CallbackService"],
    "keys": aks.DESCRIPTOR.services_by_name["ApiKeyService"],
    "runs": rs.DESCRIPTOR.services_by_name["RunService"],
    "connections": conns.DESCRIPTOR.services_by_name["ConnectionService"],
}


def every_rpc() -> set[str]:
    """Every RPC of the management services, as "attribute.Method" names."""
    return {f"{attr}.{m.name}" for attr, service in SERVICES.items() for m in service.methods}


def method(stubs: Stubs, rpc: str) -> Callable[..., Awaitable[object]]:
    """Resolves an RPC name such as "flows.GetFlow" to the stub method stubs.flows.GetFlow."""
    attr, name = rpc.split(".")
    return getattr(getattr(stubs, attr), name)


def database_state() -> dict[str, list[tuple]]:
    """Every row of every table, in a stable order: equal before and after means unchanged.

    Runs on the calling thread's own connection (peewee connections are per thread).
    """
    database.connect(reuse_if_open=True)
    return {
        model.__name__: sorted(
            (
                tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                for row in model.select().tuples()
            ),
            key=repr,
        )
        for model in models.ALL_MODELS
    }


def insert_run(company_id: str, flow_id: str, **fields: object) -> str:
    """A run row as the runner would write it; returns its id."""
    database.connect(reuse_if_open=True)
    row = {
        "id": new_id(),
        "company": company_id,
        "flow_id": flow_id,
        "version_id": "",
        "environment_id": "",
        "callback_id": "",
        "status": "succeeded",
        "started_at": utcnow(),
        "response_status": 200,
        "error": "",
        "shapes": "[]",
        **fields,
    }
    models.Run.create(**row)
    return row["id"]


async def new_callback(s: Stubs, md: tuple[tuple[str, str], ...], slug: str = "acme"):
    """A company `slug` with one flow (CALLBACK_FLOW, undeployed) and one callback; returns the
    callback as CreateCallback gave it (signature included)."""
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name=slug, slug=slug), metadata=md)
    flow = (
        await s.flows.CreateFlow(
            fs.CreateFlowRequest(company=slug, name="f", definition=struct(CALLBACK_FLOW)),
            metadata=md,
        )
    ).flow
    request = cbs.CreateCallbackRequest(flow_id=flow.id)
    return (await s.callbacks.CreateCallback(request, metadata=md)).callback


@dataclass
class Tenant:
    """One company's objects, as `build_tenant` made them."""

    slug: str
    company_id: str
    env: str  # VE "live": flow version 2 deployed there
    spare_env: str  # VE "spare": nothing deployed
    flow: str  # versions: 1 deployed (default env), 2 deployed (live), 3 draft
    callback: str
    run: str
    key_id: str  # a key scoped to this company
    key: str
    connection: str  # "api", with a bearer token


async def build_tenant(s: Stubs, md: tuple[tuple[str, str], ...], slug: str) -> Tenant:
    """A company with one of every object, created with an installation-wide key (`md`)."""
    company = (
        await s.companies.CreateCompany(cs.CreateCompanyRequest(name=slug, slug=slug), metadata=md)
    ).company
    envs = [
        (
            await s.environments.CreateEnvironment(
                es.CreateEnvironmentRequest(company=slug, name=prefix, url_prefix=prefix),
                metadata=md,
            )
        ).environment.id
        for prefix in ("live", "spare")
    ]
    flow = (
        await s.flows.CreateFlow(
            fs.CreateFlowRequest(company=slug, name="stock", definition=struct(CALLBACK_FLOW)),
            metadata=md,
        )
    ).flow.id
    await s.flows.DeployVersion(fs.DeployVersionRequest(flow_id=flow), metadata=md)
    await s.flows.DeployVersion(
        fs.DeployVersionRequest(flow_id=flow, environment_id=envs[0]), metadata=md
    )
    callback = (
        await s.callbacks.CreateCallback(cbs.CreateCallbackRequest(flow_id=flow), metadata=md)
    ).callback.id
    key = await s.keys.CreateApiKey(
        aks.CreateApiKeyRequest(company=slug, name=f"{slug} key"), metadata=md
    )
    run = insert_run(company.id, flow, callback_id=callback)
    connection = await s.connections.CreateConnection(
        conns.CreateConnectionRequest(
            company=slug,
            name="api",
            base_url="https://api.example.com",
            auth=conns.ConnectionAuth(bearer=conns.BearerAuth(token=f"{slug}-token")),
        ),
        metadata=md,
    )
    return Tenant(
        slug,
        company.id,
        envs[0],
        envs[1],
        flow,
        callback,
        run,
        key.api_key.id,
        key.secret,
        connection.connection.id,
    )
