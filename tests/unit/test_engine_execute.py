"""Flow execution: payloads in, shapes' semantics, the callback response, failures."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import jmespath
import pytest

from control_plane.engine import (
    DEFAULT_DEFINITION,
    CallbackResponse,
    ExecutionResult,
    RunInput,
    execute,
    validate_definition,
)

Pairs = tuple[tuple[str, str], ...]


def request(body: bytes = b"", headers: Pairs = (), query: Pairs = ()) -> RunInput:
    return RunInput(
        run_id="run-1",
        company="acme",
        flow_id="flow-1",
        callback_id="cb-1",
        environment_id="",
        method="POST",
        headers=headers,
        query=query,
        body=body,
    )


async def run(
    shapes: list[dict[str, Any]], run_input: RunInput | None = None
) -> tuple[ExecutionResult, list[CallbackResponse]]:
    """Run trigger + `shapes`, returning the result and every response given."""
    definition = validate_definition({"shapes": [{"id": "trigger", "type": "trigger"}, *shapes]})
    responses: list[CallbackResponse] = []
    result = await execute(definition, run_input or request(), responses.append)
    return result, responses


def body_of(responses: list[CallbackResponse]) -> bytes:
    assert len(responses) == 1
    return responses[0].body


CALLBACK = {"id": "cb", "type": "callback"}

FIRST_PAYLOAD: dict[str, tuple[RunInput, bytes]] = {
    "JSON body without content type": (request(b'{"a": 1}'), b'[{"a":1}]'),
    "JSON content type with parameters": (
        request(b"[1, 2]", (("Content-Type", "Application/JSON; charset=utf-8"),)),
        b"[[1,2]]",
    ),
    "+json suffix": (
        request(b'"x"', (("content-type", "application/vnd.api+json"),)),
        b'["x"]',
    ),
    "invalid JSON is text": (request(b"{not json"), b'["{not json"]'),
    "non-JSON content type is text": (
        request(b'{"a":1}', (("Content-Type", "text/plain"),)),
        b'["{\\"a\\":1}"]',
    ),
    "NaN is not JSON": (request(b"NaN"), b'["NaN"]'),
    "invalid UTF-8 is replaced": (request(b"caf\xe9"), '["caf\ufffd"]'.encode()),
    "non-ASCII is sent as UTF-8": (request('{"s": "é€"}'.encode()), '[{"s":"é€"}]'.encode()),
    "empty body gives the query": (
        request(query=(("a", "1"), ("b", "2"), ("a", "3"), ("a", "4"))),
        b'[{"a":["1","3","4"],"b":"2"}]',
    ),
    "empty body and no query": (request(), b"[{}]"),
}


@pytest.mark.parametrize(("run_input", "body"), FIRST_PAYLOAD.values(), ids=FIRST_PAYLOAD.keys())
async def test_first_payload(run_input: RunInput, body: bytes) -> None:
    result, responses = await run([CALLBACK], run_input)
    assert result.status == "succeeded"
    assert body_of(responses) == body


JSON_BODY = request(b'{"items": [{"n": 1}, {"n": 2}, {"n": 3}]}')

SEMANTICS: dict[str, tuple[list[dict[str, Any]], RunInput, Any]] = {
    "map": (
        [{"id": "m", "type": "map", "expression": "payload.items[].n"}],
        JSON_BODY,
        [[1, 2, 3]],
    ),
    "manual payloads then map sees the bucket": (
        [
            {"id": "p", "type": "manual_payload", "payloads": [{"n": 1}, {"n": 2}]},
            {"id": "m", "type": "map", "expression": "[payload.n, length(payloads)]"},
        ],
        request(),
        [[1, 2], [2, 2]],
    ),
    "manual payload replaces the bucket": (
        [{"id": "p", "type": "manual_payload", "payload": {"fixed": True}}],
        JSON_BODY,
        [{"fixed": True}],
    ),
    "filter uses JMESPath truthiness (0 is true)": (
        [
            {
                "id": "p",
                "type": "manual_payload",
                "payloads": [0, 1, None, False, "", [], {}, "x", [0], {"a": None}],
            },
            {"id": "f", "type": "filter", "condition": "payload"},
        ],
        request(),
        [0, 1, "x", [0], {"a": None}],
    ),
    "filter with a comparison": (
        [
            {"id": "p", "type": "manual_payload", "payloads": [{"n": 1}, {"n": 2}, {"n": 3}]},
            {"id": "f", "type": "filter", "condition": "payload.n >= `2`"},
        ],
        request(),
        [{"n": 2}, {"n": 3}],
    ),
    "set_variables from the first payload, read by a later map": (
        [
            {
                "id": "v",
                "type": "set_variables",
                "variables": {"total": "sum(payload.items[].n)", "first": "payload.items[0]"},
            },
            {"id": "m", "type": "map", "expression": "[vars.total, vars.first]"},
        ],
        JSON_BODY,
        [[6, {"n": 1}]],
    ),
    "variables of one shape see the vars from before it": (
        [
            {"id": "v1", "type": "set_variables", "variables": {"a": "`1`", "b": "vars.a"}},
            {"id": "v2", "type": "set_variables", "variables": {"b": "vars.a"}},
            {"id": "m", "type": "map", "expression": "vars"},
        ],
        request(),
        [{"a": 1, "b": 1}],
    ),
    "set_variables on an empty bucket sees a null payload": (
        [
            {"id": "p", "type": "manual_payload", "payloads": []},
            {"id": "v", "type": "set_variables", "variables": {"p": "payload", "n": "payloads"}},
            {"id": "q", "type": "manual_payload", "payload": 0},
            {"id": "m", "type": "map", "expression": "vars"},
        ],
        request(),
        [{"p": None, "n": []}],
    ),
    "a payload that is vars is not changed by later set_variables": (
        [
            {"id": "v1", "type": "set_variables", "variables": {"a": "`1`"}},
            {"id": "m", "type": "map", "expression": "vars"},
            {"id": "v2", "type": "set_variables", "variables": {"a": "`2`", "b": "`3`"}},
        ],
        request(),
        [{"a": 1}],
    ),
    "meta": (
        [{"id": "m", "type": "map", "expression": "meta"}],
        request(
            b"{}",
            (("Content-Type", "application/json"), ("X-Tag", "a"), ("x-tag", "b")),
            (("q", "1"), ("q", "2")),
        ),
        [
            {
                "method": "POST",
                "headers": {"content-type": "application/json", "x-tag": "a, b"},
                "query": {"q": ["1", "2"]},
                "callback_id": "cb-1",
                "environment_id": "",
                "run_id": "run-1",
                "company": "acme",
                "flow_id": "flow-1",
            }
        ],
    ),
    "meta.query is the query payload": (
        [{"id": "m", "type": "map", "expression": "payload == meta.query"}],
        request(query=(("a", "1"),)),
        [True],
    ),
}


@pytest.mark.parametrize(("shapes", "run_input", "payloads"), SEMANTICS.values(), ids=SEMANTICS)
async def test_shape_semantics(
    shapes: list[dict[str, Any]], run_input: RunInput, payloads: Any
) -> None:
    result, responses = await run([*shapes, CALLBACK], run_input)
    assert result.status == "succeeded", result.error
    assert json.loads(body_of(responses)) == payloads


CALLBACKS: dict[str, tuple[list[dict[str, Any]], dict[str, Any], CallbackResponse]] = {
    "array by default": (
        [{"id": "p", "type": "manual_payload", "payloads": [{"a": 1}, "b"]}],
        {},
        CallbackResponse(status=200, headers=(), body=b'[{"a":1},"b"]'),
    ),
    "unwrap an object": (
        [{"id": "p", "type": "manual_payload", "payloads": [{"a": [1, 2]}, "ignored"]}],
        {"unwrap": True},
        CallbackResponse(status=200, headers=(), body=b'{"a":[1,2]}'),
    ),
    "unwrap a string sends its text": (
        [{"id": "p", "type": "manual_payload", "payload": 'héllo "world"'}],
        {"unwrap": True},
        CallbackResponse(status=200, headers=(), body='héllo "world"'.encode()),
    ),
    "unwrap a number": (
        [{"id": "p", "type": "manual_payload", "payload": 1.5}],
        {"unwrap": True},
        CallbackResponse(status=200, headers=(), body=b"1.5"),
    ),
    "unwrap an empty bucket": (
        [{"id": "p", "type": "manual_payload", "payloads": []}],
        {"unwrap": True},
        CallbackResponse(status=200, headers=(), body=b"null"),
    ),
    "empty bucket": (
        [{"id": "p", "type": "manual_payload", "payloads": []}],
        {},
        CallbackResponse(status=200, headers=(), body=b"[]"),
    ),
    "status and headers": (
        [{"id": "p", "type": "manual_payload", "payload": None}],
        {"status": 202, "headers": {"X-Flow": "boomerang", "Cache-Control": "no-store"}},
        CallbackResponse(
            status=202,
            headers=(("X-Flow", "boomerang"), ("Cache-Control", "no-store")),
            body=b"[null]",
        ),
    ),
}


@pytest.mark.parametrize(("shapes", "options", "response"), CALLBACKS.values(), ids=CALLBACKS)
async def test_callback_response(
    shapes: list[dict[str, Any]], options: dict[str, Any], response: CallbackResponse
) -> None:
    result, responses = await run([*shapes, {"id": "cb", "type": "callback", **options}])
    assert result.callback_reached is True
    assert responses == [response]


async def test_only_the_first_callback_responds_and_the_flow_goes_on() -> None:
    result, responses = await run(
        [
            {"id": "first", "type": "callback", "status": 201},
            {"id": "after", "type": "map", "expression": "payload.a"},
            {"id": "second", "type": "callback", "status": 500},
        ],
        request(b'{"a": 7}'),
    )
    assert responses == [CallbackResponse(status=201, headers=(), body=b'[{"a":7}]')]
    assert result.status == "succeeded"
    assert result.callback_reached is True
    assert [(log.shape_id, log.status, log.items_in, log.items_out) for log in result.shapes] == [
        ("trigger", "ok", 0, 1),
        ("first", "ok", 1, 1),
        ("after", "ok", 1, 1),
        ("second", "ok", 1, 1),
    ]


LENGTH_OF_NULL = (
    "In function length(), invalid type for value: None, expected one of: "
    "['string', 'array', 'object'], received: \"null\""
)


async def test_failing_shape_fails_the_run_and_stops_it() -> None:
    result, responses = await run(
        [
            {"id": "bad", "type": "map", "expression": "length(payload.missing)"},
            {"id": "never", "type": "map", "expression": "@"},
            CALLBACK,
        ],
        request(b"{}"),
    )
    assert result.status == "failed"
    assert result.error == f"shape 'bad' failed: {LENGTH_OF_NULL}"
    assert result.callback_reached is False
    assert responses == []
    assert [(log.shape_id, log.shape_type, log.status, log.error) for log in result.shapes] == [
        ("trigger", "trigger", "ok", ""),
        ("bad", "map", "failed", LENGTH_OF_NULL),
    ]


async def test_failure_after_the_callback_keeps_the_response() -> None:
    result, responses = await run(
        [CALLBACK, {"id": "bad", "type": "filter", "condition": "abs(payload)"}],
        request(b'"text"'),
    )
    assert body_of(responses) == b'["text"]'
    assert (result.status, result.callback_reached) == ("failed", True)
    assert result.error.startswith("shape 'bad' failed: In function abs()")


async def test_unencodable_payload_fails_the_callback_shape() -> None:
    result, responses = await run(
        [
            {"id": "p", "type": "manual_payload", "payload": [1e308, 1e308]},
            {"id": "m", "type": "map", "expression": "sum(payload)"},
            CALLBACK,
        ]
    )
    assert responses == []
    assert result.status == "failed"
    assert result.error.startswith("shape 'cb' failed: Out of range float values")


async def test_no_callback_succeeds_without_response() -> None:
    definition = validate_definition(DEFAULT_DEFINITION)
    responses: list[CallbackResponse] = []
    result = await execute(definition, request(b"1"), responses.append)
    assert (result.status, result.error, result.callback_reached) == ("succeeded", "", False)
    assert responses == []
    assert [log.shape_id for log in result.shapes] == ["trigger"]


async def test_wait_sleeps() -> None:
    started = time.perf_counter()
    result, responses = await run([{"id": "w", "type": "wait", "seconds": 0.05}, CALLBACK])
    assert time.perf_counter() - started >= 0.05
    assert result.shapes[1].shape_id == "w"
    assert result.shapes[1].duration_us >= 50_000
    assert body_of(responses) == b"[{}]"


async def test_cancellation_propagates() -> None:
    responses: list[CallbackResponse] = []
    definition = validate_definition(
        {
            "shapes": [
                {"id": "t", "type": "trigger"},
                {"id": "w", "type": "wait", "seconds": 10},
                CALLBACK,
            ]
        }
    )
    task = asyncio.create_task(execute(definition, request(), responses.append))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert responses == []


async def test_execution_does_not_parse_expressions(monkeypatch: pytest.MonkeyPatch) -> None:
    definition = validate_definition(
        {
            "shapes": [
                {"id": "t", "type": "trigger"},
                {"id": "m", "type": "map", "expression": "payload.a"},
                CALLBACK,
            ]
        }
    )

    def refuse(expression: str) -> None:
        raise AssertionError(f"compiled {expression!r} during a run")

    monkeypatch.setattr(jmespath, "compile", refuse)
    responses: list[CallbackResponse] = []
    result = await execute(definition, request(b'{"a": 1}'), responses.append)
    assert result.status == "succeeded"
    assert body_of(responses) == b"[1]"
