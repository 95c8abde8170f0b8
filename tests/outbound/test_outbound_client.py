"""The outbound client against real HTTP servers on loopback: retries, timeouts, redirects, the
egress rule on the address connected to, response caps."""

from __future__ import annotations

import gzip
import logging
import time

import pytest

from boomerang.local import free_port
from control_plane.outbound.client import Call, CallFailed
from control_plane.outbound.egress import EgressRefused
from control_plane.outbound.transport import ResponseTooLarge
from tests.outbound.conftest import make_outbound
from tests.outbound.upstream import Reply, Upstream


def call(url: str, **kw) -> Call:
    kw.setdefault("timeout_s", 5.0)
    return Call(method=kw.pop("method", "GET"), url=url, idempotency_key="run1.shape1", **kw)


def later(seconds: float = 30.0) -> float:
    return time.monotonic() + seconds


def sequence(*replies: Reply):
    """A route answering each request with the next reply (the last one repeats)."""
    left = list(replies)

    def route(_seen):
        return left.pop(0) if len(left) > 1 else left[0]

    return route


async def test_get_json_with_idempotency_key(outbound, upstream):
    upstream.route("/items", Reply(200, {"items": [1, 2]}))
    answer = await outbound.call(call(f"{upstream.url}/items", query=[("a", "1")]), later())
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.body == b'{"items": [1, 2]}'
    [seen] = upstream.requests("/items")
    assert seen.headers["idempotency-key"] == "run1.shape1"
    assert seen.query == [("a", "1")]


async def test_retry_after_is_honoured_and_the_key_repeats(outbound, upstream):
    upstream.route(
        "/busy",
        sequence(
            Reply(429, "slow down", {"Retry-After": "1"}),
            Reply(503, "again", {"Retry-After": "0"}),
            Reply(200, {"ok": True}),
        ),
    )
    started = time.monotonic()
    answer = await outbound.call(call(f"{upstream.url}/busy", retries=2), later())
    assert answer.status == 200 and answer.attempts == 3
    # The first wait was the upstream's Retry-After: at least a second passed.
    assert time.monotonic() - started >= 1.0
    keys = {s.headers["idempotency-key"] for s in upstream.requests("/busy")}
    assert keys == {"run1.shape1"} and len(upstream.requests("/busy")) == 3


async def test_retries_stop_at_the_limit_and_return_the_last_answer(outbound, upstream):
    upstream.route("/broken", Reply(500, "down", {"Retry-After": "0"}))
    answer = await outbound.call(call(f"{upstream.url}/broken", retries=2), later())
    assert answer.status == 500 and answer.attempts == 3
    assert len(upstream.requests("/broken")) == 3


async def test_client_errors_are_not_retried(outbound, upstream):
    upstream.route("/missing", Reply(404, {"error": "nope"}))
    answer = await outbound.call(call(f"{upstream.url}/missing", retries=2), later())
    assert answer.status == 404 and len(upstream.requests("/missing")) == 1


async def test_a_retry_after_past_the_deadline_is_not_waited(outbound, upstream):
    upstream.route("/later", Reply(503, "", {"Retry-After": "120"}))
    answer = await outbound.call(call(f"{upstream.url}/later", retries=2), later(10))
    assert answer.status == 503 and len(upstream.requests("/later")) == 1


async def test_timeout_fails_the_call_and_is_not_retried(outbound, upstream):
    upstream.route("/slow", Reply(200, "late", delay_s=2.0))
    with pytest.raises(CallFailed) as caught:
        await outbound.call(call(f"{upstream.url}/slow", timeout_s=0.3, retries=2), later())
    assert caught.value.type == "timeout"
    assert "did not answer within 0.3 s" in str(caught.value)
    assert len(upstream.requests("/slow")) == 1


async def test_a_dripping_body_is_bounded_by_the_timeout(outbound, upstream):
    # Each piece comes well within any read timeout; the whole never ends in time.
    upstream.route("/drip", Reply(200, drip=(b"x" * 10, 100, 0.05)))
    with pytest.raises(CallFailed) as caught:
        await outbound.call(call(f"{upstream.url}/drip", timeout_s=0.5), later())
    assert caught.value.type == "timeout"


async def test_upstream_down_is_a_connection_error_retried(outbound):
    port = free_port()  # nothing listens there
    with pytest.raises(CallFailed) as caught:
        await outbound.call(call(f"http://127.0.0.1:{port}/x", retries=1), later())
    assert caught.value.type == "connection"
    assert f"cannot reach http://127.0.0.1:{port}" in str(caught.value)


