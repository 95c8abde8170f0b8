"""Servicer units: the async methods called directly, with a small fake ServicerContext.

STYLE.md asks for `grpc_testing` for servicer units. It cannot drive these servicers, which are
`grpc.aio` coroutines; what was tried, with grpcio-testing 1.85.0:

- `grpc_testing.server_from_dictionary({CompanyService: CompanyServicer(runtime)},
  grpc_testing.strict_real_time())`, then `invoke_unary_unary(ListCompanies, ...)` and
  `termination()`. grpc_testing calls the method synchronously on its own thread
  (`implementation(request, servicer_context)` in grpc_testing/_server/_service.py), so the
  `async def` method only returns a coroutine. `termination()` answered
  `(<coroutine object CompanyServicer.ListCompanies>, ..., StatusCode.OK, '')` — the coroutine as
  the "response", status OK — and Python warned "coroutine ... was never awaited": nothing ran.
- Its ServicerContext is the synchronous one: `abort_with_status` raises NotImplementedError,
  where the servicers `await context.abort_with_status(...)` as grpc.aio defines it.

Wrapping each coroutine in a sync adapter for grpc_testing would test the adapter, not the
servicer. So these tests await the methods themselves on a real Runtime (database thread pool)
over the `db` fixture; the in-process server tests (test_walkthrough.py, ...) cover the wire.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rs
from control_plane.api.api_keys import ApiKeyServicer
from control_plane.api.callbacks import CallbackServicer
from control_plane.api.companies import CompanyServicer
from control_plane.api.flows import FlowServicer
from control_plane.api.runs import RunServicer
from control_plane.config import Settings
from control_plane.domain import companies
from control_plane.grpckit.servicer import Runtime
from control_plane.store.db import database
from control_plane.store.models import FlowVersion
from tests.api.helpers import CALLBACK_FLOW, Failure, insert_run, struct
from tests.conftest import ADMIN_KEY


class Aborted(Exception):
    """What grpc.aio's abort does: the method stops here."""

    def __init__(self, status: grpc.Status) -> None:
        super().__init__(status.details)
        self.status = status


class FakeContext:
    """The part of grpc.aio.ServicerContext the servicers use."""

    def __init__(self, authorization: str | None) -> None:
        self._metadata = () if authorization is None else (("authorization", authorization),)

    def invocation_metadata(self):
        return self._metadata

    async def abort_with_status(self, status: grpc.Status) -> None:
        raise Aborted(status)


def _failure(status: grpc.Status) -> Failure:
    """Code, ErrorInfo reason and BadRequest fields, read from the trailing status details."""
    details = dict(status.trailing_metadata)["grpc-status-details-bin"]
    reason, fields = "", []
    for detail in status_pb2.Status.FromString(details).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason = info.reason
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            fields = [v.field for v in bad.field_violations]
    return Failure(status.code, reason, fields)


class Harness:
    def __init__(self) -> None:
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="db")
        self.writes = 0
        self.runtime = Runtime(
            Settings(public_base_url="http://edge.test"), self.executor, self._on_write
        )

    def _on_write(self) -> None:
        self.writes += 1

    async def call(self, servicer_cls, rpc: str, request, key: str | None = ADMIN_KEY):
        """The response, or the Failure the method aborted with."""
        context = FakeContext(None if key is None else f"Bearer {key}")
        try:
            return await getattr(servicer_cls(self.runtime), rpc)(request, context)
        except Aborted as e:
            return _failure(e.status)

    def close(self) -> None:
        self.executor.submit(database.close).result()
        self.executor.shutdown()


@pytest.fixture
def h(db) -> Iterator[Harness]:
    harness = Harness()
    yield harness
    harness.close()


async def test_a_write_returns_the_converted_row_and_wakes_the_change_feed(h):
    got = await h.call(
        CompanyServicer, "CreateCompany", cs.CreateCompanyRequest(name="A", slug="a")
    )
    assert (got.company.slug, got.company.name, len(got.company.id)) == ("a", "A", 26)
    assert got.company.HasField("create_time")
    assert h.writes == 1


