"""The flow page's outline of a definition: nested paths shown under their shape, and each
validation error at the shape it names, not also at the shapes that contain it."""

from __future__ import annotations

from console.flows import outline
from console.web import Problem

DEFINITION = {
    "shapes": [
        {"id": "trigger", "type": "trigger"},
        {
            "id": "pick",
            "type": "route",
            "paths": [
                {"condition": "payload.kind == 'order'", "shapes": [{"id": "a", "type": "map"}]},
            ],
            "otherwise": [{"id": "b", "type": "notify", "message": "other"}],
        },
        {
            "id": "guard",
            "type": "try_catch",
            "try": [{"id": "c", "type": "map", "expression": "x"}],
            "catch": [],
        },
    ]
}


def test_paths_nest_under_their_shape_with_errors_at_the_nested_shape():
    problem = Problem(
        "invalid",
        {"definition.shapes[1].paths[0].shapes[0].expression": ["is required"]},
    )
    rows = outline(DEFINITION, problem)
    assert [r["id"] for r in rows] == ["trigger", "pick", "guard"]
    pick = rows[1]
    assert pick["errors"] == []  # shown at the map inside, not at the route too
    assert [label for label, _ in pick["children"]] == [
        "path 1 when payload.kind == 'order'",
        "otherwise",
    ]
    [nested] = pick["children"][0][1]
    assert (nested["id"], nested["errors"]) == ("a", ["is required"])
    guard = rows[2]
    assert [(label, [r["id"] for r in sub]) for label, sub in guard["children"]] == [
        ("try", ["c"]),
        ("catch", []),
    ]
    # Path keys are not repeated among the shape's other settings.
    assert all(k != "other settings" for k, _ in guard["details"])


def test_errors_of_the_shape_and_of_its_paths_stay_with_the_shape():
    for field in (
        "definition.shapes[1].id",
        "definition.shapes[1].paths",
        "definition.shapes[1].paths[0].condition",
    ):
        rows = outline(DEFINITION, Problem("invalid", {field: ["is wrong"]}))
        assert rows[1]["errors"] == ["is wrong"], field
