"""Budgets: the metered evaluator, value sizes, and the meter's limits, slices and deadline."""

from __future__ import annotations

import json
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from jmespath import exceptions as jmespath_errors
from jmespath import functions as jmespath_functions

from control_plane.engine.budgets import (
    DEADLINE_CHECK_STEPS,
    BudgetExceeded,
    Budgets,
    DeadlinePassed,
    Meter,
    SliceExhausted,
    value_size,
)
from control_plane.engine.expressions import Expression

EXPLODED = ("value_size", "expression_steps")


def shared(levels: int, leaf: Any = "ab") -> Any:
    """`levels` lists in memory, each holding the previous one twice: a logical size (what
    serialising or walking it costs) of ~2^levels leaves."""
    value = leaf
    for _ in range(levels):
        value = [value, value]
    return value


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False))


def nested(levels: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


@contextmanager
def bounded(seconds: float = 5.0, megabytes: int = 50) -> Iterator[None]:
    """Asserts that the block takes less than `seconds` and allocates less than `megabytes`
    at its peak. Unbounded, these cases take hours: 5 s tells the two apart even on a loaded
    2-core machine under tracemalloc (1 s did not: 1.14 s was measured there)."""
    tracemalloc.start()
    started = time.perf_counter()
    try:
        yield
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f} s"
    assert peak < megabytes << 20, f"peaked at {peak >> 20} MB"


@pytest.fixture
def spy(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[Any]]:
    """Records the arguments of each call of a JMESPath function; with `forbidden`, fails the
    call instead of running it (on a value that would take hours)."""

    def install(name: str, forbidden: bool = False) -> list[Any]:
        calls: list[Any] = []
        spec = jmespath_functions.Functions.FUNCTION_TABLE[name]
        original = spec["function"]

        def recording(self: Any, *args: Any) -> Any:
            calls.append(args)
            if forbidden:
                raise AssertionError(f"{name}() ran")
            return original(self, *args)

        monkeypatch.setitem(spec, "function", recording)
        return calls

    return install


CONTEXT: dict[str, Any] = {
    "payload": {
        "sku": "A1",
        "flag": True,
        "tags": ["red", "blue"],
        "items": [{"n": 3, "name": "c"}, {"n": 1, "name": "a"}, {"n": 2, "name": "b"}],
    },
    "payloads": [{"sku": "A1"}, {"sku": "B2"}],
    "meta": {"method": "POST", "query": {}},
    "vars": {"limit": 2},
}


# A whole run: the bucket doubles at each shape -----------------------------------------------

DOUBLING: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "list of the payload twice": ("[@, @]", lambda value: value),
    "object of the payload twice": ("{a: @, b: @}", lambda value: value),
    "map shape over the context": ("[payload, payload]", lambda value: {"payload": value}),
}


@pytest.mark.parametrize(("source", "context"), DOUBLING.values(), ids=DOUBLING.keys())
def test_a_chain_of_doubling_shapes_fails_fast_and_small(
    source: str, context: Callable[[Any], Any]
) -> None:
    expression, meter = Expression(source), Meter(Budgets())
    value: Any = {"sku": "A1", "items": [1, 2, 3]}
    with bounded(), pytest.raises(BudgetExceeded) as caught:
        for _ in range(30):  # 2^30 copies, logically
            value = expression.search(context(value), meter)
    assert caught.value.budget in EXPLODED


def test_to_string_of_a_shared_value_fails_before_serialising(spy: Any) -> None:
    calls = spy("to_string", forbidden=True)
    value = shared(28)
    assert value_size(value, 1 << 62, "value_size") > 1 << 30  # memoised: exact and quick
    to_string = Expression("to_string(@)")
    with bounded(), pytest.raises(BudgetExceeded) as caught:
        to_string.search(value, Meter(Budgets()))
    assert caught.value.budget in EXPLODED
    assert calls == []
    with pytest.raises(AssertionError, match="ran"):  # the spy does see calls
        to_string.search([1, "a"], Meter(Budgets()))


