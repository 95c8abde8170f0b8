"""XML and CSV through the engine: the trigger parses them by Content-Type, the callback renders
them (`render`), and both keep to the run's budgets (docs/formats.md)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

import pytest

from control_plane.engine import (
    CallbackResponse,
    DefinitionError,
    ExecutionResult,
    Progress,
    RunInput,
    RunState,
    execute,
    run_shape,
    validate_definition,
)
from control_plane.engine.budgets import Budgets, Meter, SliceExhausted
from control_plane.engine.formats import CSV_BYTES_PER_STEP, XML_BYTES_PER_STEP

XML = (("Content-Type", "application/xml"),)
CSV = (("Content-Type", "text/csv"),)

ORDER = b"""<?xml version="1.0"?>
<order id="42">
  <line sku="A1"><qty>2</qty></line>
  <line sku="B2"><qty>5</qty></line>
  <note>rush</note>
</order>"""


def request(body: bytes, headers: tuple[tuple[str, str], ...] = ()) -> RunInput:
    return RunInput(
        run_id="run-1",
        company="acme",
        flow_id="flow-1",
        callback_id="cb-1",
        environment_id="",
        method="POST",
        headers=headers,
        query=(),
        body=body,
    )


async def run(
    shapes: list[dict[str, Any]], run_input: RunInput, budgets: Budgets | None = None
) -> tuple[ExecutionResult, list[CallbackResponse]]:
    definition = validate_definition({"shapes": [{"id": "trigger", "type": "trigger"}, *shapes]})
    responses: list[CallbackResponse] = []
    result = await execute(definition, run_input, responses.append, budgets)
    return result, responses


def callback(**fields: Any) -> dict[str, Any]:
    return {"id": "cb", "type": "callback", **fields}


async def test_an_xml_body_is_data_for_expressions():
    expression = (
        '{id: payload.order."@id", skus: payload.order.line[]."@sku", '
        "total: sum(payload.order.line[].to_number(qty)), note: payload.order.note}"
    )
    result, responses = await run(
        [{"id": "m", "type": "map", "expression": expression}, callback(unwrap=True)],
        request(ORDER, XML),
    )
    assert result.status == "succeeded"
    assert responses[0].body == b'{"id":"42","skus":["A1","B2"],"total":7,"note":"rush"}'


async def test_a_csv_body_is_a_list_of_rows():
    body = b"sku,qty\r\nA1,2\r\nB2,5\r\n"
    result, responses = await run(
        [{"id": "m", "type": "map", "expression": "payload[?qty > '2'].sku"}, callback()],
        request(body, CSV),
    )
    assert result.status == "succeeded"
    assert responses[0].body == b'[["B2"]]'


async def test_a_body_that_does_not_parse_is_text_as_with_json():
    _, responses = await run([callback()], request(b"<order>", XML))
    assert responses[0].body == b'["<order>"]'
    _, responses = await run([callback()], request(b"a,b\r\n1\r\n", CSV))
    assert responses[0].body == b'["a,b\\r\\n1\\r\\n"]'


async def test_an_unsafe_xml_body_fails_the_run_clearly():
    body = b'<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>'
    result, responses = await run([callback()], request(body, XML))
    assert result.status == "failed"
    assert responses == []
    assert result.error.startswith("shape 'trigger' failed: the XML body was refused")
    assert "/etc/passwd" not in result.error


async def test_xml_nested_past_the_depth_budget_fails_the_run():
    body = b"<a>" * 9 + b"</a>" * 9
    result, _ = await run([callback()], request(body, XML), Budgets(max_depth=8))
    assert (result.status, result.budget) == ("failed", "value_size")
    assert "nested deeper than 8 levels" in result.error


@pytest.mark.parametrize(
    ("headers", "per_step"), [(XML, XML_BYTES_PER_STEP), (CSV, CSV_BYTES_PER_STEP)]
)
def test_parsing_xml_and_csv_is_charged_so_large_bodies_leave_the_event_loop(headers, per_step):
    definition = validate_definition({"shapes": [{"id": "trigger", "type": "trigger"}]})
    # Few nodes (measuring the bucket costs a step a node), many bytes.
    text = b"x" * 40_000
    body = b"<r>" + text + b"</r>" if headers is XML else b"n\r\n" + text + b"\r\n"
    state = RunState(request(body, headers), Meter(Budgets()))
    progress = Progress()
    # Inline, a runner opens a slice (runs/driver.py): the parse does not fit, the shape
    # moves elsewhere, and the progress is as it was.
    state.meter.open_slice(2_000)
    with pytest.raises(SliceExhausted):
        run_shape(definition, progress, state)
    assert (progress.position, progress.bucket) == (0, [])
    state.meter.close_slice()
    run_shape(definition, progress, state)
    assert progress.position == 1
    assert progress.steps >= len(body) // per_step


async def test_render_xml_answers_well_formed_xml():
    _, responses = await run([callback(render="xml", unwrap=True)], request(ORDER, XML))
    root = ET.fromstring(responses[0].body)
    assert root.tag == "order"
    assert [line.get("sku") for line in root.iter("line")] == ["A1", "B2"]
    # Without unwrap the bucket is the document: <payloads><payload>…
    _, responses = await run([callback(render="xml")], request(b'{"a": [1, 2]}'))
    assert responses[0].body == (
        b'<?xml version="1.0" encoding="UTF-8"?><payloads><payload><a>1</a><a>2</a></payload>'
        b"</payloads>"
    )


async def test_render_csv_writes_the_bucket_as_rows():
    shapes = [
        {
            "id": "rows",
            "type": "manual_payload",
            "payloads": [{"sku": "A1", "qty": 2}, {"sku": "B"}],
        },
        callback(render="csv"),
    ]
    _, responses = await run(shapes, request(b""))
    assert responses[0].body == b"sku,qty\r\nA1,2\r\nB,\r\n"
    # A CSV request answered as CSV, through the data in between.
    body = b"sku,qty\r\nA1,2\r\n"
    _, responses = await run([callback(render="csv", unwrap=True)], request(body, CSV))
    assert responses[0].body == body


async def test_render_raw_sends_a_string_as_it_is():
    _, responses = await run([callback(render="raw", unwrap=True)], request(b"plain \xc3\xa9"))
    assert responses[0].body == b"plain \xc3\xa9"
    result, responses = await run([callback(render="raw", unwrap=True)], request(b'{"a": 1}'))
    assert (result.status, responses) == ("failed", [])
    assert "render 'raw' sends a string payload" in result.error


async def test_a_render_that_cannot_be_done_fails_the_run_naming_the_key():
    shapes = [
        {"id": "bad", "type": "manual_payload", "payload": {"r": {"not a name": 1}}},
        callback(render="xml", unwrap=True),
    ]
    result, responses = await run(shapes, request(b""))
    assert (result.status, responses) == ("failed", [])
    assert result.error == "shape 'cb' failed: r.not a name: 'not a name' is not an XML name"


@pytest.mark.parametrize("render", ["xml", "csv"])
async def test_the_render_keeps_to_the_callback_size_budget(render):
    shapes = [
        {"id": "big", "type": "manual_payload", "payloads": [{"v": "x" * 400}] * 10},
        callback(render=render),
    ]
    result, responses = await run(shapes, request(b""), Budgets(callback_bytes=1000))
    assert (result.status, result.budget, responses) == ("failed", "callback_size", [])
    assert "exceeded its size budget of 1000 bytes" in result.error


def test_json_stays_the_default_render():
    definition = validate_definition({"shapes": [{"id": "t", "type": "trigger"}, callback()]})
    assert definition.shapes[1].render == "json"


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"render": "yaml"}, "must be one of: json, xml, csv, raw"),
        ({"render": ["xml"]}, "must be one of"),
        ({"render": "raw"}, "'raw' sends one payload: it needs unwrap: true"),
        ({"render": "raw", "unwrap": False}, "needs unwrap: true"),
    ],
)
def test_render_is_validated_with_its_field_path(fields, why):
    with pytest.raises(DefinitionError) as caught:
        validate_definition({"shapes": [{"id": "t", "type": "trigger"}, callback(**fields)]})
    [(field, description)] = caught.value.violations
    assert field == "definition.shapes[1].render"
    assert why in description


# The examples of docs/formats.md, run as written there.
DOC_ORDER = b"""<order id="42" xmlns:x="urn:acme">
  <line sku="A1"><qty>2</qty></line>
  <line sku="B2"/>
  <x:note>rush</x:note>
  <gift/>