async def test_loopback_refused_without_the_allow_list(upstream):
    upstream.route("/x", Reply(200, "secret"))
    client = make_outbound(allow="")
    try:
        with pytest.raises(EgressRefused, match=r"egress refused: 127\.0\.0\.1 is a loopback"):
            await client.call(call(f"{upstream.url}/x"), later())
        # A name is checked by the address it resolves to.
        with pytest.raises(EgressRefused, match=r"localhost \(127\.0\.0\.1\)|localhost \(::1\)"):
            await client.call(call(f"http://localhost:{upstream.port}/x"), later())
    finally:
        await client.aclose()
    assert upstream.requests("/x") == []


async def test_a_name_connects_to_the_checked_address(outbound, upstream):
    # localhost may also resolve to ::1, which 127.0.0.1/32 does not open: only 127.0.0.1 is
    # connected to, and the Host header is still the name.
    upstream.route("/x", Reply(200, "hello"))
    answer = await outbound.call(call(f"http://localhost:{upstream.port}/x"), later())
    assert answer.body == b"hello"
    assert upstream.requests("/x")[0].headers["host"] == f"localhost:{upstream.port}"


async def test_redirect_to_a_refused_address_is_refused(outbound, upstream):
    other = Upstream("127.0.0.2")
    try:
        other.route("/inner", Reply(200, "internal"))
        upstream.route("/hop", Reply(302, "", {"Location": f"{other.url}/inner"}))
        with pytest.raises(EgressRefused, match=r"127\.0\.0\.2"):
            await outbound.call(call(f"{upstream.url}/hop"), later())
        assert other.requests("/inner") == []
    finally:
        other.close()


async def test_redirects_are_followed_within_a_limit(outbound, upstream):
    upstream.route("/a", Reply(302, "", {"Location": "/b"}))
    upstream.route("/b", Reply(200, {"at": "b"}))
    answer = await outbound.call(call(f"{upstream.url}/a"), later())
    assert answer.status == 200 and answer.body == b'{"at": "b"}'
    upstream.route("/loop", Reply(302, "", {"Location": "/loop"}))
    with pytest.raises(CallFailed) as caught:
        await outbound.call(call(f"{upstream.url}/loop"), later())
    assert caught.value.type == "too_many_redirects"


async def test_oversized_responses_are_refused(upstream):
    client = make_outbound(max_response_bytes=1000)
    try:
        upstream.route("/big", Reply(200, b"x" * 1001))
        with pytest.raises(ResponseTooLarge, match="larger than 1000 bytes"):
            await client.call(call(f"{upstream.url}/big"), later())
        # Without a Content-Length, counted as it streams in.
        upstream.route("/stream", Reply(200, drip=(b"y" * 400, 5, 0.0)))
        with pytest.raises(ResponseTooLarge):
            await client.call(call(f"{upstream.url}/stream"), later())
        # Small on the wire, large once decoded.
        bomb = gzip.compress(b"z" * 100_000)
        assert len(bomb) < 1000
        upstream.route("/bomb", Reply(200, bomb, {"Content-Encoding": "gzip"}))
        with pytest.raises(ResponseTooLarge):
            await client.call(call(f"{upstream.url}/bomb"), later())
        upstream.route("/fits", Reply(200, b"x" * 1000))
        assert (await client.call(call(f"{upstream.url}/fits"), later())).body == b"x" * 1000
    finally:
        await client.aclose()


async def test_no_cookies_are_kept_between_calls(outbound, upstream):
    upstream.route("/set", Reply(200, "", {"Set-Cookie": "session=tenant-a; Path=/"}))
    upstream.route("/get", Reply(200, ""))
    await outbound.call(call(f"{upstream.url}/set"), later())
    await outbound.call(call(f"{upstream.url}/get"), later())
    assert "cookie" not in upstream.requests("/get")[0].headers


async def test_body_and_method_are_sent(outbound, upstream):
    upstream.route("/post", Reply(201, {"created": 1}))
    answer = await outbound.call(
        call(
            f"{upstream.url}/post",
            method="POST",
            content=b'{"a":1}',
            headers={"content-type": "application/json"},
        ),
        later(),
    )
    assert answer.status == 201
    [seen] = upstream.requests("/post")
    assert (seen.method, seen.body, seen.headers["content-type"]) == (
        "POST",
        b'{"a":1}',
        "application/json",
    )


async def test_calls_are_not_logged_with_their_query(outbound, upstream, caplog):
    # A connection's API key may travel in the query: no URL of a call reaches the logs.
    caplog.set_level(logging.DEBUG)
    upstream.route("/q", Reply(200, {}))
    answer = await outbound.call(
        call(f"{upstream.url}/q?fixed=1", query=[("api_key", "s3cret-key")]), later()
    )
    assert answer.status == 200
    assert upstream.requests("/q")[0].query == [("fixed", "1"), ("api_key", "s3cret-key")]
    assert "s3cret-key" not in caplog.text