def test_to_string_counts_escaped_characters() -> None:
    # jmespath's to_string writes "é" as "\u00e9": 2M of them are 12 MB, over the 8 MB budget.
    to_string = Expression("to_string(@)")
    assert len(to_string.search(["e" * 2_000_000], Meter(Budgets()))) == 2_000_004
    with bounded(megabytes=8), pytest.raises(BudgetExceeded) as caught:
        to_string.search(["é" * 2_000_000], Meter(Budgets()))
    assert caught.value.budget == "value_size"


# One expression on its own ------------------------------------------------------------------

SELF_EXPLODING = {
    "pipes of [@, @]": " | ".join(["[@, @]"] * 40),
    "nested multiselects": " | ".join(["[[@, @], [@, @]]"] * 20),
    "multiselect objects": " | ".join(["{a: @, b: @, c: @}"] * 30),
    "to_string of copies": " | ".join(["to_string([@, @, @, @])"] * 15),
    "flatten of copies": " | ".join(["[@, @, @, @][]"] * 12),
    "map of copies": " | ".join(["map(&[@, @], [@, @])"] * 20),
    "projection of copies": " | ".join(["[@, @][*].[@, @]"] * 20),
    "sort_by of copies": " | ".join(["sort_by([@, @], &length(@))"] * 40),
}


@pytest.mark.parametrize("source", SELF_EXPLODING.values(), ids=SELF_EXPLODING.keys())
def test_an_exploding_expression_fails_fast_and_small(source: str) -> None:
    expression = Expression(source)
    with bounded(), pytest.raises(BudgetExceeded) as caught:
        expression.search([{"a": "hello"}], Meter(Budgets()))
    assert caught.value.budget in EXPLODED


def test_a_long_separator_fails_before_joining(spy: Any) -> None:
    calls = spy("join", forbidden=True)
    payload = {"sep": "x" * 1_000_000, "xs": [""] * 1_000}  # would join into 1 GB
    with bounded(megabytes=20), pytest.raises(BudgetExceeded) as caught:
        Expression("join(sep, xs)").search(payload, Meter(Budgets()))
    assert caught.value.budget == "value_size"
    assert calls == []


def test_comparing_large_values_is_charged_by_their_size() -> None:
    # Two separately built, equal values: `==` walks all 2^19 leaves of each, for every item.
    payload = [{"a": shared(19, 1), "b": shared(19, 1)}] * 1_000
    for source in ("[?a == b]", "[?contains([a], b)]"):
        with bounded(), pytest.raises(BudgetExceeded) as caught:
            Expression(source).search(payload, Meter(Budgets()))
        assert caught.value.budget == "expression_steps", source


def test_expression_references_are_metered(spy: Any) -> None:
    calls = spy("to_string", forbidden=True)
    with bounded(), pytest.raises(BudgetExceeded) as caught:
        Expression("map(&to_string(@), @)").search([shared(28)], Meter(Budgets()))
    assert caught.value.budget in EXPLODED
    assert calls == []
    items = [{"a": {"b": {"c": {"d": i}}}} for i in range(500)]
    # abs() around the key is one more node for every item, however the function calls back.
    for function in ("map(&{}, @)", "sort_by(@, &{})", "max_by(@, &{})"):
        plain = steps_of(function.format("a.b.c.d"), items)
        assert steps_of(function.format("abs(a.b.c.d)"), items) >= plain + 500, function


def test_size_free_functions_run_on_any_value() -> None:
    # length() and type() cost the same on any value: not measuring their arguments keeps
    # `length(payloads)` in a map from walking the whole bucket for every payload.
    meter = Meter(Budgets())
    assert Expression("[length(@), type(@)]").search(shared(40), meter) == [2, "array"]
    assert meter.run_steps < 100


# Large inputs ------------------------------------------------------------------------------

MILLION = list(range(1_000_000))
LONG_WALKS = {
    "projection": ("[*].a", MILLION),
    "filter": ("[?@ > `0`]", MILLION),
    "map": ("map(&@, @)", MILLION),
    "flatten": ("@[]", MILLION),
    "flatten of references": ("@[]", [MILLION] * 10),
    "slice": ("@[::1]", MILLION),
    "slice of a slice": ("@[1:][1:]", MILLION),
    "sort": ("sort(@)", MILLION),
    "reverse": ("reverse(@)", MILLION),
    "copies": ("[@, @][]", MILLION),
}


