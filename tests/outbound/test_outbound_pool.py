"""The outbound transport's connection pool (transport.LinearPool) against a real server on
loopback: connections are kept alive and reused, never handed to two requests, bounded, and a
connection that expired or that the server closed is not reused. The upstream records the
client port of each request: one port is one connection. One company's calls in flight are
bounded, so its slow upstream leaves the pool to the others."""

from __future__ import annotations

import asyncio
import dataclasses
import time

import httpx

from control_plane.outbound.client import Call
from control_plane.outbound.egress import EgressPolicy, parse_allow
from control_plane.outbound.transport import GuardedTransport
from tests.outbound.conftest import make_outbound
from tests.outbound.upstream import Reply, Upstream


def call(url: str) -> Call:
    return Call(method="GET", url=url, idempotency_key="run1.shape1", timeout_s=5.0)


def later() -> float:
    return time.monotonic() + 30.0


def ports(upstream: Upstream, path: str) -> set[int]:
    return {seen.port for seen in upstream.requests(path)}


async def test_sequential_calls_reuse_one_connection(outbound, upstream):
    upstream.route("/a", Reply(200, {"ok": True}))
    for _ in range(20):
        answer = await outbound.call(call(f"{upstream.url}/a"), later())
        assert answer.status == 200
    assert len(upstream.requests("/a")) == 20
    assert len(ports(upstream, "/a")) == 1
    assert len(outbound.transport._pool.connections) == 1


async def test_concurrent_calls_stay_within_the_pool_and_reuse_it(upstream):
    outbound = make_outbound(max_connections=4)
    upstream.route("/slow", Reply(200, {"ok": True}, delay_s=0.05))
    try:
        for _ in range(2):
            answers = await asyncio.gather(
                *(outbound.call(call(f"{upstream.url}/slow"), later()) for _ in range(16))
            )
            assert [a.status for a in answers] == [200] * 16
        assert len(upstream.requests("/slow")) == 32
        # Four connections at most, each one request at a time, all reused by the second wave.
        assert 1 <= len(ports(upstream, "/slow")) <= 4
        assert len(outbound.transport._pool.connections) <= 4
    finally:
        await outbound.aclose()


async def test_a_connection_the_server_closed_is_not_reused(outbound, upstream):
    upstream.route("/bye", Reply(200, {"ok": True}, hang_up=True))
    first = await outbound.call(call(f"{upstream.url}/bye"), later())
    await asyncio.sleep(0.2)  # the server's FIN reaches the idle connection
    # Sent on the dead connection, this would fail ("server disconnected"): it goes on a new one.
    second = await outbound.call(call(f"{upstream.url}/bye"), later())
    assert (first.status, second.status) == (200, 200)
    assert len(ports(upstream, "/bye")) == 2


async def test_an_expired_connection_is_closed_not_reused(upstream):
    limits = httpx.Limits(max_connections=2, max_keepalive_connections=2, keepalive_expiry=0.05)
    transport = GuardedTransport(EgressPolicy(parse_allow("127.0.0.1/32")), limits, 1 << 20)
    upstream.route("/a", Reply(200, {"ok": True}))
    async with httpx.AsyncClient(transport=transport) as client:
        assert (await client.get(f"{upstream.url}/a")).status_code == 200
        await asyncio.sleep(0.2)
        assert (await client.get(f"{upstream.url}/a")).status_code == 200
        assert len(transport._pool.connections) == 1
    assert len(ports(upstream, "/a")) == 2


async def test_a_full_pool_gives_an_idle_connection_up_for_another_origin(upstream):
    outbound = make_outbound(max_connections=2)
    other = Upstream()
    upstream.route("/slow", Reply(200, {"ok": True}, delay_s=0.05))
    other.route("/b", Reply(200, {"other": True}))
    try:
        await asyncio.gather(*(outbound.call(call(f"{upstream.url}/slow"), later()) for _ in "xy"))
        assert len(outbound.transport._pool.connections) == 2  # both idle, to the first origin
        answer = await outbound.call(call(f"{other.url}/b"), later())
        assert answer.status == 200
        assert answer.body == b'{"other": true}'
        assert len(outbound.transport._pool.connections) == 2
    finally:
        await outbound.aclose()
        other.close()


async def test_one_companys_slow_calls_leave_the_pool_to_the_others(upstream):
    """acme's upstream takes a second an answer and acme makes twelve calls at once, on a pool of
    four with two per company: globex's calls still go straight through, and acme never has more
    than two in flight. Without the per-company bound acme's calls took the whole pool."""
    outbound = make_outbound(max_connections=4, company_calls=2)
    upstream.route("/slow", Reply(200, {"ok": True}, delay_s=1.0))
    upstream.route("/fast", Reply(200, {"ok": True}))
    slow = dataclasses.replace(call(f"{upstream.url}/slow"), company="acme")
    fast = dataclasses.replace(call(f"{upstream.url}/fast"), company="globex")
    try:
        acme = [asyncio.ensure_future(outbound.call(slow, later())) for _ in range(12)]
        await asyncio.sleep(0.2)  # acme's calls are in flight or waiting
        assert outbound.company_slots.in_flight("acme") == 2
        answers = await asyncio.gather(*(outbound.call(fast, later()) for _ in range(4)))
        assert [a.status for a in answers] == [200] * 4
        assert not any(task.done() for task in acme)  # globex did not wait for acme's calls
        for task in acme:
            task.cancel()
        await asyncio.gather(*acme, return_exceptions=True)
        assert not outbound.company_slots._slots  # nothing kept for companies with no calls
    finally:
        await outbound.aclose()