</order>"""


async def test_the_documented_xml_example():
    _, responses = await run([callback(unwrap=True)], request(DOC_ORDER, XML))
    assert responses[0].body == (
        b'{"order":{"@id":"42","@xmlns:x":"urn:acme","line":[{"@sku":"A1","qty":"2"},'
        b'{"@sku":"B2"}],"x:note":"rush","gift":null}}'
    )
    receipt = (
        '{receipt: {"@order": payload.order."@id", '
        'line: payload.order.line[].{"@sku": "@sku", qty: qty}}}'
    )
    shapes = [
        {"id": "receipt", "type": "map", "expression": receipt},
        {"id": "reply", "type": "callback", "unwrap": True, "render": "xml"},
    ]
    _, responses = await run(shapes, request(DOC_ORDER, XML))
    assert responses[0].body == (
        b'<?xml version="1.0" encoding="UTF-8"?><receipt order="42"><line sku="A1"><qty>2</qty>'
        b'</line><line sku="B2"><qty/></line></receipt>'
    )


async def test_the_documented_csv_example():
    shapes = [
        {"id": "in_stock", "type": "map", "expression": "payload[?to_number(qty) > `0`]"},
        {"id": "reply", "type": "callback", "unwrap": True, "render": "csv"},
    ]
    body = b'sku,name,qty\r\nA1,"Widget, large",2\r\nB2,Gadget,0\r\n'
    _, responses = await run(shapes, request(body, CSV))
    assert responses[0].body == b'sku,name,qty\r\nA1,"Widget, large",2\r\n'


async def test_the_documented_formula_guard():
    guard = (
        "payload[].{sku: sku, name: (starts_with(name, '=') || starts_with(name, '+') || "
        "starts_with(name, '-') || starts_with(name, '@')) && join('', ['\\'', name]) || name}"
    )
    shapes = [
        {"id": "guard", "type": "map", "expression": guard},
        {"id": "reply", "type": "callback", "unwrap": True, "render": "csv"},
    ]
    body = b"sku,name\r\n1,=HYPERLINK(x)\r\n2,-5\r\n3,plain\r\n"
    _, responses = await run(shapes, request(body, CSV))
    assert responses[0].body == b"sku,name\r\n1,'=HYPERLINK(x)\r\n2,'-5\r\n3,plain\r\n"


async def test_the_readme_example():
    ack = '{ack: {"@order": payload.order."@id", status: \'received\'}}'
    shapes = [
        {"id": "ack", "type": "map", "expression": ack},
        {"id": "reply", "type": "callback", "unwrap": True, "render": "xml"},
    ]
    body = b'<order id="42"><line sku="A1"/></order>'
    _, responses = await run(shapes, request(body, XML))
    assert responses[0].body == (
        b'<?xml version="1.0" encoding="UTF-8"?><ack order="42"><status>received</status></ack>'
    )