@pytest.mark.parametrize(("source", "value"), LONG_WALKS.values(), ids=LONG_WALKS.keys())
def test_walking_a_million_items_fails_on_steps_before_copying_them(
    source: str, value: Any
) -> None:
    expression = Expression(source)
    with bounded(megabytes=4), pytest.raises(BudgetExceeded) as caught:
        expression.search(value, Meter(Budgets()))
    assert caught.value.budget == "expression_steps"
    assert "exceeded its budget of 200000 steps" in str(caught.value)


NORMAL = [
    "{sku: payload.sku, n: length(payload.items)}",
    "{sku: payload.sku, q: payload.items[?n > `1`].n}",
    "payload.missing.field",
    "sort_by(payload.items, &n)[].name",
    "max_by(payload.items, &n).name",
    "min_by(payload.items, &name)",
    "join(', ', payload.items[].name)",
    "to_string(payload)",
    "merge(payload, {method: meta.method})",
    "payloads[*].sku",
    "*.sku",
    "contains(payload.tags, 'red')",
    "payload.items[1:]",
    "payload.items[0] == payload.items[0]",
    "payload.items[0] != payload.items[1]",
    "payload.sku < 'B'",
    "keys(payload) | sort(@)",
    "values(meta) | length(@)",
    "map(&n, payload.items) | [sum(@), avg(@), max(@), min(@)]",
    "!payload.flag || `false`",
    "payload.flag && vars.limit",
    "reverse(payload.tags)",
    "to_array(payload.sku)",
    "not_null(payload.none, vars.limit)",
    "[payload.tags[], payloads[].sku][]",
    "abs(`-1`)",
]


@pytest.mark.parametrize("source", NORMAL)
def test_normal_expressions_give_the_unmetered_result(source: str) -> None:
    expression = Expression(source)
    meter = Meter(Budgets())
    assert expression.search(CONTEXT, meter) == expression.search(CONTEXT)
    assert 0 < meter.run_steps < 200


ERRORS = {
    "length(`1`)": jmespath_errors.JMESPathTypeError,
    'sort(`[1, "a"]`)': jmespath_errors.JMESPathTypeError,
    "join(',', @)": jmespath_errors.JMESPathTypeError,
    "@[::0]": ValueError,
}


@pytest.mark.parametrize(("source", "error"), ERRORS.items(), ids=ERRORS.keys())
def test_errors_are_the_unmetered_ones(source: str, error: type[Exception]) -> None:
    expression = Expression(source)
    with pytest.raises(error):
        expression.search([1, 2])
    with pytest.raises(error):
        expression.search([1, 2], Meter(Budgets()))


def test_a_deeply_nested_expression_is_a_value_size_failure() -> None:
    expression = Expression(" | ".join(["@"] * 700))  # compiles, but evaluates 2 frames a pipe
    with pytest.raises(RecursionError):
        expression.search(1)
    with pytest.raises(BudgetExceeded) as caught:
        expression.search(1, Meter(Budgets()))
    assert caught.value.budget == "value_size"
    assert "nested deeper than 64 levels" in str(caught.value)


def test_each_thread_evaluates_with_its_own_meter() -> None:
    expression = Expression("payload.items[?n > `1`].name")
    alone = Meter(Budgets())
    expected = expression.search(CONTEXT, alone)
    results: list[tuple[Any, int]] = []

    def work() -> None:
        meter = Meter(Budgets())
        for _ in range(200):
            result = expression.search(CONTEXT, meter)
        results.append((result, meter.run_steps))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [(expected, 200 * alone.run_steps)] * 4


# value_size --------------------------------------------------------------------------------

SIZES = [
    None,
    True,
    False,
    0,
    -12,
    123_456_789,
    1.5,
    -0.25,
    1e300,
    "",
    "abc",
    "é€",
    [],
    {},
    [1, "a", None],
    {"a": {"b": [True, False, 2.5]}, "c": []},
    [[[]], {}, [{}]],
    {"items": [{"n": i, "name": f"item {i}"} for i in range(100)]},
]


