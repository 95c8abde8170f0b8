"""The HTTP surface's own limits and answers (docs/http.md), over raw sockets where a client
library would refuse to send what is tested."""

from __future__ import annotations

import asyncio
import json
import logging
import select
import socket
import time

import pytest
from edge_fakes import (
    CB_NEW,
    CB_OK,
    CB_WAIT,
    COMPANY,
    OTHER_SIGNATURE,
    SIGNATURE,
    callback,
    callback_url,
    deployment,
    error,
    signed,
    snapshot,
    wait_for,
)
from test_edge_ops import samples

from edge import protocol

PATH = f"/api/v1/{COMPANY}/{CB_OK}"
QUERY = f"?patchworks_signature={SIGNATURE}"


async def exchange(edge, data: bytes, *, pause_s: float = 0.0, within_s: float = 5.0):
    """Sends `data` (a byte at a time, `pause_s` apart, when given) and reads until the edge
    closes. Returns (status or None, headers, body) and how long the edge took to close."""
    return await asyncio.to_thread(_exchange, edge.server.port, data, pause_s, within_s)


def _exchange(port: int, data: bytes, pause_s: float, timeout: float):
    began = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            for i in range(0, len(data), 1 if pause_s else max(1, len(data))):
                if select.select([sock], [], [], 0)[0]:
                    break  # the edge answered before the request was all sent: read it
                sock.sendall(data[i : i + 1] if pause_s else data)
                time.sleep(pause_s)
            while chunk := sock.recv(65536):  # to EOF: the edge closed
                answer += chunk
        except ConnectionResetError:
            pass
    took = time.monotonic() - began
    if not answer:
        return None, {}, b"", took
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.lower()] = value.strip()
    return int(status_line.split()[1]), headers, body, took


def reason(body: bytes) -> str:
    return json.loads(body)["error"]


class EdgeLogs:
    """Every record of the edge's loggers (and Sanic's), DEBUG and up, as text with tracebacks;
    not the test's HTTP client's, which logs the URLs it calls."""

    def __init__(self, caplog) -> None:
        self.caplog = caplog

    @property
    def records(self) -> list[logging.LogRecord]:
        return [r for r in self.caplog.records if not r.name.startswith(("httpx", "httpcore"))]

    @property
    def text(self) -> str:
        return "\n".join(self.caplog.handler.format(r) for r in self.records)


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return EdgeLogs(caplog)


@pytest.mark.parametrize(
    "target",
    [
        f"{PATH}\x00{QUERY}",
        f"{PATH}{QUERY}\x00",
        f"{PATH}\t{QUERY}",
        f"{PATH}{QUERY}\x7f",
        f"{PATH}{QUERY}\xff",
        f"{PATH}{QUERY}\r",
    ],
)
async def test_an_unparsable_request_line_is_400_and_logs_no_signature(edge, logs, target):
    status, headers, body, _ = await exchange(
        edge, f"GET {target} HTTP/1.1\r\nHost: x\r\n\r\n".encode("latin-1")
    )
    assert (status, reason(body)) == (400, "bad_request")
    assert headers["connection"] == "close" and "alt-svc" not in headers
    assert SIGNATURE not in logs.text


@pytest.mark.parametrize(
    "header",
    [
        b"X-Nul: a\x00b",
        b"X-Cr: a\rb",
        b"Bad Name: v",
        b"\xff\xfe: v",
        b" folded",
        b"NoColon",
        b"X-Ctl: \x01",
        b"Content-Length: 1\r\nContent-Length: 1",
        b"Content-Length: nope",
        b"Transfer-Encoding: gzip",
    ],
)
async def test_a_bad_header_line_is_400_and_closes(edge, logs, header):
    data = b"GET " + (PATH + QUERY).encode() + b" HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n\r\nx"
    status, headers, body, _ = await exchange(edge, data)
    assert (status, reason(body)) == (400, "bad_request")
    assert headers["connection"] == "close"
    assert SIGNATURE not in logs.text


@pytest.mark.parametrize(
    "chunks", [b"zz\r\nab\r\n0\r\n\r\n", b"-1\r\n", b"3\r\nabc\r\n0\r\nT: 1\r\n\r\n"]
)
async def test_bad_chunked_framing_is_400(edge, chunks):
    data = (
        f"POST {PATH}{QUERY} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
        + chunks
    )
    status, headers, body, _ = await exchange(edge, data)
    assert (status, reason(body)) == (400, "bad_request")
    assert headers["connection"] == "close"


