"""The connector shape: its fields checked with their paths, and run against real servers (the
payload from the answer, per bucket or per payload, failures with their type and status)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.engine import (
    DefinitionError,
    Progress,
    RunInput,
    RunState,
    ShapeFailed,
    execute,
    run_async_shape,
    validate_definition,
)
from control_plane.engine.budgets import Budgets, Meter
from control_plane.engine.connector import ConnectorShape, parse_response
from control_plane.runs import checkpoint
from tests.outbound.upstream import Reply

TRIGGER = {"id": "trigger", "type": "trigger"}
INPUT = RunInput(
    "run-1",
    "acme",
    "flow-1",
    "cb-1",
    "",
    "POST",
    (("content-type", "application/json"),),
    (),
    b'{"skus": ["A-1", "B-2"], "name": "x"}',
)


def flow(*shapes: dict[str, Any]) -> dict[str, Any]:
    return {"shapes": [TRIGGER, *shapes]}


def connector(**fields) -> dict[str, Any]:
    return {"id": "call", "type": "connector", **fields}


def violations(doc) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as caught:
        validate_definition(doc)
    return caught.value.violations


# -- validation ------------------------------------------------------------------------------


def test_fields_parse() -> None:
    shape = validate_definition(
        flow(
            connector(
                connection="erp",
                path="/v1/stock/items",
                method="POST",
                query={"sku": "payload.sku", "page": "`1`"},
                headers={"X-Trace": "meta.run_id"},
                body="payload",
                timeout_s=2.5,
                retries=2,
                accept_status=[404, 409],
                per="payload",
                output="response",
            )
        )
    ).shapes[1]
    assert isinstance(shape, ConnectorShape)
    assert (shape.connection, shape.path, shape.method, shape.retries) == (
        "erp",
        "/v1/stock/items",
        "POST",
        2,
    )
    assert shape.accept_status == frozenset({404, 409})
    assert [name for name, _ in shape.query] == ["sku", "page"]
    assert (shape.per, shape.output, shape.timeout_s) == ("payload", "response", 2.5)


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, ("definition.shapes[1]", "exactly one of 'connection'")),
        (
            {"url": "http://x/", "connection": "erp"},
            ("definition.shapes[1]", "exactly one of 'connection'"),
        ),
        ({"url": "ftp://x/y"}, ("definition.shapes[1].url", "http:// or https://")),
        ({"url": "/relative"}, ("definition.shapes[1].url", "http:// or https://")),
        ({"url": "http://u:p@x/"}, ("definition.shapes[1].url", "credentials")),
        ({"url": "http://x/#f"}, ("definition.shapes[1].url", "fragment")),
        ({"url": "http://x/a b"}, ("definition.shapes[1].url", "spaces")),
        ({"url": "http://x:99999/"}, ("definition.shapes[1].url", "not a valid URL")),
        ({"url": "http://x/", "path": "/a"}, ("definition.shapes[1].path", "goes with")),
        ({"connection": "Bad Name"}, ("definition.shapes[1].connection", "connection name")),
        ({"connection": "erp", "path": "a"}, ("definition.shapes[1].path", "must start")),
        ({"connection": "erp", "path": "/a/../b"}, ("definition.shapes[1].path", "'..'")),
        ({"connection": "erp", "path": "/a?b=1"}, ("definition.shapes[1].path", "no query")),
        ({"url": "http://x/", "method": "TRACE"}, ("definition.shapes[1].method", "one of")),
        ({"url": "http://x/", "retries": 3}, ("definition.shapes[1].retries", "0 to 2")),
        ({"url": "http://x/", "retries": True}, ("definition.shapes[1].retries", "0 to 2")),
        ({"url": "http://x/", "timeout_s": 0}, ("definition.shapes[1].timeout_s", "(0, 60]")),
        ({"url": "http://x/", "timeout_s": 61}, ("definition.shapes[1].timeout_s", "(0, 60]")),
        (
            {"url": "http://x/", "accept_status": [404, 600]},
            ("definition.shapes[1].accept_status[1]", "100 to 599"),
        ),
        (
            {"url": "http://x/", "accept_status": 404},
            ("definition.shapes[1].accept_status", "array"),
        ),
        ({"url": "http://x/", "per": "item"}, ("definition.shapes[1].per", "'bucket' or")),
        ({"url": "http://x/", "output": "all"}, ("definition.shapes[1].output", "'body' or")),
        ({"url": "http://x/", "body": "payload.["}, ("definition.shapes[1].body", "")),
        ({"url": "http://x/", "body": 3}, ("definition.shapes[1].body", "JMESPath")),
        (
            {"url": "http://x/", "headers": {"Host": "'a'"}},
            ("definition.shapes[1].headers.Host", "cannot be set"),
        ),
        (
            {"url": "http://x/", "headers": {"Idempotency-Key": "'a'"}},
            ("definition.shapes[1].headers.Idempotency-Key", "cannot be set"),
        ),
        (
            {"url": "http://x/", "headers": {"Bad Name": "'a'"}},
            ("definition.shapes[1].headers.Bad Name", "header name"),
        ),
        (
            {"url": "http://x/", "headers": {"X-A": "'a'", "x-a": "'b'"}},
            ("definition.shapes[1].headers.x-a", "twice"),
        ),
        (
            {"url": "http://x/", "headers": {f"X-{i}": "'a'" for i in range(51)}},
            ("definition.shapes[1].headers", "at most 50"),
        ),
        ({"url": "http://x/", "query": []}, ("definition.shapes[1].query", "object")),
        (
            {"url": "http://x/", "query": {"q": "a" * 5000}},
            ("definition.shapes[1].query.q", "at most 4096"),
        ),
        ({"url": "http://x/", "extra": 1}, ("definition.shapes[1].extra", "unknown field")),
    ],
)
def test_violations_name_their_field(fields, expected) -> None:
    found = violations(flow(connector(**fields)))
    path, fragment = expected
    assert any(p == path and fragment in what for p, what in found), found


# -- running -----------------------------------------------------------------------------------


async def run_flow(outbound, *shapes, budgets: Budgets | None = None, unwrap: bool = True):
    answers = []
    definition = validate_definition(
        flow(*shapes, {"id": "reply", "type": "callback", "unwrap": unwrap})
    )
    result = await execute(definition, INPUT, answers.append, budgets=budgets, outbound=outbound)
    body = json.loads(answers[0].body) if answers else None
    return result, body


async def test_per_bucket_one_call_its_answer_is_the_payload(outbound, upstream):
    upstream.route("/stock", Reply(200, {"in_stock": True}))
    result, body = await run_flow(
        outbound,
        connector(
            url=f"{upstream.url}/stock",
            method="POST",
            query={"sku": "payload.skus", "none": "`null`", "n": "`2`"},
            headers={"X-Name": "payload.name", "X-Skip": "`null`"},
            body="{skus: payload.skus}",
        ),
    )
    assert result.status == "succeeded", result.error
    assert body == {"in_stock": True}
    [seen] = upstream.requests("/stock")
    assert seen.query == [("sku", "A-1"), ("sku", "B-2"), ("n", "2")]
    assert seen.headers["x-name"] == "x" and "x-skip" not in seen.headers
    assert json.loads(seen.body) == {"skus": ["A-1", "B-2"]}
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["idempotency-key"] == "run-1.call"


async def test_per_payload_one_call_each_with_its_index_in_the_key(outbound, upstream):
    upstream.route("/item", lambda seen: Reply(200, {"sku": dict(seen.query)["sku"]}))
    result, body = await run_flow(
        outbound,
        {"id": "split", "type": "map", "expression": "payload.skus"},
        {"id": "each", "type": "manual_payload", "payloads": ["A-1", "B-2", "C-3"]},
        connector(url=f"{upstream.url}/item", query={"sku": "payload"}, per="payload"),
        {"id": "all", "type": "map", "expression": "payload.sku"},
        unwrap=False,
    )
    assert result.status == "succeeded", result.error
    assert body == ["A-1", "B-2", "C-3"]
    keys = [s.headers["idempotency-key"] for s in upstream.requests("/item")]
    assert keys == ["run-1.call.0", "run-1.call.1", "run-1.call.2"]


async def test_text_and_output_response(outbound, upstream):
    upstream.route("/text", Reply(404, "not here", {"X-Why": "gone"}))
    result, body = await run_flow(
        outbound,
        connector(url=f"{upstream.url}/text", accept_status=[404], output="response"),
    )
    assert result.status == "succeeded", result.error
    assert body["status"] == 404 and body["body"] == "not here"
    assert body["headers"]["x-why"] == "gone"


async def test_a_non_2xx_answer_fails_with_its_status(outbound, upstream):
    upstream.route("/err", Reply(422, {"error": "bad"}))
    definition = validate_definition(flow(connector(url=f"{upstream.url}/err?secret=k")))
    state = RunState(INPUT, Meter(Budgets()), outbound)
    progress = Progress(position=1, bucket=[{"a": 1}])
    with pytest.raises(ShapeFailed) as caught:
        await run_async_shape(definition, progress, state)
    failed = caught.value
    assert (failed.shape_id, failed.error_type, failed.status) == ("call", "http_status", 422)
    assert "answered 422" in failed.what
    assert "secret=k" not in str(failed)  # the query may hold a key: never in messages
    assert progress.position == 1 and progress.shapes[-1].status == "failed"


async def test_egress_refusal_fails_the_run_naming_egress(upstream):
    from tests.outbound.conftest import make_outbound

    client = make_outbound(allow="")
    try:
        result, _ = await run_flow(client, connector(url=f"{upstream.url}/x"))
    finally:
        await client.aclose()
    assert result.status == "failed"
    assert "egress refused: 127.0.0.1 is a loopback address" in result.error


async def test_unknown_connection_and_no_outbound(outbound):
    result, _ = await run_flow(outbound, connector(connection="erp", path="/x"))
    assert result.status == "failed" and "no connection 'erp'" in result.error
    result, _ = await run_flow(None, connector(url="http://example.invalid/"))
    assert result.status == "failed" and "makes no outbound calls" in result.error


async def test_a_bad_header_value_fails_before_any_call(outbound, upstream):
    upstream.route("/x", Reply(200, ""))
    result, _ = await run_flow(
        outbound, connector(url=f"{upstream.url}/x", headers={"X-A": "payload"})
    )
    assert result.status == "failed" and "header X-A" in result.error
    assert upstream.requests("/x") == []


async def test_too_many_payloads_fail_before_any_call(outbound, upstream):
    upstream.route("/x", Reply(200, ""))
    result, _ = await run_flow(
        outbound,
        {"id": "many", "type": "map", "expression": "payload"},
        {"id": "n", "type": "manual_payload", "payloads": list(range(1001))},
        connector(url=f"{upstream.url}/x", per="payload"),
    )
    assert result.status == "failed" and "at most 1000 calls" in result.error
    assert upstream.requests("/x") == []


async def test_the_answer_counts_against_the_bucket_budget(outbound, upstream):
    upstream.route("/big", Reply(200, {"data": "x" * 5000}))
    result, _ = await run_flow(
        outbound, connector(url=f"{upstream.url}/big"), budgets=Budgets(bucket_bytes=4096)
    )
    assert result.status == "failed" and result.budget == "bucket_size"


async def test_the_key_is_the_same_after_a_resume(outbound, upstream):
    """A runner that stops during the call resumes the run from its checkpoint (before the
    shape) and calls again: with the same Idempotency-Key."""
    upstream.route("/once", Reply(200, {"ok": 1}))
    definition = validate_definition(flow(connector(url=f"{upstream.url}/once")))
    progress = Progress(position=1, bucket=[{"a": 1}])
    saved = checkpoint.dump(INPUT, progress)
    await run_async_shape(definition, progress, RunState(INPUT, Meter(Budgets()), outbound))
    run_input, resumed = checkpoint.load(saved)  # what another runner reads
    await run_async_shape(definition, resumed, RunState(run_input, Meter(Budgets()), outbound))
    keys = [s.headers["idempotency-key"] for s in upstream.requests("/once")]
    assert keys == ["run-1.call", "run-1.call"]


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"a": 1}', {"a": 1}),
        ("application/problem+json; charset=utf-8", b"[1]", [1]),
        ("application/json", b"not json", "not json"),
        ("application/json", b"NaN", "NaN"),
        ("text/plain; charset=latin-1", "café".encode("latin-1"), "café"),
        ("text/plain; charset=nope", b"abc", "abc"),
        ("", b"", None),
        ("", b'{"a": 1}', {"a": 1}),
        (
            "application/xml",
            b'<order id="7"><line>A1</line></order>',
            {"order": {"@id": "7", "line": "A1"}},
        ),
        ("application/soap+xml", b"<a>", "<a>"),  # not well-formed: its text
        ("text/csv", b"sku,qty\r\nA1,3\r\n", [{"sku": "A1", "qty": "3"}]),
        ("text/html", b"<p>hi</p>", "<p>hi</p>"),
    ],
)
def test_parse_response(content_type, body, expected) -> None:
    assert parse_response(content_type, body) == expected


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(
        ["http://x/", "/a", "erp", "GET", "payload", "bucket", "[::1", "http://[::1"]
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(ConnectorShape.FIELDS)), JSON_VALUES, max_size=6))
def test_any_fields_give_a_definition_or_violations(fields) -> None:
    try:
        validate_definition(flow(connector(**fields)))
    except DefinitionError as exc:
        assert exc.violations


async def test_per_payload_answers_stop_at_the_bucket_budget(outbound, upstream):
    upstream.route("/chunk", Reply(200, "y" * 3000))
    result, _ = await run_flow(
        outbound,
        {"id": "n", "type": "manual_payload", "payloads": list(range(10))},
        connector(url=f"{upstream.url}/chunk", per="payload"),
        budgets=Budgets(bucket_bytes=8000),
    )
    assert result.status == "failed" and result.budget == "bucket_size"
    assert "first 3 calls" in result.error
    assert len(upstream.requests("/chunk")) == 3  # no call after the budget was passed


async def test_xml_answers_are_parsed_and_unsafe_xml_fails(outbound, upstream):
    upstream.route(
        "/order",
        Reply(200, b'<order id="7"><line sku="A1"/></order>', {"Content-Type": "application/xml"}),
    )
    result, body = await run_flow(outbound, connector(url=f"{upstream.url}/order"))
    assert result.status == "succeeded", result.error
    assert body == {"order": {"@id": "7", "line": {"@sku": "A1"}}}
    bomb = b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY x "xx">]><a>&x;</a>'
    upstream.route("/bomb", Reply(200, bomb, {"Content-Type": "text/xml"}))
    result, _ = await run_flow(outbound, connector(url=f"{upstream.url}/bomb"))
    assert result.status == "failed" and "unsafe XML" in result.error


async def test_a_large_answer_is_parsed_off_the_loop_all_the_same(outbound, upstream):
    rows = "".join(f"A{i},{i}\r\n" for i in range(20_000)).encode()
    upstream.route("/rows", Reply(200, b"sku,qty\r\n" + rows, {"Content-Type": "text/csv"}))
    result, body = await run_flow(outbound, connector(url=f"{upstream.url}/rows"), unwrap=True)
    assert result.status == "succeeded", result.error
    assert len(body) == 20_000 and body[-1] == {"sku": "A19999", "qty": "19999"}
