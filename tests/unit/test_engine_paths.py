"""Paths (route, branch, try_catch) and the shapes that reshape the bucket (split, batch,
notify): their semantics, what follows them, and how failures and budgets cross them."""

from __future__ import annotations

import json
from typing import Any

from control_plane.engine import (
    CallbackResponse,
    ExecutionResult,
    RunInput,
    execute,
    validate_definition,
)
from control_plane.engine.budgets import Budgets


def _input(body: bytes = b"", query: tuple = ()) -> RunInput:
    return RunInput("run-1", "acme", "flow-1", "cb-1", "", "POST", (), query, body)


async def run(
    shapes: list[dict[str, Any]], body: Any = None, budgets: Budgets | None = None, **kw
) -> tuple[ExecutionResult, Any]:
    """Runs trigger + `shapes` + a callback; returns the result and the callback's JSON body."""
    definition = validate_definition(
        {
            "shapes": [
                {"id": "trigger", "type": "trigger"},
                *shapes,
                {"id": "reply", "type": "callback"},
            ]
        }
    )
    responses: list[CallbackResponse] = []
    raw = b"" if body is None else json.dumps(body).encode()
    result = await execute(definition, _input(raw), responses.append, budgets, **kw)
    answer = json.loads(responses[0].body) if responses else None
    return result, answer


def ran(result: ExecutionResult) -> list[tuple[str, str]]:
    return [(s.shape_id, s.status) for s in result.shapes]


ROUTE = {
    "id": "route",
    "type": "route",
    "paths": [
        {
            "condition": "payload.kind == 'a'",
            "shapes": [{"id": "to-a", "type": "map", "expression": "'A'"}],
        },
        {
            "condition": "payload.n > `1`",
            "shapes": [{"id": "to-n", "type": "map", "expression": "payload.n"}],
        },
    ],
}


async def test_route_runs_each_path_whose_condition_holds_in_order_and_concatenates():
    result, answer = await run([ROUTE], {"kind": "a", "n": 5})
    assert result.status == "succeeded"
    assert answer == ["A", 5]
    assert ran(result) == [
        ("trigger", "ok"),
        ("route", "ok"),
        ("to-a", "ok"),
        ("to-n", "ok"),
        ("reply", "ok"),
    ]


async def test_route_with_one_matching_path_runs_only_it():
    result, answer = await run([ROUTE], {"kind": "b", "n": 7})
    assert answer == [7]
    assert "to-a" not in dict(ran(result))


async def test_route_where_nothing_holds_passes_the_bucket_on_or_runs_otherwise():
    _, answer = await run([ROUTE], {"kind": "b", "n": 0})
    assert answer == [{"kind": "b", "n": 0}]
    with_otherwise = {**ROUTE, "otherwise": [{"id": "other", "type": "map", "expression": "'O'"}]}
    _, answer = await run([with_otherwise], {"kind": "b", "n": 0})
    assert answer == ["O"]
    _, answer = await run([with_otherwise], {"kind": "a", "n": 0})
    assert answer == ["A"]  # otherwise runs only when no condition holds


async def test_branch_runs_every_path_on_the_same_input_and_variables_carry_on():
    branch = {
        "id": "b",
        "type": "branch",
        "paths": [
            {
                "shapes": [
                    {"id": "double", "type": "map", "expression": "[payload, payload]"},
                    {"id": "keep", "type": "set_variables", "variables": {"first": "payload"}},
                ]
            },
            {"shapes": [{"id": "seen", "type": "map", "expression": "[payload, vars.first]"}]},
            {"shapes": []},
        ],
    }
    result, answer = await run([branch], 3)
    assert result.status == "succeeded"
    assert answer == [[3, 3], [3, [3, 3]], 3]