async def test_a_long_url_is_414_long_headers_431_a_long_body_413(edge, logs):
    long_url = f"GET {PATH}{QUERY}&pad={'p' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n"
    status, headers, body, _ = await exchange(edge, long_url.encode())
    assert (status, reason(body), headers["connection"]) == (414, "uri_too_long", "close")

    long_headers = f"GET {PATH}{QUERY} HTTP/1.1\r\nHost: x\r\nX-Big: {'b' * 9000}\r\n\r\n"
    status, headers, body, _ = await exchange(edge, long_headers.encode())
    assert (status, reason(body), headers["connection"]) == (431, "headers_too_large", "close")

    # Body limit (1024 in these tests): the head is fine, the body is not.
    r = await edge.client.post(signed(CB_OK), content=b"x" * 1025)
    error(r, 413, "body_too_large")
    assert SIGNATURE not in logs.text


async def test_a_trickled_head_is_cut_after_the_header_timeout(start_edge, sync, runner):
    edge = await start_edge(sync_target=sync[1], runner_target=runner[1], header_timeout_s=0.5)
    head = f"GET {PATH}{QUERY} HTTP/1.1\r\nHost: x\r\nX-Slow: {'s' * 40}\r\n\r\n".encode()
    # A byte every 50 ms keeps Sanic's own timeout (time since the last byte) from ever firing.
    status, headers, body, took = await exchange(edge, head, pause_s=0.05)
    assert (status, reason(body), headers["connection"]) == (408, "request_timeout", "close")
    assert 0.4 < took < 1.5
    assert len(runner[0].starts) == 0


async def test_a_trickled_body_is_cut_after_the_body_timeout(start_edge, sync, runner):
    # The deadlines are checked every half of the shortest timeout: the header one here.
    edge = await start_edge(
        sync_target=sync[1], runner_target=runner[1], header_timeout_s=0.5, body_timeout_s=0.5
    )
    data = f"POST {PATH}{QUERY} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc".encode()
    status, headers, body, took = await exchange(edge, data)
    assert (status, reason(body), headers["connection"]) == (408, "request_timeout", "close")
    assert 0.4 < took < 1.5
    assert len(runner[0].starts) == 0


async def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
    start_edge, sync, runner
):
    edge = await start_edge(sync_target=sync[1], runner_target=runner[1], header_timeout_s=0.5)
    status, _, _, took = await exchange(edge, b"")
    assert status is None and 0.4 < took < 1.5


async def test_an_idle_keep_alive_connection_is_closed(start_edge, sync, runner):
    edge = await start_edge(
        sync_target=sync[1], runner_target=runner[1], header_timeout_s=0.5, keep_alive_timeout_s=1
    )
    request = f"GET {PATH}{QUERY} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    status, _, _, took = await exchange(edge, request)
    # After a request the keep-alive timeout applies, not the (shorter) header timeout.
    assert status == 201 and 0.9 < took < 2.5


async def test_connections_past_the_cap_get_503_and_are_closed(start_edge, sync, runner):
    edge = await start_edge(sync_target=sync[1], runner_target=runner[1], max_connections=2)
    held = [await asyncio.open_connection(edge.server.host, edge.server.port) for _ in range(2)]
    await wait_for(lambda: len(edge.server._server.connections) == 2)

    status, headers, body, took = await exchange(edge, b"GET /healthz HTTP/1.1\r\n\r\n")
    assert (status, reason(body)) == (503, "too_many_connections")
    assert headers["retry-after"] == "1" and headers["connection"] == "close"
    assert took < protocol.REFUSED_LINGER_S + 1

    for _, writer in held:
        writer.close()
    await wait_for(lambda: not edge.server._server.connections)
    assert (await edge.client.get(signed(CB_OK))).status_code == 201
    m = samples((await edge.client.get("/metrics")).text)
    assert m[("boomerang_edge_connections_refused_total", ())] == 1


