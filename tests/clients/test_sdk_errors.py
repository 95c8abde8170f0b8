"""Every failure is one typed BoomerangError, with the server's reason and field violations;
reads are retried on UNAVAILABLE, mutations are not; any call refused with RetryInfo is sent
again after its delay, within the call's deadline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from contextlib import contextmanager

import grpc
import pytest
from client_samples import CALLBACK_FLOW, MISSING_ID
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from boomerang import sdk
from boomerang.local import free_port
from boomerang.sdk import Client
from boomerang.sdk.channel import (
    HINTED_ATTEMPTS,
    HINTED_MAX_WAIT_S,
    hinted_wait,
    open_channel,
    service_config,
)
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import company_service_pb2_grpc as cs_grpc
from boomerang.v1 import resources_pb2 as r
from tests.api.helpers import Stubs
from tests.api.test_company_calls import Gate, get_call, someone_waits
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


class _Companies(cs_grpc.CompanyServiceServicer):
    """GetCompany and CreateCompany, answered unless `_attempt` aborts the call first."""

    def _attempt(self, method: str, context: grpc.ServicerContext) -> None:
        raise NotImplementedError

    def GetCompany(self, request, context):
        self._attempt("GetCompany", context)
        return cs.GetCompanyResponse(company=r.Company(slug=request.slug))

    def CreateCompany(self, request, context):
        self._attempt("CreateCompany", context)
        return cs.CreateCompanyResponse(company=r.Company(slug=request.slug))


@contextmanager
def _serving(servicer: cs_grpc.CompanyServiceServicer) -> Iterator[str]:
    """`servicer` on a real gRPC server on loopback; yields its target."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    cs_grpc.add_CompanyServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(grace=None)


class FlakyCompanies(_Companies):
    """Answers UNAVAILABLE to the first `failures` calls of each method, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[str, int] = {}

    def _attempt(self, method: str, context: grpc.ServicerContext) -> None:
        self.attempts[method] = self.attempts.get(method, 0) + 1
        if self.attempts[method] <= self.failures:
            context.abort(grpc.StatusCode.UNAVAILABLE, "try again")


@pytest.fixture
def flaky() -> Iterator[tuple[FlakyCompanies, str]]:
    servicer = FlakyCompanies(failures=2)
    with _serving(servicer) as target:
        yield servicer, target


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


def _busy_status(retry_after_s: float | None) -> grpc.Status:
    """RESOURCE_EXHAUSTED as the control plane words a company's calls at once (with RetryInfo)
    or, without a delay, a refusal that sending again would not cure (no RetryInfo)."""
    reason = "ERROR_REASON_TOO_MANY_CALLS" if retry_after_s else "ERROR_REASON_QUOTA_EXCEEDED"
    info = any_pb2.Any()
    info.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=sdk.errors.DOMAIN))
    details = [info]
    if retry_after_s is not None:
        retry = error_details_pb2.RetryInfo()
        retry.retry_delay.FromMilliseconds(round(retry_after_s * 1000))
        details.append(any_pb2.Any())
        details[-1].Pack(retry)
    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="busy", details=details)
    return rpc_status.to_status(status)


class BusyCompanies(_Companies):
    """Refuses the first `refusals` calls of each method with `_busy_status`, then answers."""

    def __init__(self, refusals: int, retry_after_s: float | None) -> None:
        self.refusals = refusals
        self.retry_after_s = retry_after_s
        self.attempts: dict[str, list[float]] = {}

    def _attempt(self, method: str, context: grpc.ServicerContext) -> None:
        times = self.attempts.setdefault(method, [])
        times.append(time.monotonic())
        if len(times) <= self.refusals:
            context.abort_with_status(_busy_status(self.retry_after_s))


@contextmanager
def _busy(refusals: int, retry_after_s: float | None) -> Iterator[tuple[BusyCompanies, str]]:
    servicer = BusyCompanies(refusals, retry_after_s)
    with _serving(servicer) as target:
        yield servicer, target


def test_a_refusal_with_retry_info_is_sent_again_after_its_delay_mutations_too():
    with (
        _busy(refusals=2, retry_after_s=0.05) as (servicer, target),
        Client(target, ADMIN_KEY) as c,
    ):
        assert c.get_company("acme").slug == "acme"
        assert c.create_company(name="Acme", slug="acme").slug == "acme"
    for method in ("GetCompany", "CreateCompany"):
        first, second, third = servicer.attempts[method]
        # Never sooner than asked, and later each time (hinted_wait doubles it).
        assert second - first >= 0.05 and third - second >= 0.1, servicer.attempts


def test_a_refusal_without_retry_info_is_not_sent_again():
    with (
        _busy(refusals=1, retry_after_s=None) as (servicer, target),
        Client(target, ADMIN_KEY) as c,
    ):
        with pytest.raises(sdk.ResourceExhausted) as err:
            c.create_company(name="Acme", slug="acme")
    assert err.value.reason == "ERROR_REASON_QUOTA_EXCEEDED"
    assert err.value.retry_delay is None
    assert len(servicer.attempts["CreateCompany"]) == 1


def test_hinted_retries_stop_after_their_attempts_with_the_last_refusal():
    with (
        _busy(refusals=99, retry_after_s=0.01) as (servicer, target),
        Client(target, ADMIN_KEY) as c,
    ):
        with pytest.raises(sdk.ResourceExhausted) as err:
            c.get_company("acme")
    assert (err.value.reason, err.value.retry_delay) == ("ERROR_REASON_TOO_MANY_CALLS", 0.01)
    assert len(servicer.attempts["GetCompany"]) == HINTED_ATTEMPTS


def test_a_hinted_wait_past_the_deadline_is_not_waited():
    with _busy(refusals=99, retry_after_s=0.5) as (servicer, target):
        with Client(target, ADMIN_KEY, timeout=0.4) as c:
            started = time.monotonic()
            with pytest.raises(sdk.ResourceExhausted):
                c.get_company("acme")
    assert time.monotonic() - started < 0.4  # it failed at once rather than sleep to no purpose
    assert len(servicer.attempts["GetCompany"]) == 1


def test_hinted_waits_are_at_least_the_delay_doubling_and_capped():
    for attempt, least in ((1, 0.1), (2, 0.2), (3, 0.4), (9, HINTED_MAX_WAIT_S)):
        waits = [hinted_wait(attempt, 0.1) for _ in range(200)]
        assert least <= min(waits) and max(waits) <= least * 1.5
    assert hinted_wait(1, 60.0) <= HINTED_MAX_WAIT_S * 1.5  # a server cannot park a client


class _Codes(grpc.UnaryUnaryClientInterceptor):
    """Records each attempt's status code (OK included)."""

    def __init__(self) -> None:
        self.codes: list[grpc.StatusCode] = []

    def intercept_unary_unary(self, continuation, client_call_details, request):
        outcome = continuation(client_call_details, request)
        self.codes.append(outcome.code())
        return outcome


