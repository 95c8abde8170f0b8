"""Every failure is one typed BoomerangError, with the server's reason and field violations;
reads are retried on UNAVAILABLE, mutations are not."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent import futures

import grpc
import pytest
from client_samples import CALLBACK_FLOW, MISSING_ID

from boomerang import sdk
from boomerang.local import free_port
from boomerang.sdk import Client
from boomerang.sdk.channel import service_config
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import company_service_pb2_grpc as cs_grpc
from boomerang.v1 import resources_pb2 as r
from tests.conftest import ADMIN_KEY


def _company_and_flow(c: Client) -> str:
    c.create_company(name="Acme", slug="acme")
    return c.create_flow("acme", "stock").flow.id


def _bad_definition(c: Client) -> None:
    flow_id = _company_and_flow(c)
    c.update_draft(
        flow_id,
        {
            "shapes": [
                {"id": "t", "type": "trigger"},
                {"id": "m", "type": "map", "expression": "a.["},
            ]
        },
    )


def _edit_deployed_draft(c: Client) -> None:
    flow_id = _company_and_flow(c)
    c.update_draft(flow_id, CALLBACK_FLOW, number=1)
    c.deploy_version(flow_id)
    c.update_draft(flow_id, CALLBACK_FLOW, number=1)


def _slug_taken(c: Client) -> None:
    c.create_company(name="Acme", slug="acme")
    c.create_company(name="Acme again", slug="acme")


def _company_key_creates_company(c: Client) -> None:
    c.create_company(name="Acme", slug="acme")
    secret = c.create_api_key("ci", company="acme").secret
    with Client(c.target, secret) as scoped:
        scoped.create_company(name="Other", slug="other")


CASES: dict[str, tuple[Callable[[Client], object], type[sdk.BoomerangError], str, list[str]]] = {
    "flow not found": (
        lambda c: c.get_flow(MISSING_ID),
        sdk.NotFound,
        "ERROR_REASON_FLOW_NOT_FOUND",
        [],
    ),
    "company not found, in a list": (
        lambda c: list(c.list_flows("nope")),
        sdk.NotFound,
        "ERROR_REASON_COMPANY_NOT_FOUND",
        [],
    ),
    "slug taken": (_slug_taken, sdk.AlreadyExists, "ERROR_REASON_SLUG_TAKEN", []),
    "bad name and slug": (
        lambda c: c.create_company(name="", slug="Not A Slug"),
        sdk.InvalidArgument,
        "ERROR_REASON_INVALID_ARGUMENT",
        ["name", "slug"],
    ),
    "bad custom content type": (
        lambda c: c.create_callback(_company_and_flow(c), content_type="not a mime type"),
        sdk.InvalidArgument,
        "ERROR_REASON_INVALID_ARGUMENT",
        ["custom_content_type"],
    ),
    "bad definition": (
        _bad_definition,
        sdk.InvalidArgument,
        "ERROR_REASON_INVALID_DEFINITION",
        ["definition.shapes[1].expression"],
    ),
    "draft deployed meanwhile": (
        _edit_deployed_draft,
        sdk.FailedPrecondition,
        "ERROR_REASON_VERSION_IMMUTABLE",
        [],
    ),
    "company key creates a company": (
        _company_key_creates_company,
        sdk.PermissionDenied,
        "ERROR_REASON_ADMIN_KEY_REQUIRED",
        [],
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_typed_errors(client, case):
    action, error_type, reason, fields = CASES[case]
    with pytest.raises(error_type) as err:
        await asyncio.to_thread(action, client)
    e = err.value
    assert isinstance(e, sdk.BoomerangError) and e.code == error_type.code
    assert e.reason == reason
    assert [f for f, _ in e.field_violations] == fields
    assert all(description for _, description in e.field_violations)
    assert str(e) == f"{e.code.name} ({reason}): {e.message}" and e.message


@pytest.mark.parametrize(
    ("key", "reason"),
    [("bmk_wrong", "ERROR_REASON_INVALID_API_KEY"), ("", "ERROR_REASON_MISSING_API_KEY")],
)
async def test_bad_key_is_unauthenticated(plane, key, reason):
    with Client(plane.target, key) as c, pytest.raises(sdk.Unauthenticated) as err:
        await asyncio.to_thread(c.get_company, "acme")
    assert err.value.reason == reason and err.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_unreachable_server_is_unavailable_without_details():
    port = free_port()  # nothing listens there
    with Client(f"127.0.0.1:{port}", ADMIN_KEY, timeout=5) as c:
        with pytest.raises(sdk.Unavailable) as err:
            c.create_company(name="Acme", slug="acme")
    assert err.value.reason == "" and err.value.field_violations == []
    assert str(err.value).startswith("UNAVAILABLE: ")


class FlakyCompanies(cs_grpc.CompanyServiceServicer):
    """Answers UNAVAILABLE to the first `failures` calls of each method, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[str, int] = {}

    def _attempt(self, method: str, context: grpc.ServicerContext) -> None:
        self.attempts[method] = self.attempts.get(method, 0) + 1
        if self.attempts[method] <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")

    def GetCompany(self, request, context):
        self._attempt("GetCompany", context)
        return cs.GetCompanyResponse(company=r.Company(slug=request.slug))

    def CreateCompany(self, request, context):
        self._attempt("CreateCompany", context)
        return cs.CreateCompanyResponse(company=r.Company(slug=request.slug))


@pytest.fixture
def flaky() -> Iterator[tuple[FlakyCompanies, str]]:
    servicer = FlakyCompanies(failures=2)
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    cs_grpc.add_CompanyServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_reads_are_retried_on_unavailable(flaky):
    servicer, target = flaky
    with Client(target, ADMIN_KEY) as c:
        assert c.get_company("acme").slug == "acme"
    assert servicer.attempts["GetCompany"] == 3


def test_mutations_are_not_retried_once_sent(flaky):
    servicer, target = flaky
    with Client(target, ADMIN_KEY) as c, pytest.raises(sdk.Unavailable) as err:
        c.create_company(name="Acme", slug="acme")
    assert err.value.message == "try again"
    assert servicer.attempts["CreateCompany"] == 1


def test_retry_policy_names_reads_only():
    names = {n["method"] for n in service_config()["methodConfig"][0]["name"]}
    assert {"GetCompany", "ListCompanies", "GetCallbackUrl", "ListRuns", "ListEdges"} <= names
    assert not {n for n in names if not n.startswith(("Get", "List"))}
    assert "SyncCallbacks" not in names


class SlowCompanies(cs_grpc.CompanyServiceServicer):
    """Answers GetCompany only after the client's deadline has passed."""

    def __init__(self) -> None:
        self.calls = 0

    def GetCompany(self, request, context):
        self.calls += 1
        while context.is_active():  # until the client's deadline cancels the call
            time.sleep(0.05)
        return cs.GetCompanyResponse(company=r.Company(slug=request.slug))


def test_a_read_past_its_deadline_is_deadline_exceeded_and_not_retried():
    servicer = SlowCompanies()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    cs_grpc.add_CompanyServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        with Client(f"127.0.0.1:{port}", ADMIN_KEY, timeout=0.5) as c:
            with pytest.raises(sdk.DeadlineExceeded) as err:
                c.get_company("acme")
        assert err.value.reason == ""
        # The deadline spans every attempt: DEADLINE_EXCEEDED is not retryable, nor is there
        # time left to retry in.
        assert servicer.calls == 1
    finally:
        server.stop(grace=None)