async def test_an_abandoned_request_is_counted_apart_and_not_logged_as_an_error(edge, logs, runner):
    request = f"GET {callback_url(CB_WAIT, patchworks_signature=SIGNATURE)} HTTP/1.1\r\n\r\n"
    _, writer = await asyncio.open_connection(edge.server.host, edge.server.port)
    writer.write(request.encode())
    await wait_for(lambda: len(runner[0].starts) == 1)
    writer.close()  # the caller gives up
    await wait_for(lambda: runner[0].cancel_statuses)
    assert list(runner[0].cancel_statuses.values()) == [499]

    m = samples((await edge.client.get("/metrics")).text)
    assert m[("boomerang_edge_requests_abandoned_total", ())] == 1
    assert not [k for k in m if k[0] == "boomerang_edge_requests_total"]  # no 500, no 499
    assert not [r for r in logs.records if r.levelno > logging.INFO]
    assert SIGNATURE not in logs.text


@pytest.mark.parametrize("value", [f" {SIGNATURE}", f"{SIGNATURE} ", f"\t{SIGNATURE}\t "])
async def test_whitespace_around_the_signature_header_is_ignored(edge, value):
    data = f"GET {PATH} HTTP/1.1\r\nHost: x\r\npatchworks-signature:{value}\r\n"
    status, *_ = await exchange(edge, data.encode() + b"Connection: close\r\n\r\n")
    assert status == 201


@pytest.mark.parametrize(
    ("query", "headers", "status"),
    [
        ([SIGNATURE], [OTHER_SIGNATURE], 201),  # the query parameter is checked, not the header
        ([OTHER_SIGNATURE], [SIGNATURE], 403),
        (["", SIGNATURE], [], 201),  # an empty parameter counts as absent
        ([SIGNATURE, OTHER_SIGNATURE], [], 201),  # the first parameter
        ([OTHER_SIGNATURE, SIGNATURE], [], 403),
        ([], [SIGNATURE, OTHER_SIGNATURE], 201),  # the first header
        ([], [OTHER_SIGNATURE, SIGNATURE], 403),
        ([""], [SIGNATURE], 201),  # no non-empty parameter: the header
        ([], [], 401),
    ],
)
async def test_precedence_of_signatures_given_twice(edge, query, headers, status):
    params = [("patchworks_signature", value) for value in query]
    lines = [("patchworks-signature", value) for value in headers]
    r = await edge.client.get(PATH, params=params, headers=lines)
    assert r.status_code == status


async def test_401_names_the_query_parameter_and_the_header(edge):
    r = await edge.client.get(PATH)
    error(r, 401, "missing_signature")
    assert "patchworks_signature query parameter" in r.json()["message"]
    assert "patchworks-signature header" in r.json()["message"]


async def test_text_answers_say_utf8_and_no_empty_alt_svc(edge, sync):
    update = snapshot(revision=2)
    update.callbacks.append(callback(CB_NEW, deployment("v-ok"), content_type="text/plain"))
    sync[0].push(update)
    await wait_for(lambda: edge.app.ctx.cache.state.revision == 2)

    r = await edge.client.get(signed(CB_NEW))
    assert r.status_code == 201
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert "alt-svc" not in r.headers
    r = await edge.client.get(signed(CB_OK))  # not text/*: as the callback says
    assert r.headers["content-type"] == "application/vnd.acme+json"


async def test_readyz_fails_while_no_runner_takes_runs(start_edge, sync, runner):
    from edge_fakes import dead_target

    edge = await start_edge(sync_target=sync[1], runner_target=dead_target(), wait=False)
    await wait_for(lambda: edge.app.ctx.cache.live)
    r = await edge.client.get("/readyz")
    assert r.status_code == 503
    assert r.json()["ready"] is False and r.json()["failed"] == ["runner"]

    ok = await start_edge(sync_target=sync[1], runner_target=runner[1])
    r = await ok.client.get("/readyz")
    assert r.status_code == 200 and r.json()["failed"] == []


async def test_a_request_cut_by_shutdown_logs_no_signature(edge, logs, runner):
    # The edge aborts connections still open when its stop grace ends; Sanic then logs the
    # request it was serving ("... stopped. Transport is closed.").
    request = f"GET {callback_url(CB_WAIT, patchworks_signature=SIGNATURE)} HTTP/1.1\r\n\r\n"
    _, writer = await asyncio.open_connection(edge.server.host, edge.server.port)
    writer.write(request.encode())
    await wait_for(lambda: len(runner[0].starts) == 1)
    edge.stopped = True
    await edge.client.aclose()
    await edge.server.stop(grace_s=0.1)
    writer.close()
    assert SIGNATURE not in logs.text
    assert not [r for r in logs.records if r.levelno > logging.INFO]
    assert SIGNATURE not in logs.text
    assert not [r for r in logs.records if r.levelno > logging.INFO]