@pytest.mark.parametrize("plane_settings", [{"company_api_calls": 1, "company_api_waiting": 1}])
async def test_a_call_refused_for_its_companys_calls_at_once_goes_through_once_they_end(
    plane, client, monkeypatch
):
    """The real refusal: acme's one slot and its one place in line are taken, so the SDK's call
    is refused TOO_MANY_CALLS; it is sent again after the RetryInfo delay, and once the slow
    call has ended it is answered, where before the caller got the refusal."""
    s = Stubs.on(plane.channel)
    await client_in_thread(client.create_company, name="Acme", slug="acme")
    key = (await client_in_thread(client.create_api_key, "k", company="acme")).secret
    gate = Gate(monkeypatch)
    acme = (("authorization", f"Bearer {key}"),)
    running = asyncio.ensure_future(get_call(s, acme, "acme"))
    await gate.reached()
    waiting = asyncio.ensure_future(get_call(s, acme, "acme"))
    await someone_waits(plane.plane.runtime.company_calls)
    codes = _Codes()
    channel = grpc.intercept_channel(open_channel(plane.target), codes)
    with Client(plane.target, key, channel=channel) as own:
        answer = asyncio.ensure_future(asyncio.to_thread(own.get_company, "acme"))
        for _ in range(500):
            if codes.codes:
                break
            await asyncio.sleep(0.01)
        assert codes.codes[0] == grpc.StatusCode.RESOURCE_EXHAUSTED
        gate.open.set()
        assert (await answer).slug == "acme"
    assert codes.codes[-1] == grpc.StatusCode.OK and len(codes.codes) >= 2
    assert [(await c).company.slug for c in (running, waiting)] == ["acme", "acme"]


async def client_in_thread(method, *args, **kwargs):
    return await asyncio.to_thread(method, *args, **kwargs)
