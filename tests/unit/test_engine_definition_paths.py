"""Validation of nested paths and the new shapes: field paths into paths, ids unique across the
flow, the nesting depth and the shape count, and each new shape's fields."""

from __future__ import annotations

import pytest

from control_plane.engine import DefinitionError, validate_definition
from control_plane.engine.definition import MAX_DEPTH, MAX_SHAPES

T = {"id": "t", "type": "trigger"}


def violations(*shapes) -> list[tuple[str, str]]:
    with pytest.raises(DefinitionError) as failed:
        validate_definition({"shapes": [T, *shapes]})
    return failed.value.violations


def test_violations_in_paths_name_their_field_path():
    route = {
        "id": "r",
        "type": "route",
        "paths": [
            {"condition": "`true`", "shapes": [{"id": "ok", "type": "map", "expression": "@"}]},
            {
                "condition": "`true`",
                "shapes": [
                    {"id": "m", "type": "map", "expression": "@"},
                    {"id": "bad", "type": "map", "expression": "a[?"},
                ],
            },
        ],
    }
    [(field, _)] = violations({"id": "x", "type": "map", "expression": "@"}, route)
    assert field == "definition.shapes[2].paths[1].shapes[1].expression"
    tc = {"id": "tc", "type": "try_catch", "try": [{"id": "w", "type": "wait"}], "catch": []}
    assert violations(tc) == [
        ("definition.shapes[1].try[0].seconds", "must be a number in (0, 300]")
    ]


def test_ids_are_unique_across_every_level():
    branch = {
        "id": "b",
        "type": "branch",
        "paths": [{"shapes": [{"id": "t", "type": "batch", "size": 1}]}],
    }
    assert violations(branch) == [
        (
            "definition.shapes[1].paths[0].shapes[0].id",
            "duplicate id 't', already used by shapes[0]",
        )
    ]


def test_the_trigger_is_only_the_first_top_level_shape():
    branch = {"id": "b", "type": "branch", "paths": [{"shapes": [{"id": "t2", "type": "trigger"}]}]}
    [(field, what)] = violations(branch)
    assert field == "definition.shapes[1].paths[0].shapes[0].type"
    assert what == "a flow has one trigger, and it is the first shape (not in a path)"


def test_nesting_depth_is_bounded():
    inner: dict = {"id": "leaf", "type": "map", "expression": "@"}
    for level in range(MAX_DEPTH + 1):
        inner = {"id": f"b{level}", "type": "branch", "paths": [{"shapes": [inner]}]}
    found = violations(inner)
    assert len(found) == 1
    field, what = found[0]
    assert what == f"paths are nested more than {MAX_DEPTH} levels deep"
    assert field.count(".paths[0].shapes") == MAX_DEPTH + 1
    # exactly MAX_DEPTH levels is fine
    inner = {"id": "leaf", "type": "map", "expression": "@"}
    for level in range(MAX_DEPTH):
        inner = {"id": f"b{level}", "type": "branch", "paths": [{"shapes": [inner]}]}
    validate_definition({"shapes": [T, inner]})


def test_the_shape_count_is_bounded_at_all_levels():
    maps = [{"id": f"m{i}", "type": "map", "expression": "@"} for i in range(MAX_SHAPES)]
    branch = {"id": "b", "type": "branch", "paths": [{"shapes": maps}]}
    found = violations(branch)
    assert found == [
        (
            f"definition.shapes[1].paths[0].shapes[{MAX_SHAPES - 2}]",
            f"a flow holds at most {MAX_SHAPES} shapes, at all levels",
        )
    ]


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ({"id": "r", "type": "route"}, [("definition.shapes[1].paths", "is required")]),
        (
            {"id": "r", "type": "route", "paths": []},
            [("definition.shapes[1].paths", "must be a non-empty array")],
        ),
        (
            {"id": "r", "type": "route", "paths": [{"shapes": []}]},
            [("definition.shapes[1].paths[0].condition", "is required")],
        ),
        (
            {"id": "r", "type": "route", "paths": [{"condition": "@", "shapes": [], "x": 1}]},
            [("definition.shapes[1].paths[0].x", "unknown field for a path")],
        ),
        (
            {"id": "r", "type": "route", "paths": [{"condition": "@", "shapes": {}}]},
            [("definition.shapes[1].paths[0].shapes", "must be an array of shapes")],
        ),
        (
            {"id": "b", "type": "branch", "paths": [{"shapes": []}] * 51},
            [("definition.shapes[1].paths", "must hold at most 50 paths")],
        ),
        (
            {"id": "tc", "type": "try_catch", "try": []},
            [("definition.shapes[1].catch", "is required")],
        ),
        ({"id": "s", "type": "split"}, [("definition.shapes[1].expression", "is required")]),
        (
            {"id": "b", "type": "batch", "size": 0},
            [("definition.shapes[1].size", "must be an integer from 1 to 10000")],
        ),
        (
            {"id": "b", "type": "batch", "size": True},
            [("definition.shapes[1].size", "must be an integer from 1 to 10000")],
        ),
        (
            {"id": "n", "type": "notify", "level": "loud", "message": "x"},
            [("definition.shapes[1].level", "must be one of: debug, info, warning, error")],
        ),
        (
            {"id": "n", "type": "notify", "message": "a {{ b"},
            [("definition.shapes[1].message", "has a '{{' without its closing '}}'")],
        ),
        (
            {"id": "n", "type": "notify", "message": "x" * 2001},
            [("definition.shapes[1].message", "must be a string of 1 to 2000 characters")],
        ),
        (
            {"id": "f", "type": "run_flow", "flow": "nope"},
            [("definition.shapes[1].flow", "must be a flow id")],
        ),
        (
            {"id": "f", "type": "run_flow", "flow": "0" * 26, "variables": {"1x": "@"}},
            [
                (
                    "definition.shapes[1].variables.1x",
                    "variable names must match ^[A-Za-z_][A-Za-z0-9_]{0,63}$",
                )
            ],
        ),
    ],
)
def test_new_shapes_fields(shape, expected):
    assert violations(shape) == expected


def test_notify_placeholder_expressions_are_compiled_on_save():
    [(field, what)] = violations({"id": "n", "type": "notify", "message": "{{ a[? }}"})
    assert field == "definition.shapes[1].message" and what


def test_a_callback_in_a_path_counts_as_having_one():
    branch = {"id": "b", "type": "branch", "paths": [{"shapes": [{"id": "c", "type": "callback"}]}]}
    assert validate_definition({"shapes": [T, branch]}).has_callback
    assert not validate_definition({"shapes": [T]}).has_callback