async def test_a_callback_inside_a_path_answers_with_that_paths_bucket_and_only_once():
    branch = {
        "id": "b",
        "type": "branch",
        "paths": [
            {
                "shapes": [
                    {"id": "x", "type": "map", "expression": "'inner'"},
                    {"id": "cb-in", "type": "callback"},
                ]
            },
        ],
    }
    definition = validate_definition(
        {"shapes": [{"id": "t", "type": "trigger"}, branch, {"id": "cb-out", "type": "callback"}]}
    )
    responses: list[CallbackResponse] = []
    result = await execute(definition, _input(b"1"), responses.append)
    assert result.status == "succeeded"
    assert [json.loads(r.body) for r in responses] == [["inner"]]


FAILING = {"id": "boom", "type": "map", "expression": "abs(payload)"}  # payload is a string


async def test_try_catch_runs_catch_from_the_try_input_with_the_error():
    try_catch = {
        "id": "tc",
        "type": "try_catch",
        "try": [{"id": "before", "type": "map", "expression": "'changed'"}, FAILING],
        "catch": [
            {"id": "report", "type": "map", "expression": "{seen: payload, error: vars.error}"}
        ],
    }
    result, answer = await run([try_catch], "text")
    assert result.status == "succeeded"
    assert answer[0]["seen"] == "text"  # the bucket try started with, not what `before` made
    error = answer[0]["error"]
    assert error["shape_id"] == "boom" and error["type"] == "expression"
    assert "abs()" in error["message"] and "status" not in error
    assert ("boom", "failed") in ran(result) and ("report", "ok") in ran(result)


async def test_try_catch_without_failure_skips_catch_and_gives_trys_bucket():
    try_catch = {
        "id": "tc",
        "type": "try_catch",
        "try": [{"id": "ok", "type": "map", "expression": "length(payload)"}],
        "catch": [{"id": "never", "type": "map", "expression": "'caught'"}],
    }
    result, answer = await run([try_catch], "four")
    assert answer == [4]
    assert "never" not in dict(ran(result))


async def test_nested_try_the_innermost_catches_and_a_failing_catch_goes_outward():
    inner = {
        "id": "inner",
        "type": "try_catch",
        "try": [FAILING],
        "catch": [{"id": "inner-fails", "type": "map", "expression": "abs(vars.error.shape_id)"}],
    }
    outer = {
        "id": "outer",
        "type": "try_catch",
        "try": [{"id": "in-branch", "type": "branch", "paths": [{"shapes": [inner]}]}],
        "catch": [{"id": "outer-catch", "type": "map", "expression": "vars.error.shape_id"}],
    }
    result, answer = await run([outer], "x")
    assert result.status == "succeeded"
    assert answer == ["inner-fails"]


async def test_an_empty_catch_swallows_the_failure_and_passes_the_try_input_on():
    try_catch = {"id": "tc", "type": "try_catch", "try": [FAILING], "catch": []}
    result, answer = await run([try_catch], "x")
    assert result.status == "succeeded" and answer == ["x"]


async def test_a_failure_outside_any_try_fails_the_run():
    result, answer = await run([FAILING], "x")
    assert result.status == "failed" and answer is None
    assert result.error.startswith("shape 'boom' failed:")


async def test_budgets_are_not_caught():
    try_catch = {
        "id": "tc",
        "type": "try_catch",
        "try": [{"id": "big", "type": "map", "expression": "join('', [payload, payload])"}],
        "catch": [{"id": "never", "type": "map", "expression": "'caught'"}],
    }
    result, _ = await run([try_catch], "y" * 600, Budgets(bucket_bytes=1000))
    assert result.status == "failed" and result.budget == "bucket_size"
    assert "never" not in dict(ran(result))


async def test_the_gathered_outputs_of_a_branch_are_held_to_the_bucket_budget():
    branch = {"id": "b", "type": "branch", "paths": [{"shapes": []}] * 3}
    result, _ = await run([branch], "z" * 400, Budgets(bucket_bytes=1000))
    assert result.status == "failed" and result.budget == "bucket_size"


