"""Flow definition format: what is accepted, and where each violation is reported."""

from __future__ import annotations

from typing import Any

import pytest

from control_plane.engine import (
    DEFAULT_DEFINITION,
    DefinitionError,
    load_definition,
    validate_definition,
)
from control_plane.engine.shapes import (
    CallbackShape,
    FilterShape,
    ManualPayloadShape,
    MapShape,
    SetVariablesShape,
    TriggerShape,
    WaitShape,
)

TRIGGER = {"id": "trigger", "type": "trigger"}


def flow(*shapes: dict[str, Any]) -> dict[str, Any]:
    """A definition starting with the trigger."""
    return {"shapes": [TRIGGER, *shapes]}


def test_default_definition_is_a_lone_trigger() -> None:
    definition = validate_definition(DEFAULT_DEFINITION)
    assert definition.shapes == (TriggerShape(id="trigger"),)
    assert definition.has_callback is False


def test_every_shape_type_is_parsed() -> None:
    definition = validate_definition(
        flow(
            {"id": "seed", "type": "manual_payload", "payloads": [1, {"a": "b"}], "name": "Seed"},
            {"id": "one", "type": "manual_payload", "payload": None},
            {"id": "m", "type": "map", "expression": "payload.a"},
            {"id": "f", "type": "filter", "condition": "payload != `null`"},
            {"id": "v", "type": "set_variables", "variables": {"total": "length(payloads)"}},
            {"id": "w", "type": "wait", "seconds": 300},
            {"id": "w2", "type": "wait", "seconds": 0.25},
            {
                "id": "cb",
                "type": "callback",
                "status": 201,
                "headers": {"X-Flow": "yes"},
                "unwrap": True,
            },
            {"id": "cb-default", "type": "callback"},
        )
    )
    shapes = definition.shapes
    assert [type(s) for s in shapes] == [
        TriggerShape,
        ManualPayloadShape,
        ManualPayloadShape,
        MapShape,
        FilterShape,
        SetVariablesShape,
        WaitShape,
        WaitShape,
        CallbackShape,
        CallbackShape,
    ]
    assert shapes[1].name == "Seed"
    assert shapes[1].payloads == (1, {"a": "b"})
    assert shapes[2].payloads == (None,)
    assert shapes[3].expression.source == "payload.a"
    assert [name for name, _ in shapes[5].variables] == ["total"]
    assert (shapes[6].seconds, shapes[7].seconds) == (300.0, 0.25)
    assert shapes[8] == CallbackShape(
        id="cb", status=201, headers=(("X-Flow", "yes"),), unwrap=True
    )
    assert shapes[9] == CallbackShape(id="cb-default", status=200, headers=(), unwrap=False)
    assert definition.has_callback is True


@pytest.mark.parametrize(
    "shape",
    [
        {"id": "a" * 64, "type": "map", "expression": "@"},
        {"id": "0-x_y", "type": "map", "expression": "@", "name": "n" * 200},
        {"id": "s", "type": "callback", "status": 200},
        {"id": "s", "type": "callback", "status": 599},
        {"id": "v", "type": "set_variables", "variables": {"_A9": "merge(payload, `{}`)"}},
        {"id": "v", "type": "set_variables", "variables": {"n": "not_null(a, b, c)"}},
        {"id": "h", "type": "callback", "headers": {"Cache-Control": "no-store", "X-E": ""}},
    ],
)
def test_valid_edge_cases(shape: dict[str, Any]) -> None:
    assert len(validate_definition(flow(shape)).shapes) == 2


