"""CSV payloads (control_plane/engine/formats.py, docs/formats.md): RFC 4180 both ways, the
bounds, and round trips checked against the standard library's reader."""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from control_plane.engine.budgets import BudgetExceeded, Budgets, Meter
from control_plane.engine.formats import (
    MAX_CSV_CELLS,
    MAX_CSV_COLUMNS,
    MAX_CSV_FIELD,
    MAX_CSV_ROWS,
    FormatError,
    RenderError,
    parse_by_content_type,
    parse_csv,
    render_csv,
)


def test_header_row_then_objects_of_strings():
    body = (
        b"\xef\xbb\xbfsku,name,qty\r\n"  # a BOM, as spreadsheets write it: dropped
        b'A1,"Widget, large",2\r\n'
        b"\r\n"  # blank lines are skipped
        b'B2,"say ""hi""",\r\n'
        b'C3,"two\r\nlines",7\n'  # a bare LF ends a line too
        b"D4,caf\xc3\xa9,0"  # no final line break
    )
    assert parse_csv(body) == [
        {"sku": "A1", "name": "Widget, large", "qty": "2"},
        {"sku": "B2", "name": 'say "hi"', "qty": ""},
        {"sku": "C3", "name": "two\r\nlines", "qty": "7"},
        {"sku": "D4", "name": "café", "qty": "0"},
    ]


def test_a_header_alone_is_no_rows():
    assert parse_csv(b"a,b\r\n") == []
    assert parse_csv(b"\r\n\r\n") == []


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"a,b\r\n1,2,3\r\n", "line 2 has 3 fields; the header has 2"),
        (b"a,b\r\n1\r\n", "line 2 has 1 fields; the header has 2"),
        (b"a,a\r\n1,2\r\n", "names a column more than once"),
        (b'a,b\r\n"1"x,2\r\n', "malformed at line 2"),
        (b'a,b\r\n"unterminated,2\r\n', "malformed"),
        (b"a,b\r\n\xff,2\r\n", "not UTF-8"),
    ],
)
def test_malformed_csv_is_a_format_error_and_otherwise_text(body, why):
    with pytest.raises(FormatError) as caught:
        parse_csv(body)
    assert why in str(caught.value)
    assert parse_by_content_type(body, "text/csv") == body.decode("utf-8", errors="replace")


def test_csv_content_type():
    assert parse_by_content_type(b"a\r\n1\r\n", "text/csv; charset=utf-8") == [{"a": "1"}]
    assert parse_by_content_type(b"a\r\n1\r\n", "text/plain") == "a\r\n1\r\n"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (b"a\r\n" + b"1\r\n" * (MAX_CSV_ROWS + 1), f"more than {MAX_CSV_ROWS} rows"),
        (",".join(f"c{i}" for i in range(MAX_CSV_COLUMNS + 1)).encode(), "columns"),
        (
            ",".join(f"c{i}" for i in range(MAX_CSV_COLUMNS)).encode()
            + b"\r\n"
            + (b"," * (MAX_CSV_COLUMNS - 1) + b"\r\n") * (MAX_CSV_CELLS // MAX_CSV_COLUMNS + 1),
            f"more than {MAX_CSV_CELLS} cells",
        ),
        (b"a\r\n" + b"x" * (MAX_CSV_FIELD + 1), f"longer than {MAX_CSV_FIELD} characters"),
    ],
    ids=["rows", "columns", "cells", "field"],
)
def test_bounds_fail_the_parse_with_the_value_size_budget(body, what):
    with pytest.raises(BudgetExceeded) as caught:
        parse_csv(body)
    assert caught.value.budget == "value_size"
    assert what in str(caught.value)
    with pytest.raises(BudgetExceeded):  # not taken as text
        parse_by_content_type(body, "text/csv")


def test_at_the_bounds_it_parses():
    rows = parse_csv(b"a\r\n" + b"1\r\n" * MAX_CSV_ROWS)
    assert len(rows) == MAX_CSV_ROWS
    assert parse_csv(b"a\r\n" + b"x" * MAX_CSV_FIELD) == [{"a": "x" * MAX_CSV_FIELD}]


def test_render_objects_under_the_union_of_their_keys():
    rows = [
        {"sku": "A1", "qty": 2, "ok": True},
        {"qty": None, "sku": "B, 2", "tags": ["x", {"y": 1}], "note": 'say "hi"\nbye'},
        {"price": 1.5, "ok": False},
    ]
    assert render_csv(rows) == (
        b"sku,qty,ok,tags,note,price\r\n"
        b"A1,2,true,,,\r\n"
        b'"B, 2",,,"[""x"",{""y"":1}]","say ""hi""\nbye",\r\n'
        b",,false,,,1.5\r\n"
    )
    assert render_csv({"a": 1}) == b"a\r\n1\r\n"  # one object: one row
    assert render_csv(None) == b""
    assert render_csv([]) == b""


def test_render_arrays_as_they_are():
    assert render_csv([["a", "b"], [1, None], ["x,y"]]) == b'a,b\r\n1,\r\n"x,y"\r\n'


def test_formulas_are_written_as_they_are():
    # Documented: no prefix is added, so "-5" and "+44 20" stay what they are.
    assert render_csv([{"a": "=1+1", "b": "-5", "c": "+44 20", "d": "@x"}]) == (
        b"a,b,c,d\r\n=1+1,-5,+44 20,@x\r\n"
    )


@pytest.mark.parametrize(
    ("value", "why"),
    [
        (["a", "b"], "row 1 is a string"),
        ([{"a": 1}, [1]], "row 2 is an array"),
        ([[1], {"a": 1}], "row 2 is an object"),
        ([{"a": 1}, 3], "row 2 is a scalar"),
        (5, "row 1 is a scalar"),
    ],
)
def test_what_is_not_rows_fails_clearly(value, why):
    with pytest.raises(RenderError) as caught:
        render_csv(value)
    assert why in str(caught.value)


def test_render_is_bounded_and_metered():
    rows = [{"a": "x" * 50, "b": i} for i in range(200)]
    full = render_csv(rows)
    assert render_csv(rows, limit=len(full)) == full
    with pytest.raises(BudgetExceeded) as caught:
        render_csv(rows, limit=len(full) - 1)
    assert caught.value.budget == "callback_size"
    meter = Meter(Budgets())
    render_csv(rows, meter=meter)
    assert meter.run_steps >= 200


_chars = st.characters(blacklist_categories=["Cs"])
_cells = st.text(_chars)
# A BOM opening the document is dropped, as documented: no name starts with one here.
_names = st.text(_chars, min_size=1, max_size=5).filter(lambda n: not n.startswith("\ufeff"))


@settings(max_examples=200)
@given(
    st.lists(_names, min_size=1, max_size=5, unique=True).flatmap(
        lambda header: st.lists(
            st.fixed_dictionaries({name: _cells for name in header}), max_size=5
        ).map(lambda rows: (header, rows))
    )
)
def test_string_rows_round_trip(header_rows):
    _, rows = header_rows
    out = render_csv(rows)
    if rows:
        header, *lines = csv.reader(io.StringIO(out.decode(), newline=""), strict=True)
        assert [dict(zip(header, line, strict=True)) for line in lines] == rows
        assert parse_csv(out) == rows