async def test_a_read_does_not_wake_the_change_feed(h):
    await h.call(CompanyServicer, "CreateCompany", cs.CreateCompanyRequest(name="A", slug="a"))
    got = await h.call(CompanyServicer, "ListCompanies", cs.ListCompaniesRequest())
    assert [c.slug for c in got.companies] == ["a"]
    assert h.writes == 1


async def test_a_domain_error_aborts_with_status_reason_and_fields(h):
    got = await h.call(CompanyServicer, "CreateCompany", cs.CreateCompanyRequest(slug="Bad Slug"))
    assert got == Failure(
        grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_ARGUMENT", ["name", "slug"]
    )
    assert h.writes == 0


@pytest.mark.parametrize(
    "authorization, reason",
    [
        (None, "ERROR_REASON_MISSING_API_KEY"),
        ("", "ERROR_REASON_MISSING_API_KEY"),
        (f"Basic {ADMIN_KEY}", "ERROR_REASON_MISSING_API_KEY"),
        ("Bearer bmk_not-a-key", "ERROR_REASON_INVALID_API_KEY"),
    ],
)
async def test_the_bearer_key_is_required(h, authorization, reason):
    servicer = CompanyServicer(h.runtime)
    with pytest.raises(Aborted) as aborted:
        await servicer.ListCompanies(cs.ListCompaniesRequest(), FakeContext(authorization))
    assert _failure(aborted.value.status) == Failure(grpc.StatusCode.UNAUTHENTICATED, reason, [])


async def test_the_bearer_scheme_is_case_insensitive(h):
    servicer = CompanyServicer(h.runtime)
    got = await servicer.ListCompanies(
        cs.ListCompaniesRequest(), FakeContext(f"bearer  {ADMIN_KEY}")
    )
    assert list(got.companies) == []


async def test_an_unexpected_error_is_internal_and_says_nothing_of_it(h, monkeypatch, caplog):
    def broken(*args):
        raise RuntimeError("password=hunter2 in /srv/secret.py")

    monkeypatch.setattr(companies, "list_companies", broken)
    context = FakeContext(f"Bearer {ADMIN_KEY}")
    with pytest.raises(Aborted) as aborted:
        await CompanyServicer(h.runtime).ListCompanies(cs.ListCompaniesRequest(), context)
    status = aborted.value.status
    assert status.code == grpc.StatusCode.INTERNAL
    assert "hunter2" not in status.details and "secret" not in status.details
    assert "hunter2" in caplog.text  # the operator's log has it


async def test_database_work_runs_off_the_event_loop(h, monkeypatch):
    threads = []
    real = companies.list_companies

    def spying(*args):
        threads.append(threading.current_thread())
        return real(*args)

    monkeypatch.setattr(companies, "list_companies", spying)
    await h.call(CompanyServicer, "ListCompanies", cs.ListCompaniesRequest())
    assert threads and threads[0] is not threading.current_thread()
    assert threads[0].name.startswith("db")


async def test_callbacks_full_view_has_the_secret_url_and_the_list_view_does_not(h):
    await h.call(CompanyServicer, "CreateCompany", cs.CreateCompanyRequest(name="A", slug="a"))
    flow = (
        await h.call(FlowServicer, "CreateFlow", fs.CreateFlowRequest(company="a", name="f"))
    ).flow.id
    created = (
        await h.call(
            CallbackServicer,
            "CreateCallback",
            cbs.CreateCallbackRequest(
                flow_id=flow,
                content_type=cbs.CONTENT_TYPE_CUSTOM,
                custom_content_type="application/vnd.acme+json; charset=utf-8",
                timeout_ms=1500,
            ),
        )
    ).callback
    assert created.url == (
        f"http://edge.test/api/v1/a/{created.id}?patchworks_signature={created.signature}"
    )
    assert (created.content_type, created.timeout_ms, created.company) == (
        "application/vnd.acme+json; charset=utf-8",
        1500,
        "a",
    )

    listed = (
        await h.call(CallbackServicer, "ListCallbacks", cbs.ListCallbacksRequest(flow_id=flow))
    ).callbacks
    assert [(c.id, c.signature, c.url, c.company) for c in listed] == [(created.id, "", "", "a")]


