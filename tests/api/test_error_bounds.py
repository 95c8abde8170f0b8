"""Errors stay deliverable however large the bad input (docs/errors.md, "Bounds").

A status travels in trailing metadata, which gRPC clients refuse above 16 KB: before the bounds,
50 bad shapes, a 5,000-character value, a 1 MB slug or 10,000 field-mask entries reached the
caller as RESOURCE_EXHAUSTED instead of the violations.
"""

from __future__ import annotations

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import flow_service_pb2 as fs
from control_plane.domain.errors import DomainError, Violations
from control_plane.engine import DefinitionError, validate_definition
from control_plane.grpckit import status
from tests.api.helpers import Stubs, build_tenant, database_state, struct

TRIGGER = {"id": "trigger", "type": "trigger"}
WIRE_LIMIT = 8 * 1024  # well under the 16 KB clients accept, as the brief of issue 7 asks


def metadata_bytes(err: grpc.aio.AioRpcError) -> int:
    return sum(len(k) + len(v) for k, v in err.trailing_metadata() or ())


def details(err: grpc.aio.AioRpcError):
    """(ErrorInfo, BadRequest or None) of a failed call."""
    info, bad = None, None
    for detail in rpc_status.from_call(err).details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
    return info, bad


async def fails(call) -> grpc.aio.AioRpcError:
    try:
        await call
    except grpc.aio.AioRpcError as err:
        return err
    raise AssertionError("the call succeeded")


def assert_bounded(err: grpc.aio.AioRpcError) -> None:
    assert metadata_bytes(err) < WIRE_LIMIT, metadata_bytes(err)
    assert len((err.details() or "").encode()) <= status.MAX_MESSAGE_BYTES
    _, bad = details(err)
    for v in bad.field_violations if bad else ():
        assert len(v.field.encode()) <= status.MAX_FIELD_BYTES
        assert len(v.description.encode()) <= status.MAX_DESCRIPTION_BYTES


async def test_fifty_bad_shapes_with_huge_values_give_twenty_violations_and_a_count(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    t = await build_tenant(s, md, "acme")
    before = database_state()
    shapes = [TRIGGER] + [{"id": f"s{i}", "type": "z" * 5000} for i in range(50)]

    err = await fails(
        s.flows.UpdateDraft(
            fs.UpdateDraftRequest(flow_id=t.flow, definition=struct({"shapes": shapes})),
            metadata=md,
        )
    )

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert_bounded(err)
    info, bad = details(err)
    assert info.reason == "ERROR_REASON_INVALID_DEFINITION"
    assert [v.field for v in bad.field_violations] == [
        f"definition.shapes[{i}].type" for i in range(1, 21)
    ]
    assert info.metadata[status.OMITTED_VIOLATIONS] == "30"
    # The 5,000-character type is quoted, cut with an ellipsis.
    assert all("zzz…" in v.description for v in bad.field_violations)
    assert database_state() == before


async def test_a_megabyte_slug_is_refused_in_a_few_hundred_bytes(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    huge = "x" * 1_000_000
    for call in (
        s.companies.CreateCompany(cs.CreateCompanyRequest(name=huge, slug=huge), metadata=md),
        s.companies.GetCompany(cs.GetCompanyRequest(slug=huge), metadata=md),
        s.flows.ListFlows(fs.ListFlowsRequest(company=huge), metadata=md),
    ):
        err = await fails(call)
        assert err.code() in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND)
        assert_bounded(err)
        assert len(err.details()) < 300


async def test_ten_thousand_mask_entries(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    t = await build_tenant(s, md, "acme")
    before = database_state()
    mask = [f"no_such_field_{i}_" + "y" * 200 for i in range(10_000)]

    err = await fails(
        s.callbacks.UpdateCallback(
            cbs.UpdateCallbackRequest(id=t.callback, update_mask=mask), metadata=md
        )
    )

    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert_bounded(err)
    info, bad = details(err)
    assert len(bad.field_violations) == status.MAX_VIOLATIONS
    assert info.metadata[status.OMITTED_VIOLATIONS] == str(10_000 - status.MAX_VIOLATIONS)
    assert database_state() == before


async def test_huge_keys_in_a_definition_are_cut_in_the_field_path(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    t = await build_tenant(s, md, "acme")
    doc = {"shapes": [TRIGGER], **{f"{i}" + "k" * 5000: 1 for i in range(30)}}

    err = await fails(
        s.flows.UpdateDraft(
            fs.UpdateDraftRequest(flow_id=t.flow, definition=struct(doc)), metadata=md
        )
    )

    assert_bounded(err)
    _, bad = details(err)
    assert all(v.field.endswith("…") for v in bad.field_violations)


def test_clip_never_splits_a_character():
    text = "é" * 100  # two bytes each
    cut = status.clip(text, 51)
    assert cut.endswith("…") and len(cut.encode()) <= 51
    assert set(cut[:-1]) == {"é"}
    assert status.clip("short", 51) == "short"


def test_the_worst_case_status_fits_the_bound():
    """Every part at its maximum, in four-byte characters: the serialised status stays small."""
    wide = "\U0001f600" * 10_000
    err = DomainError(
        "invalid_argument", "INVALID_ARGUMENT", wide, [(wide, wide) for _ in range(1000)]
    )
    err.metadata = {wide + str(i): wide for i in range(100)}  # as quota errors carry metadata
    sent = status.to_status(err)
    total = sum(len(k) + len(v) for k, v in sent.trailing_metadata)
    assert total < 6 * 1024, total


def test_a_definition_of_a_million_bad_shapes_stops_listing_at_a_hundred():
    """Memory, not only the status: violations are not collected by the million."""
    doc = {"shapes": [{"id": "t", "type": "trigger"}] + [{}] * 1_000_000}
    try:
        validate_definition(doc)
    except DefinitionError as e:
        assert len(e.violations) == 101
        assert e.violations[-1] == (
            "definition.shapes",
            "not checked from shapes[51] on: too many violations",  # two per empty shape,
        )
    else:
        raise AssertionError("accepted")


def test_violations_beyond_those_kept_are_still_counted():
    v = Violations()
    for i in range(100_000):
        v.add(f"update_mask[{i}]", "unknown field")
    try:
        v.raise_if_any()
    except DomainError as err:
        assert len(err.violations) == Violations.MAX_KEPT
        sent = status.to_status(err)
    else:
        raise AssertionError("nothing raised")
    (blob,) = [v for k, v in sent.trailing_metadata if k == "grpc-status-details-bin"]
    info = error_details_pb2.ErrorInfo()
    status_pb2.Status.FromString(blob).details[0].Unpack(info)
    assert info.metadata[status.OMITTED_VIOLATIONS] == str(100_000 - status.MAX_VIOLATIONS)