async def test_a_route_condition_that_fails_is_caught_like_any_shape():
    route = {
        "id": "r",
        "type": "route",
        "paths": [{"condition": "abs(payload)", "shapes": []}],
    }
    try_catch = {
        "id": "tc",
        "type": "try_catch",
        "try": [route],
        "catch": [{"id": "c", "type": "map", "expression": "vars.error.shape_id"}],
    }
    _, answer = await run([try_catch], "x")
    assert answer == ["r"]


async def test_wait_inside_a_path():
    branch = {
        "id": "b",
        "type": "branch",
        "paths": [{"shapes": [{"id": "w", "type": "wait", "seconds": 0.01}]}, {"shapes": []}],
    }
    result, answer = await run([branch], 1)
    assert result.status == "succeeded" and answer == [1, 1]


async def test_split_concatenates_each_payloads_array_and_refuses_others():
    split = {"id": "s", "type": "split", "expression": "payload.items"}
    _, answer = await run(
        [
            {
                "id": "p",
                "type": "manual_payload",
                "payloads": [{"items": [1, 2]}, {"items": []}, {"items": [3]}],
            },
            split,
        ]
    )
    assert answer == [1, 2, 3]
    result, _ = await run([split], {"items": "no"})
    assert result.status == "failed"
    assert "gave str for payload 0; split needs an array" in result.error


async def test_batch_groups_in_order():
    batch = {"id": "b", "type": "batch", "size": 2}
    _, answer = await run(
        [{"id": "p", "type": "manual_payload", "payloads": [1, 2, 3, 4, 5]}, batch]
    )
    assert answer == [[1, 2], [3, 4], [5]]
    _, answer = await run([{"id": "p", "type": "manual_payload", "payloads": []}, batch])
    assert answer == []


async def test_notify_renders_its_template_and_keeps_the_first_hundred():
    notify = {
        "id": "n",
        "type": "notify",
        "level": "warning",
        "message": "order {{ payload.id }} of {{ payload }}: {{ `null` }}",
    }
    result, answer = await run([notify], {"id": "o-1"})
    assert answer == [{"id": "o-1"}]
    [notice] = result.notices
    assert notice["level"] == "warning" and notice["shape_id"] == "n"
    assert notice["message"] == 'order o-1 of {"id":"o-1"}: null'
    many = {
        "id": "b",
        "type": "branch",
        "paths": [
            {"shapes": [{"id": f"n{i}", "type": "notify", "message": f"{i}"}]} for i in range(50)
        ],
    }
    nested = {"id": "outer", "type": "branch", "paths": [{"shapes": [many]}] * 1}
    twice = [
        nested,
        {
            **many,
            "id": "b2",
            "paths": [
                {"shapes": [{"id": f"m{i}", "type": "notify", "message": f"m{i}"}]}
                for i in range(50)
            ],
        },
        {"id": "last", "type": "notify", "message": "dropped"},
    ]
    result, _ = await run(twice, 1)
    assert len(result.notices) == 100
    assert result.notices[-1]["message"] == "m49"


async def test_notify_cuts_long_messages():
    notify = {"id": "n", "type": "notify", "message": "{{ payload }}"}
    result, _ = await run([notify], "x" * 5000)
    assert len(result.notices[0]["message"]) == 2000
    assert result.notices[0]["message"].endswith("…")


async def test_run_flow_without_a_runner_fails_and_with_one_starts_the_child():
    shape = {"id": "child", "type": "run_flow", "flow": "0" * 26, "variables": {"v": "payload"}}
    result, _ = await run([shape], 1)
    assert result.status == "failed" and "needs a runner" in result.error
    started = []

    async def start_child(shape_id, flow, bucket, variables):
        started.append((shape_id, flow, bucket, variables))
        return "child-run"

    result, answer = await run([shape], 1, start_child=start_child)
    assert result.status == "succeeded" and answer == [1]
    assert started == [("child", "0" * 26, [1], {"v": 1})]
