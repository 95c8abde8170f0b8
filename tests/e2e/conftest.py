"""End-to-end fixtures: the real processes (`python -m control_plane`, `python -m edge`) on
loopback, set up through the real gRPC API, exercised over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import grpc
import httpx
import pytest
from google.protobuf import struct_pb2

from boomerang.local import LocalStack
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import callback_service_pb2_grpc as cbs_grpc
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import company_service_pb2_grpc as cs_grpc
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import environment_service_pb2_grpc as es_grpc
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import flow_service_pb2_grpc as fs_grpc
from boomerang.v1 import run_service_pb2_grpc as rs_grpc

ADMIN_KEY = "bmk_e2e-admin-key-0123456789abcdefghijklmnopqrstuv"


def shapes(*middle: dict, callback: dict | None = None) -> dict:
    tail = [] if callback is None else [{"id": "reply", "type": "callback", **callback}]
    return {"shapes": [{"id": "trigger", "type": "trigger"}, *middle, *tail]}


def mapping(expression: str) -> dict:
    return {"id": "map", "type": "map", "expression": expression}


def struct(doc: dict) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(doc)
    return s


class Api:
    """Synchronous stubs with the admin key."""

    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.md = (("authorization", f"Bearer {ADMIN_KEY}"),)
        self.companies = cs_grpc.CompanyServiceStub(self.channel)
        self.environments = es_grpc.EnvironmentServiceStub(self.channel)
        self.flows = fs_grpc.FlowServiceStub(self.channel)
        self.callbacks = cbs_grpc.CallbackServiceStub(self.channel)
        self.runs = rs_grpc.RunServiceStub(self.channel)

    def flow_with_callback(self, company: str, name: str, definition: dict, **cb_fields):
        flow = self.flows.CreateFlow(
            fs.CreateFlowRequest(company=company, name=name, definition=struct(definition)),
            metadata=self.md,
        ).flow
        cb = self.callbacks.CreateCallback(
            cbs.CreateCallbackRequest(flow_id=flow.id, **cb_fields), metadata=self.md
        ).callback
        return flow, cb

    def deploy(self, flow_id: str, environment_id: str = "", **kw):
        return self.flows.DeployVersion(
            fs.DeployVersionRequest(flow_id=flow_id, environment_id=environment_id, **kw),
            metadata=self.md,
        )

    def update_draft(self, flow_id: str, definition: dict):
        return self.flows.UpdateDraft(
            fs.UpdateDraftRequest(flow_id=flow_id, definition=struct(definition)), metadata=self.md
        )

    def company(self, slug: str):
        return self.companies.CreateCompany(
            cs.CreateCompanyRequest(name=slug, slug=slug), metadata=self.md
        ).company

    def environment(self, company: str, prefix: str):
        return self.environments.CreateEnvironment(
            es.CreateEnvironmentRequest(company=company, name=prefix, url_prefix=prefix),
            metadata=self.md,
        ).environment


def eventually(check: Callable[[], bool], timeout: float = 5.0, interval: float = 0.02) -> float:
    """Waits until `check()` is true; returns the seconds it took. Fails after `timeout`."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)
    return time.monotonic() - start


@dataclass
class Running:
    stack: LocalStack
    api: Api
    http: httpx.Client


def start_stack(tmp_path, **kw) -> LocalStack:
    stack = LocalStack(
        state_dir=tmp_path / "state", admin_key=ADMIN_KEY, log_dir=tmp_path / "logs", **kw
    )
    stack.start_control_plane()
    if stack.separate_runner:
        stack.start_runner()
    stack.start_edge()
    return stack


@pytest.fixture(scope="module")
def running(tmp_path_factory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("e2e")
    stack = start_stack(tmp)
    api = Api(stack.control_target)
    with httpx.Client(base_url=stack.edge_url, timeout=10) as http:
        yield Running(stack, api, http)
    api.channel.close()
    stack.stop()
