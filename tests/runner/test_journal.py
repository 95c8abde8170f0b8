"""The journal's order: a change a caller waits for is committed before tail checkpoints, and a
tail flush is bounded in bytes, so a caller never waits behind a backlog of tails; writes of one
run are coalesced, never reordered."""

from __future__ import annotations

import datetime as dt

import pytest

from control_plane.runs.journal import TAIL_FLUSH_BYTES, Journal, Task
from control_plane.runs.lifecycle import LANE_CALLER, LANE_TAIL, RunRecord


class _Runtime:
    async def db(self, fn):
        return fn()


@pytest.fixture
def batches(monkeypatch) -> list[list[str]]:
    written: list[list[str]] = []
    monkeypatch.setattr(
        "control_plane.runs.journal._write",
        lambda runs, tasks, finals, kept: written.append([row[0] for row in runs]),
    )
    return written


def _record(run_id: str) -> RunRecord:
    return RunRecord(run_id, "c", "f", "v", "", "cb", dt.datetime(2026, 1, 1))


async def test_urgent_changes_go_first_and_tail_flushes_are_bounded(batches) -> None:
    journal = Journal(_Runtime(), "me", 10)
    big = "x" * (TAIL_FLUSH_BYTES * 6 // 10)
    tails = [journal.save(_record(f"t{i}"), Task(LANE_TAIL, big), urgent=False) for i in range(3)]
    waiting = journal.save(_record("caller"), Task(LANE_CALLER, ""))
    await journal.flush()
    assert batches == [["caller"]] and waiting.done() and not any(t.done() for t in tails)
    await journal.flush_all()
    assert batches[1:] == [["t0"], ["t1"], ["t2"]]  # each over half the budget: one a flush
    assert all(t.done() for t in tails)


async def test_a_run_has_one_entry_and_keeps_its_urgency(batches) -> None:
    journal = Journal(_Runtime(), "me", 10)
    record = _record("r")
    first = journal.save(record, Task(LANE_CALLER, ""))
    record.response_status = 504
    second = journal.save(record, urgent=False)
    journal.save(_record("other"), Task(LANE_TAIL, "{}"), urgent=False)
    await journal.flush()
    assert batches == [["r"]] and first.done() and second.done()
