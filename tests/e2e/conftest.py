"""End-to-end fixtures: the real processes (`python -m control_plane`, `python -m edge`) on
loopback, set up through the real gRPC API, exercised over real HTTP."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
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
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rs
from boomerang.v1 import run_service_pb2_grpc as rs_grpc
from tests.conftest import BACKENDS, POSTGRES_URL, REQUIRE_POSTGRES, _postgres

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
        stack.start_runners()
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


@pytest.fixture(params=BACKENDS)
def stack_database(request) -> Iterator[str]:
    """A database URL for a stack of real processes: "" (SQLite under the stack's state dir),
    or a PostgreSQL schema of the test's own, dropped afterwards."""
    if request.param == "sqlite":
        yield ""
        return
    schema = f"boomerang_e2e_{os.getpid()}_{next(_schemas)}"
    reason = _postgres(f"CREATE SCHEMA {schema}")
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options=-csearch_path%3D{schema}"
    _postgres(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


_schemas = itertools.count()


@dataclass(frozen=True)
class Answer:
    """What one caller got."""

    status: int
    run_id: str | None
    error: str | None


def answer(response: httpx.Response) -> Answer:
    error = None
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith(
        "application/json"
    ):
        error = response.json().get("error")
    return Answer(response.status_code, response.headers.get("x-boomerang-run-id"), error)


def get_run(api: Api, run_id: str):
    return api.runs.GetRun(rs.GetRunRequest(id=run_id), metadata=api.md).run


def final_runs(api: Api, run_ids: list[str], timeout: float) -> dict[str, object]:
    """Waits until every run is in a final status; fails naming the ones still open."""
    final = {r.RUN_STATUS_SUCCEEDED, r.RUN_STATUS_FAILED, r.RUN_STATUS_TIMED_OUT}
    deadline = time.monotonic() + timeout
    runs: dict[str, object] = {}
    while True:
        runs = {run_id: get_run(api, run_id) for run_id in run_ids}
        open_ = [i for i, run in runs.items() if run.status not in final]
        if not open_:
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"{len(open_)} of {len(run_ids)} runs still not final: {open_[:5]}")
        time.sleep(0.2)


def call_concurrently(url: str, paths: list[tuple[str, dict]], timeout: float = 30) -> list[Answer]:
    """One thread per request, all at once, as independent callers."""

    def one(item: tuple[str, dict]) -> Answer:
        path, params = item
        with httpx.Client(base_url=url, timeout=timeout) as http:
            try:
                return answer(http.get(path, params=params))
            except httpx.TransportError as e:
                return Answer(0, None, type(e).__name__)

    with ThreadPoolExecutor(len(paths)) as pool:
        return list(pool.map(one, paths))