# (document, [(field path, part of the description)]): every violation, in document order.
INVALID: dict[str, tuple[Any, list[tuple[str, str]]]] = {
    "doc is a list": ([], [("definition", "must be a JSON object")]),
    "doc is null": (None, [("definition", "must be a JSON object")]),
    "shapes missing": ({}, [("definition.shapes", "is required")]),
    "shapes not a list": ({"shapes": {"id": "t"}}, [("definition.shapes", "must be an array")]),
    "shapes empty": ({"shapes": []}, [("definition.shapes", "trigger")]),
    "unknown top-level key": (
        {"shapes": [TRIGGER], "version": 2},
        [("definition.version", "unknown field")],
    ),
    "shape not an object": (flow("map"), [("definition.shapes[1]", "must be an object")]),
    "unknown type": (
        flow({"id": "x", "type": "transform"}),
        [("definition.shapes[1].type", "unknown shape type 'transform'")],
    ),
    "type missing": (flow({"id": "x"}), [("definition.shapes[1].type", "is required")]),
    "missing trigger": (
        {"shapes": [{"id": "m", "type": "map", "expression": "@"}]},
        [("definition.shapes[0].type", "the first shape must be the trigger")],
    ),
    "trigger not first": (
        {"shapes": [{"id": "m", "type": "map", "expression": "@"}, TRIGGER]},
        [
            ("definition.shapes[0].type", "the first shape must be the trigger"),
            ("definition.shapes[1].type", "one trigger"),
        ],
    ),
    "two triggers": (
        flow({"id": "again", "type": "trigger"}),
        [("definition.shapes[1].type", "one trigger")],
    ),
    "id missing": (
        flow({"type": "map", "expression": "@"}),
        [("definition.shapes[1].id", "is required")],
    ),
    "id uppercase": (
        flow({"id": "Map", "type": "map", "expression": "@"}),
        [("definition.shapes[1].id", "must be a string matching")],
    ),
    "id too long": (
        flow({"id": "a" * 65, "type": "map", "expression": "@"}),
        [("definition.shapes[1].id", "must be a string matching")],
    ),
    "id with newline": (
        flow({"id": "a\n", "type": "map", "expression": "@"}),
        [("definition.shapes[1].id", "must be a string matching")],
    ),
    "duplicate id": (
        flow(
            {"id": "m", "type": "map", "expression": "@"},
            {"id": "m", "type": "filter", "condition": "@"},
        ),
        [("definition.shapes[2].id", "duplicate id 'm', already used by shapes[1]")],
    ),
    "name too long": (
        flow({"id": "m", "type": "map", "expression": "@", "name": "n" * 201}),
        [("definition.shapes[1].name", "200")],
    ),
    "name not a string": (
        flow({"id": "m", "type": "map", "expression": "@", "name": 1}),
        [("definition.shapes[1].name", "must be a string")],
    ),
    "unknown field on trigger": (
        {"shapes": [{"id": "t", "type": "trigger", "expression": "@"}]},
        [("definition.shapes[0].expression", "unknown field for a trigger shape")],
    ),
    "unknown field on map": (
        flow({"id": "m", "type": "map", "expression": "@", "condition": "@"}),
        [("definition.shapes[1].condition", "unknown field for a map shape")],
    ),
    "bad expression": (
        flow({"id": "m", "type": "map", "expression": "a.["}),
        [("definition.shapes[1].expression", "Incomplete expression")],
    ),
    "empty expression": (
        flow({"id": "m", "type": "map", "expression": ""}),
        [("definition.shapes[1].expression", "cannot be empty")],
    ),
    "expression not a string": (
        flow({"id": "m", "type": "map", "expression": 3}),
        [("definition.shapes[1].expression", "must be a string")],
    ),
    "expression missing": (
        flow({"id": "m", "type": "map"}),
        [("definition.shapes[1].expression", "is required")],
    ),
    "unknown function": (
        flow({"id": "f", "type": "filter", "condition": "lenght(payload)"}),
        [("definition.shapes[1].condition", "unknown function lenght()")],
    ),
    "wrong argument count": (
        flow({"id": "f", "type": "filter", "condition": "starts_with(payload)"}),
        [("definition.shapes[1].condition", "takes 2 argument(s), got 1")],
    ),
    "bad variable name": (
        flow({"id": "v", "type": "set_variables", "variables": {"1x": "@", "a-b": "@"}}),
        [
            ("definition.shapes[1].variables.1x", "must match"),
            ("definition.shapes[1].variables.a-b", "must match"),
        ],
    ),
    "bad variable expression": (
        flow({"id": "v", "type": "set_variables", "variables": {"ok": "@", "total": "sum("}}),
        [("definition.shapes[1].variables.total", "Invalid jmespath expression")],
    ),
    "no variables": (
        flow({"id": "v", "type": "set_variables", "variables": {}}),
        [("definition.shapes[1].variables", "at least one")],
    ),
    "variables not an object": (
        flow({"id": "v", "type": "set_variables", "variables": ["a"]}),
        [("definition.shapes[1].variables", "must be an object")],
    ),
    "status too low": (
        flow({"id": "c", "type": "callback", "status": 99}),
        [("definition.shapes[1].status", "200 to 599")],
    ),
    "an interim 1xx status": (
        flow({"id": "c", "type": "callback", "status": 101}),
        [("definition.shapes[1].status", "200 to 599")],
    ),
    "status too high": (
        flow({"id": "c", "type": "callback", "status": 600}),
        [("definition.shapes[1].status", "200 to 599")],
    ),
    "status is a bool": (
        flow({"id": "c", "type": "callback", "status": True}),
        [("definition.shapes[1].status", "must be an integer")],
    ),
    "status is a float": (
        flow({"id": "c", "type": "callback", "status": 200.0}),
        [("definition.shapes[1].status", "must be an integer")],
    ),
    "unwrap not a bool": (
        flow({"id": "c", "type": "callback", "unwrap": 1}),
        [("definition.shapes[1].unwrap", "must be a boolean")],
    ),
    "forbidden header": (
        flow({"id": "c", "type": "callback", "headers": {"Content-Type": "text/plain"}}),
        [("definition.shapes[1].headers.Content-Type", "content type is set on the callback")],
    ),
    "forbidden header, other case": (
        flow({"id": "c", "type": "callback", "headers": {"CONTENT-LENGTH": "3"}}),
        [("definition.shapes[1].headers.CONTENT-LENGTH", "cannot be set here")],
    ),
    "header name not a token": (
        flow({"id": "c", "type": "callback", "headers": {"X Flow": "1"}}),
        [("definition.shapes[1].headers.X Flow", "not a valid header name")],
    ),
    "header value splits the response": (
        flow({"id": "c", "type": "callback", "headers": {"X-A": "1\r\nSet-Cookie: a=b"}}),
        [("definition.shapes[1].headers.X-A", "printable ASCII")],
    ),
    "header value not a string": (
        flow({"id": "c", "type": "callback", "headers": {"X-A": 1}}),
        [("definition.shapes[1].headers.X-A", "must be a string")],
    ),
    "headers not an object": (
        flow({"id": "c", "type": "callback", "headers": [["X-A", "1"]]}),
        [("definition.shapes[1].headers", "must be an object")],
    ),
    "wait zero": (
        flow({"id": "w", "type": "wait", "seconds": 0}),
        [("definition.shapes[1].seconds", "(0, 300]")],
    ),
    "wait too long": (
        flow({"id": "w", "type": "wait", "seconds": 300.5}),
        [("definition.shapes[1].seconds", "(0, 300]")],
    ),
    "wait bool": (
        flow({"id": "w", "type": "wait", "seconds": True}),
        [("definition.shapes[1].seconds", "(0, 300]")],
    ),
    "wait string": (
        flow({"id": "w", "type": "wait", "seconds": "5"}),
        [("definition.shapes[1].seconds", "(0, 300]")],
    ),
    "wait NaN": (
        flow({"id": "w", "type": "wait", "seconds": float("nan")}),
        [("definition.shapes[1].seconds", "(0, 300]")],
    ),
    "manual_payload with both": (
        flow({"id": "p", "type": "manual_payload", "payload": 1, "payloads": [1]}),
        [("definition.shapes[1]", "exactly one of 'payload' or 'payloads'")],
    ),
    "manual_payload with neither": (
        flow({"id": "p", "type": "manual_payload"}),
        [("definition.shapes[1]", "exactly one of 'payload' or 'payloads'")],
    ),
    "manual_payload payloads not a list": (
        flow({"id": "p", "type": "manual_payload", "payloads": {"a": 1}}),
        [("definition.shapes[1].payloads", "must be an array")],
    ),
    "manual_payload not JSON": (
        flow({"id": "p", "type": "manual_payload", "payload": {"x": float("inf")}}),
        [("definition.shapes[1].payload", "must be a JSON value")],
    ),
    "every violation is reported": (
        {
            "extra": 1,
            "shapes": [
                TRIGGER,
                {"id": "m", "type": "map", "expression": "a.["},
                {"id": "m", "type": "callback", "status": 1, "headers": {"content-type": "x"}},
                {"id": "w", "type": "wait"},
            ],
        },
        [
            ("definition.extra", "unknown field"),
            ("definition.shapes[1].expression", "Incomplete expression"),
            ("definition.shapes[2].id", "duplicate id"),
            ("definition.shapes[2].status", "200 to 599"),
            ("definition.shapes[2].headers.content-type", "cannot be set here"),
            ("definition.shapes[3].seconds", "(0, 300]"),
        ],
    ),
}


@pytest.mark.parametrize(("doc", "expected"), INVALID.values(), ids=INVALID.keys())
def test_violations(doc: Any, expected: list[tuple[str, str]]) -> None:
    with pytest.raises(DefinitionError) as caught:
        validate_definition(doc)
    violations = caught.value.violations
    assert [field for field, _ in violations] == [field for field, _ in expected]
    for (_, description), (_, part) in zip(violations, expected, strict=True):
        assert part in description


def test_load_definition_refuses_what_validation_refuses() -> None:
    with pytest.raises(DefinitionError, match=r"definition\.shapes\[1\]\.expression"):
        load_definition(flow({"id": "m", "type": "map", "expression": "a.["}))
    assert load_definition(DEFAULT_DEFINITION) == validate_definition(DEFAULT_DEFINITION)


def test_deeply_nested_expression_is_a_violation_not_a_crash() -> None:
    expression = "(" * 5000 + "a" + ")" * 5000
    with pytest.raises(DefinitionError) as caught:
        validate_definition(flow({"id": "m", "type": "map", "expression": expression}))
    assert caught.value.violations == [
        ("definition.shapes[1].expression", "expression is nested too deeply")
    ]
