"""A company's API calls at once are bounded (control_plane/grpckit/company_calls.py,
docs/quotas.md "Calls at once"): with its slots taken, its next calls wait in line and the ones
past the line are refused RESOURCE_EXHAUSTED (TOO_MANY_CALLS) at once, with a RetryInfo delay,
while another company's calls and an installation-wide key's run as usual; a cancelled call keeps
its slot until its job ends; a freed slot goes to the first in line."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass

import grpc
import pytest

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import company_service_pb2 as cs
from control_plane.domain import companies
from control_plane.grpckit.company_calls import RETRY_AFTER_S, CompanyCalls
from tests.api.helpers import Stubs
from tests.api.test_quotas import quota_info, retry_delay

#: One slot and a line of one for each company.
ONE_AND_ONE = pytest.mark.parametrize(
    "plane_settings", [{"company_api_calls": 1, "company_api_waiting": 1}]
)


class Gate:
    """Makes GetCompany of `acme` block on its database thread until opened."""

    def __init__(self, monkeypatch) -> None:
        self.open = threading.Event()
        self.entered = threading.Semaphore(0)  # one release per job that reached the gate
        real = companies.get_company

        def gated(p, slug):
            if slug == "acme":
                self.entered.release()
                assert self.open.wait(10), "the gate was never opened"
            return real(p, slug)

        monkeypatch.setattr(companies, "get_company", gated)

    async def reached(self) -> None:
        """A job reached the gate (it holds a slot and a thread)."""
        assert await asyncio.to_thread(self.entered.acquire, True, 5.0)


async def _key(s: Stubs, md, slug: str) -> tuple[tuple[str, str], ...]:
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name=slug, slug=slug), metadata=md)
    key = await s.keys.CreateApiKey(aks.CreateApiKeyRequest(company=slug, name="k"), metadata=md)
    return (("authorization", f"Bearer {key.secret}"),)


async def someone_waits(calls) -> None:
    for _ in range(500):
        if calls._queues:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("no call waits in line")


def get_call(s: Stubs, md, slug: str):
    return s.companies.GetCompany(cs.GetCompanyRequest(slug=slug), metadata=md)


@pytest.mark.parametrize("plane_settings", [{"db_threads": 4, "company_api_calls": 2}])
async def test_a_flood_of_one_companys_slow_calls_leaves_threads_for_the_others(plane, monkeypatch):
    """Eight slow calls of acme at once: without the bound they would take all four database
    threads, and globex's call would wait for them."""
    s, admin = Stubs.on(plane.channel), plane.metadata()
    acme, globex = await _key(s, admin, "acme"), await _key(s, admin, "globex")
    gate = Gate(monkeypatch)
    flood = [asyncio.ensure_future(get_call(s, acme, "acme")) for _ in range(8)]
    await gate.reached()
    await gate.reached()
    theirs = await asyncio.wait_for(get_call(s, globex, "globex"), 5)
    assert theirs.company.slug == "globex"
    assert plane.plane.runtime.company_calls.busy(theirs.company.id) == 0
    gate.open.set()
    assert [(await call).company.slug for call in flood] == ["acme"] * 8


@ONE_AND_ONE
async def test_past_the_line_calls_are_refused_and_other_tenants_are_not_held(plane, monkeypatch):
    s, admin = Stubs.on(plane.channel), plane.metadata()
    acme, globex = await _key(s, admin, "acme"), await _key(s, admin, "globex")
    gate = Gate(monkeypatch)
    calls = plane.plane.runtime.company_calls
    running = asyncio.ensure_future(get_call(s, acme, "acme"))
    await gate.reached()
    waiting = asyncio.ensure_future(get_call(s, acme, "acme"))
    await someone_waits(calls)  # on the loop, not on a thread
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get_call(s, acme, "acme")
    assert quota_info(caught.value) == (
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "ERROR_REASON_TOO_MANY_CALLS",
        {"running": "1", "waiting": "1"},
    )
    assert retry_delay(caught.value) == RETRY_AFTER_S  # nothing was done: send it again then
    # Another company's key, and an installation-wide key, are not held by acme's line.
    assert (await get_call(s, globex, "globex")).company.slug == "globex"
    assert (await get_call(s, admin, "globex")).company.slug == "globex"
    assert not waiting.done()
    gate.open.set()
    assert (await running).company.slug == "acme"
    assert (await waiting).company.slug == "acme"
    await asyncio.sleep(0.05)  # the last slot comes back from its thread through the loop
    assert not calls._busy and not calls._queues


@dataclass
class Held:
    """acme's one slot, held by a call whose job waits at the gate."""

    s: Stubs
    acme: tuple[tuple[str, str], ...]
    gate: Gate
    calls: CompanyCalls
    call: grpc.aio.UnaryUnaryCall
    answer: asyncio.Future


async def _hold(plane, monkeypatch) -> Held:
    s = Stubs.on(plane.channel)
    acme = await _key(s, plane.metadata(), "acme")
    gate = Gate(monkeypatch)
    call = get_call(s, acme, "acme")
    held = Held(s, acme, gate, plane.plane.runtime.company_calls, call, asyncio.ensure_future(call))
    await gate.reached()
    return held


@ONE_AND_ONE
async def test_a_cancelled_call_keeps_its_slot_until_its_job_ends(plane, monkeypatch):
    held = await _hold(plane, monkeypatch)
    held.call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await held.answer
    await asyncio.sleep(0.1)  # the server sees the cancel
    # Its job still runs on a thread, so the next call waits rather than taking a second one.
    second = asyncio.ensure_future(get_call(held.s, held.acme, "acme"))
    await someone_waits(held.calls)
    assert sum(held.calls._busy.values()) == 1
    held.gate.open.set()
    assert (await second).company.slug == "acme"


@ONE_AND_ONE
async def test_a_waiter_that_gives_up_leaves_the_line(plane, monkeypatch):
    held = await _hold(plane, monkeypatch)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        request = cs.GetCompanyRequest(slug="acme")
        await held.s.companies.GetCompany(request, metadata=held.acme, timeout=0.3)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    for _ in range(100):
        if not held.calls._queues:
            break
        await asyncio.sleep(0.01)
    assert not held.calls._queues  # its place in line is gone: the next call may wait there
    held.gate.open.set()
    assert (await held.answer).company.slug == "acme"
    assert (await get_call(held.s, held.acme, "acme")).company.slug == "acme"