@pytest.mark.parametrize("value", SIZES, ids=[repr(v)[:30] for v in SIZES])
def test_value_size_is_the_compact_json_length(value: Any) -> None:
    assert value_size(value, 1 << 30, "value_size") == compact(value)
    meter = Meter(Budgets())
    assert value_size([value, value], 1 << 30, "value_size", meter) == compact([value, value])
    assert meter.run_steps >= 3


def test_value_size_of_huge_integers_is_close() -> None:
    for value in (10**30, -(10**50), 2**200):
        assert abs(value_size(value, 1 << 30, "value_size") - len(str(value))) <= 2


def test_value_size_stops_at_the_limit() -> None:
    with pytest.raises(BudgetExceeded) as caught:
        value_size(["x" * 100], 100, "bucket_size")
    assert caught.value.budget == "bucket_size"
    assert str(caught.value) == "the bucket exceeded its size budget of 100 bytes"
    assert value_size(["x" * 96], 100, "bucket_size") == 100

    class Poison(list):  # measuring it would mean walking on past the limit
        def __len__(self) -> int:
            raise AssertionError("walked past the limit")

    with pytest.raises(BudgetExceeded):
        value_size(["x" * 200, Poison()], 100, "value_size")
    with pytest.raises(BudgetExceeded):
        value_size({"a": "x" * 200, "b": Poison()}, 100, "value_size")


def test_value_size_of_huge_shared_values_is_quick() -> None:
    meter = Meter(Budgets())
    started = time.perf_counter()
    with pytest.raises(BudgetExceeded) as caught:
        value_size(shared(60), 8 << 20, "variables_size", meter)
    assert time.perf_counter() - started < 0.05
    assert caught.value.budget == "variables_size"
    assert meter.run_steps < 1_000
    # Wide rather than deep: two million references to one string stop after 8 MB of them.
    wide = ["0123456789"] * 2_000_000
    started = time.perf_counter()
    with pytest.raises(BudgetExceeded):
        value_size(wide, 8 << 20, "value_size")
    assert time.perf_counter() - started < 1


def test_value_size_charges_steps_before_walking_long_containers() -> None:
    meter = Meter(Budgets())
    meter.begin_evaluation()
    with pytest.raises(BudgetExceeded) as caught:
        value_size(MILLION, 1 << 40, "value_size", meter)
    assert caught.value.budget == "expression_steps"


@pytest.mark.parametrize("budget", ["value_size", "bucket_size", "variables_size"])
def test_nesting_is_limited_to_max_depth(budget: str) -> None:
    assert value_size(nested(64), 1 << 20, budget) == 64 * 2 + 1
    with pytest.raises(BudgetExceeded) as caught:
        value_size(nested(65), 1 << 20, budget)
    assert caught.value.budget == "value_size"
    assert str(caught.value) == "a value is nested deeper than 64 levels"
    assert value_size(nested(10), 1 << 20, budget, max_depth=10) == 21
    with pytest.raises(BudgetExceeded):
        value_size(nested(11), 1 << 20, budget, max_depth=10)


def test_nesting_counts_a_shared_value_where_it_is_deepest() -> None:
    # The second occurrence is remembered from the first, one level higher.
    inner = nested(63, "x" * 100)
    assert value_size([inner, inner], 1 << 20, "value_size") == 2 * compact(inner) + 3
    with pytest.raises(BudgetExceeded) as caught:
        value_size([inner, [inner]], 1 << 20, "value_size")
    assert "nested deeper than 64 levels" in str(caught.value)


def test_an_expression_cannot_nest_deeper_than_max_depth() -> None:
    with pytest.raises(BudgetExceeded) as caught:
        Expression("[[[[@]]]]").search(nested(61), Meter(Budgets()))
    assert caught.value.budget == "value_size"
    assert Expression("[[[@]]]").search(nested(61), Meter(Budgets())) == nested(64)


# The meter ---------------------------------------------------------------------------------


