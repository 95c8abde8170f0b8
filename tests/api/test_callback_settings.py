"""Callback settings over gRPC: defaults, updates by mask, and their bounds (both backends)."""

from __future__ import annotations

import grpc
import pytest

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import flow_service_pb2 as fs
from tests.api.helpers import Stubs, failure


async def _flow(s: Stubs, md) -> str:
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="A", slug="a"), metadata=md)
    return (
        await s.flows.CreateFlow(fs.CreateFlowRequest(company="a", name="f"), metadata=md)
    ).flow.id


async def test_defaults_and_update_by_mask(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    flow_id = await _flow(s, md)
    cb = (
        await s.callbacks.CreateCallback(cbs.CreateCallbackRequest(flow_id=flow_id), metadata=md)
    ).callback
    assert (cb.content_type, cb.timeout_ms, cb.rate_limit_per_minute) == (
        "application/json",
        30000,
        0,
    )
    updated = (
        await s.callbacks.UpdateCallback(
            cbs.UpdateCallbackRequest(
                id=cb.id,
                timeout_ms=500,
                rate_limit_per_minute=120,
                update_mask=["timeout_ms", "rate_limit_per_minute"],
            ),
            metadata=md,
        )
    ).callback
    assert (updated.content_type, updated.timeout_ms, updated.rate_limit_per_minute) == (
        "application/json",
        500,
        120,
    )


@pytest.mark.parametrize("value", [-1, 1_000_001])
async def test_rate_limit_bounds(plane, value):
    s, md = Stubs.on(plane.channel), plane.metadata()
    flow_id = await _flow(s, md)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await s.callbacks.CreateCallback(
            cbs.CreateCallbackRequest(flow_id=flow_id, rate_limit_per_minute=value), metadata=md
        )
    f = failure(err.value)
    assert (f.code, f.reason, f.fields) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "ERROR_REASON_INVALID_ARGUMENT",
        ["rate_limit_per_minute"],
    )
