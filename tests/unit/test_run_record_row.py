"""RunRecord.row(): the shape log and notices are stored as JSON that reads back as the same
values, whatever the strings hold (non-ASCII, control characters, a lone surrogate)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from control_plane.runs.journal import RUN_COLUMNS
from control_plane.runs.lifecycle import RunRecord

_NAMES = [c.name for c in RUN_COLUMNS]  # not RUN_COLUMNS.index: peewee fields overload ==
SHAPES, NOTICES = _NAMES.index("shapes"), _NAMES.index("notices")


def _record() -> RunRecord:
    return RunRecord("r", "c", "f", "v", "", "cb", dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "error",
    ["", "plain", "café ünïcödé 🎉", 'quote " slash / back \\ nl \n nul \x00', "lone \ud800 half"],
)
def test_the_shape_log_reads_back_as_written(error):
    record = _record()
    record.shapes = [
        {
            "shape_id": "map",
            "shape_type": "map",
            "status": "failed",
            "duration_us": 12,
            "items_in": 1,
            "items_out": 0,
            "error": error,
        }
    ]
    assert json.loads(record.row()[SHAPES]) == record.shapes


def test_notices_keep_any_json_value():
    record = _record()
    assert record.row()[NOTICES] == "[]"
    record.notices = [{"big": 10**30, "text": "é\ud800", "list": [1.5, None, True]}]
    assert json.loads(record.row()[NOTICES]) == record.notices