@pytest.mark.parametrize(
    "content_type, stored",
    [
        (cbs.CONTENT_TYPE_UNSPECIFIED, "application/json"),
        (cbs.CONTENT_TYPE_JSON, "application/json"),
        (cbs.CONTENT_TYPE_XML, "application/xml"),
        (cbs.CONTENT_TYPE_TEXT, "text/plain"),
    ],
)
async def test_content_types_map_to_mime_types(h, content_type, stored):
    await h.call(CompanyServicer, "CreateCompany", cs.CreateCompanyRequest(name="A", slug="a"))
    flow = (
        await h.call(FlowServicer, "CreateFlow", fs.CreateFlowRequest(company="a", name="f"))
    ).flow.id
    request = cbs.CreateCallbackRequest(flow_id=flow, content_type=content_type)
    got = await h.call(CallbackServicer, "CreateCallback", request)
    assert got.callback.content_type == stored


async def test_definition_numbers_survive_the_struct_round_trip_as_integers(h):
    """Struct holds every number as a double; the stored definition must say 201, not 201.0."""
    await h.call(CompanyServicer, "CreateCompany", cs.CreateCompanyRequest(name="A", slug="a"))
    flow = (
        await h.call(FlowServicer, "CreateFlow", fs.CreateFlowRequest(company="a", name="f"))
    ).flow.id
    doc = {
        "shapes": [
            *CALLBACK_FLOW["shapes"][:2],
            {"id": "reply", "type": "callback", "status": 201, "unwrap": True},
        ]
    }
    saved = await h.call(
        FlowServicer, "UpdateDraft", fs.UpdateDraftRequest(flow_id=flow, definition=struct(doc))
    )
    assert saved.version.has_callback and saved.version.state == r.VERSION_STATE_DRAFT
    stored = FlowVersion.get_by_id(saved.version.id).definition
    assert json.loads(stored) == doc and '"status":201' in stored


async def test_api_key_secret_is_returned_once(h):
    await h.call(CompanyServicer, "CreateCompany", cs.CreateCompanyRequest(name="A", slug="a"))
    writes = h.writes
    created = await h.call(
        ApiKeyServicer, "CreateApiKey", aks.CreateApiKeyRequest(company="a", name="ci")
    )
    assert created.secret.startswith("bmk_") and created.api_key.company == "a"
    assert h.writes == writes  # keys are not edge data: nothing to wake

    # The new key authenticates, sees only its company, and its secret is never listed.
    listed = await h.call(ApiKeyServicer, "ListApiKeys", aks.ListApiKeysRequest(), created.secret)
    assert [k.id for k in listed.api_keys] == [created.api_key.id]
    assert created.secret.encode() not in listed.SerializeToString()


async def test_runs_list_without_shape_logs_and_get_with_them(h):
    company = (
        await h.call(CompanyServicer, "CreateCompany", cs.CreateCompanyRequest(name="A", slug="a"))
    ).company
    shapes = json.dumps([{"shape_id": "reply", "status": "ok"}])
    ok = insert_run(company.id, "", status="succeeded", shapes=shapes)
    failed = insert_run(company.id, "", status="failed", error="boom", response_status=502)

    listed = await h.call(RunServicer, "ListRuns", rs.ListRunsRequest(company="a"))
    assert [(x.id, len(x.shapes)) for x in listed.runs] == [(failed, 0), (ok, 0)]
    only_failed = await h.call(
        RunServicer, "ListRuns", rs.ListRunsRequest(company="a", status=r.RUN_STATUS_FAILED)
    )
    assert [(x.id, x.error, x.response_status) for x in only_failed.runs] == [(failed, "boom", 502)]
    got = (await h.call(RunServicer, "GetRun", rs.GetRunRequest(id=ok))).run
    assert (got.company, [s.shape_id for s in got.shapes]) == ("a", ["reply"])
