"""Stubs and small builders for API tests."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.protobuf import struct_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from boomerang.v1 import (
    api_key_service_pb2_grpc,
    callback_service_pb2_grpc,
    callback_sync_service_pb2_grpc,
    company_service_pb2_grpc,
    environment_service_pb2_grpc,
    flow_service_pb2_grpc,
    run_service_pb2_grpc,
    runner_service_pb2_grpc,
)

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