def steps_of(source: str, value: Any) -> int:
    meter = Meter(Budgets())
    Expression(source).search(value, meter)
    return meter.run_steps


def test_expression_steps_limit_each_evaluation_and_run_steps_all_of_them() -> None:
    source, value = "[*].a", [{"a": i} for i in range(10)]
    one = steps_of(source, value)
    expression = Expression(source)

    meter = Meter(Budgets(expression_steps=one, run_steps=3 * one))
    for evaluation in range(3):
        expression.search(value, meter)
        assert meter.run_steps == (evaluation + 1) * one
        assert meter.evaluation_steps == one
    with pytest.raises(BudgetExceeded) as caught:
        expression.search(value, meter)
    assert caught.value.budget == "expression_steps"
    assert str(caught.value) == f"the run's expressions exceeded their budget of {3 * one} steps"

    meter = Meter(Budgets(expression_steps=one - 1))
    with pytest.raises(BudgetExceeded) as caught:
        expression.search(value, meter)
    assert str(caught.value) == f"expression evaluation exceeded its budget of {one - 1} steps"


def test_outside_an_evaluation_only_the_run_limit_applies() -> None:
    meter = Meter(Budgets(expression_steps=10, run_steps=1_000))
    Expression("a").search({"a": 1}, meter)
    meter.charge(500)  # measuring a bucket, say
    with pytest.raises(BudgetExceeded):
        meter.charge(600)


def test_a_passed_deadline_is_noticed_within_a_few_thousand_steps() -> None:
    meter = Meter(Budgets(), deadline=time.monotonic() - 1)
    with pytest.raises(DeadlinePassed):
        for _ in range(DEADLINE_CHECK_STEPS + 1):
            meter.charge(1)
    assert meter.run_steps > 1_000  # the clock is not read on every step

    meter = Meter(Budgets(), deadline=time.monotonic() + 60)
    for _ in range(3 * DEADLINE_CHECK_STEPS):
        meter.charge(1)

    meter = Meter(Budgets(), deadline=time.monotonic() - 1)
    with pytest.raises(DeadlinePassed):
        Expression("[*].a").search([{"a": i} for i in range(10_000)], meter)


def test_a_slice_ends_after_its_steps_and_then_closes() -> None:
    meter = Meter(Budgets())
    meter.open_slice(100)
    meter.charge(100)
    with pytest.raises(SliceExhausted):
        meter.charge(1)
    meter.charge(10_000)  # closed: the full budget again

    meter.open_slice(10)
    meter.close_slice()
    meter.charge(100)


def test_a_slice_interrupts_an_evaluation_that_is_run_again_in_full() -> None:
    expression, value = Expression("[*].a"), [{"a": i} for i in range(1_000)]
    meter = Meter(Budgets())
    meter.open_slice(50)
    with pytest.raises(SliceExhausted):
        expression.search(value, meter)
    assert expression.search(value, meter) == list(range(1_000))

    meter = Meter(Budgets())
    meter.open_slice(5 * steps_of("[*].a", value))  # spans evaluations
    for _ in range(5):
        expression.search(value, meter)
    with pytest.raises(SliceExhausted):
        expression.search(value, meter)


def test_restoring_run_steps_keeps_what_a_slice_has_left() -> None:
    meter = Meter(Budgets(run_steps=100_000))
    meter.open_slice(100)
    meter.charge(50)
    meter.run_steps = 10_000  # a checkpoint's count
    meter.charge(50)
    with pytest.raises(SliceExhausted):
        meter.charge(1)
    meter.run_steps = 99_999
    meter.charge(1)
    with pytest.raises(BudgetExceeded):
        meter.charge(1)


def test_budget_names_and_limits_are_checked() -> None:
    with pytest.raises(ValueError):
        BudgetExceeded("steps")
    assert BudgetExceeded("shape_log", "too many shapes").budget == "shape_log"
    assert str(BudgetExceeded("shape_log", "too many shapes")) == "too many shapes"
    with pytest.raises(ValueError):
        Budgets(expression_steps=0)
    assert Budgets().value_bytes == 8 << 20
