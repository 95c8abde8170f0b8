"""The SDK against grpc_testing's fake channel: answers a real server cannot easily be made to
give (every status code, odd or contradictory details), checked one call at a time.

The fake channel hands each call to the test (`take_unary_unary`), which answers it by hand.
gRPC core's retry policy does not run on it; retries and deadlines are checked against real
servers in test_sdk_errors.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import grpc
import grpc_testing
import pytest
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2

from boomerang import sdk
from boomerang.sdk import Client
from boomerang.sdk.channel import SERVICES
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as r

GET_FLOW = fs.DESCRIPTOR.services_by_name["FlowService"].methods_by_name["GetFlow"]
LIST_COMPANIES = cs.DESCRIPTOR.services_by_name["CompanyService"].methods_by_name["ListCompanies"]
KEY = "bmk_fake"


class Fake:
    """A Client on a fake channel, with its calls run on a thread so the test can answer."""

    def __init__(self, api_key: str = KEY) -> None:
        self.channel = grpc_testing.channel(SERVICES, grpc_testing.strict_real_time())
        self.client = Client("fake:0", api_key, channel=self.channel, timeout=5)
        self.pool = ThreadPoolExecutor(1)

    def start(self, call: Callable[[Client], Any]) -> Future:
        return self.pool.submit(call, self.client)

    def answer(
        self,
        method,
        response: Message | None = None,
        code: grpc.StatusCode = grpc.StatusCode.OK,
        details: str = "",
        status: status_pb2.Status | None = None,
    ) -> tuple[dict[str, str], Message]:
        """Takes the next call of `method`, answers it; returns its metadata and request."""
        metadata, request, rpc = self.channel.take_unary_unary(method)
        trailers = (
            () if status is None else (("grpc-status-details-bin", status.SerializeToString()),)
        )
        rpc.terminate(response, trailers, code, details)
        return dict(metadata), request


@pytest.fixture
def fake() -> Iterator[Fake]:
    f = Fake()
    yield f
    f.pool.shutdown(wait=False, cancel_futures=True)


def _status(code: grpc.StatusCode, message: str, *details: Message) -> status_pb2.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    for detail in details:
        status.details.add().Pack(detail)
    return status


ERROR_CLASSES = {
    grpc.StatusCode.CANCELLED: sdk.Cancelled,
    grpc.StatusCode.UNKNOWN: sdk.Unknown,
    grpc.StatusCode.INVALID_ARGUMENT: sdk.InvalidArgument,
    grpc.StatusCode.DEADLINE_EXCEEDED: sdk.DeadlineExceeded,
    grpc.StatusCode.NOT_FOUND: sdk.NotFound,
    grpc.StatusCode.ALREADY_EXISTS: sdk.AlreadyExists,
    grpc.StatusCode.PERMISSION_DENIED: sdk.PermissionDenied,
    grpc.StatusCode.RESOURCE_EXHAUSTED: sdk.ResourceExhausted,
    grpc.StatusCode.FAILED_PRECONDITION: sdk.FailedPrecondition,
    grpc.StatusCode.ABORTED: sdk.Aborted,
    grpc.StatusCode.OUT_OF_RANGE: sdk.OutOfRange,
    grpc.StatusCode.UNIMPLEMENTED: sdk.Unimplemented,
    grpc.StatusCode.INTERNAL: sdk.Internal,
    grpc.StatusCode.UNAVAILABLE: sdk.Unavailable,
    grpc.StatusCode.DATA_LOSS: sdk.DataLoss,
    grpc.StatusCode.UNAUTHENTICATED: sdk.Unauthenticated,
}


def test_every_error_code_has_its_class():
    assert set(ERROR_CLASSES) == set(grpc.StatusCode) - {grpc.StatusCode.OK}


@pytest.mark.parametrize("code", list(ERROR_CLASSES), ids=lambda c: c.name)
def test_each_code_with_reason_and_violations_becomes_its_typed_error(fake, code):
    call = fake.start(lambda c: c.get_flow("01jflow0000000000000000000"))
    info = error_details_pb2.ErrorInfo(
        reason="ERROR_REASON_FLOW_NOT_FOUND", domain="boomerang.dev", metadata={"id": "x"}
    )
    bad = error_details_pb2.BadRequest()
    bad.field_violations.add(field="flow_id", description="must be a lowercase ULID")
    bad.field_violations.add(field="page_size", description="at most 1000")
    fake.answer(
        GET_FLOW, code=code, details="it failed", status=_status(code, "it failed", info, bad)
    )
    with pytest.raises(ERROR_CLASSES[code]) as err:
        call.result(5)
    assert err.value.code == code
    assert err.value.reason == "ERROR_REASON_FLOW_NOT_FOUND"
    assert err.value.message == "it failed"
    assert err.value.field_violations == [
        ("flow_id", "must be a lowercase ULID"),
        ("page_size", "at most 1000"),
    ]
    assert isinstance(err.value, sdk.BoomerangError)


def test_boomerang_reason_wins_over_another_domains(fake):
    call = fake.start(lambda c: c.get_flow("f"))
    theirs = error_details_pb2.ErrorInfo(reason="QUOTA", domain="proxy.example")
    ours = error_details_pb2.ErrorInfo(reason="ERROR_REASON_QUOTA_EXCEEDED", domain="boomerang.dev")
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    fake.answer(GET_FLOW, code=code, details="over", status=_status(code, "over", theirs, ours))
    with pytest.raises(sdk.ResourceExhausted) as err:
        call.result(5)
    assert err.value.reason == "ERROR_REASON_QUOTA_EXCEEDED"


def test_a_foreign_reason_is_kept_when_there_is_no_boomerang_one(fake):
    call = fake.start(lambda c: c.get_flow("f"))
    theirs = error_details_pb2.ErrorInfo(reason="RATE_LIMITED", domain="proxy.example")
    code = grpc.StatusCode.UNAVAILABLE
    fake.answer(GET_FLOW, code=code, details="busy", status=_status(code, "busy", theirs))
    with pytest.raises(sdk.Unavailable) as err:
        call.result(5)
    assert err.value.reason == "RATE_LIMITED"


def test_details_that_contradict_the_status_line_are_ignored(fake):
    # A proxy rewrote the status but kept the server's details: trust the status line.
    call = fake.start(lambda c: c.get_flow("f"))
    info = error_details_pb2.ErrorInfo(reason="ERROR_REASON_FLOW_NOT_FOUND", domain="boomerang.dev")
    stale = _status(grpc.StatusCode.NOT_FOUND, "no flow", info)
    fake.answer(GET_FLOW, code=grpc.StatusCode.INTERNAL, details="proxy error", status=stale)
    with pytest.raises(sdk.Internal) as err:
        call.result(5)
    assert (err.value.reason, err.value.message, err.value.field_violations) == (
        "",
        "proxy error",
        [],
    )


def test_an_error_without_details_has_no_reason(fake):
    call = fake.start(lambda c: c.get_flow("f"))
    fake.answer(GET_FLOW, code=grpc.StatusCode.DEADLINE_EXCEEDED, details="Deadline Exceeded")
    with pytest.raises(sdk.DeadlineExceeded) as err:
        call.result(5)
    assert err.value.reason == "" and str(err.value) == "DEADLINE_EXCEEDED: Deadline Exceeded"


def test_unknown_detail_types_are_skipped(fake):
    call = fake.start(lambda c: c.get_flow("f"))
    code = grpc.StatusCode.NOT_FOUND
    odd = status_pb2.Status(code=code_pb2.NOT_FOUND, message="gone")
    odd.details.add().Pack(error_details_pb2.Help())
    odd.details.add().Pack(
        error_details_pb2.ErrorInfo(reason="ERROR_REASON_FLOW_NOT_FOUND", domain="boomerang.dev")
    )
    fake.answer(GET_FLOW, code=code, details="gone", status=odd)
    with pytest.raises(sdk.NotFound) as err:
        call.result(5)
    assert err.value.reason == "ERROR_REASON_FLOW_NOT_FOUND"


def test_the_key_travels_as_bearer_metadata_and_no_key_sends_none():
    with_key = Fake("bmk_secret")
    without = Fake("")
    try:
        call = with_key.start(lambda c: c.get_flow("f"))
        metadata, request = with_key.answer(GET_FLOW, fs.GetFlowResponse(flow=r.Flow(id="f")))
        assert call.result(5).id == "f" and request.id == "f"
        assert metadata["authorization"] == "Bearer bmk_secret"
        call = without.start(lambda c: c.get_flow("f"))
        metadata, _ = without.answer(GET_FLOW, fs.GetFlowResponse(flow=r.Flow(id="f")))
        call.result(5)
        assert "authorization" not in metadata
    finally:
        with_key.pool.shutdown(wait=False)
        without.pool.shutdown(wait=False)


def test_lists_fetch_the_next_page_only_when_it_is_reached(fake):
    pages = fake.client.list_companies(page_size=2)
    first = fake.start(lambda c: [next(pages), next(pages)])
    _, request = fake.answer(
        LIST_COMPANIES,
        cs.ListCompaniesResponse(
            companies=[r.Company(slug="a"), r.Company(slug="b")], next_page_token="t2"
        ),
    )
    assert (request.page_size, request.page_token) == (2, "")
    assert [c.slug for c in first.result(5)] == ["a", "b"]
    rest = fake.start(lambda c: list(pages))
    _, request = fake.answer(
        LIST_COMPANIES, cs.ListCompaniesResponse(companies=[r.Company(slug="c")])
    )
    assert request.page_token == "t2"
    assert [c.slug for c in rest.result(5)] == ["c"]


def test_an_error_on_a_later_page_is_typed_too(fake):
    pages = fake.client.list_companies()
    call = fake.start(lambda c: list(pages))
    fake.answer(
        LIST_COMPANIES,
        cs.ListCompaniesResponse(companies=[r.Company(slug="a")], next_page_token="bad"),
    )
    code = grpc.StatusCode.INVALID_ARGUMENT
    bad = error_details_pb2.BadRequest()
    bad.field_violations.add(field="page_token", description="not a token this server issued")
    fake.answer(
        LIST_COMPANIES, code=code, details="bad token", status=_status(code, "bad token", bad)
    )
    with pytest.raises(sdk.InvalidArgument) as err:
        call.result(5)
    assert err.value.field_violations == [("page_token", "not a token this server issued")]
