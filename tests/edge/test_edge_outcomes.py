"""The RunReason -> caller status table: complete, and budgets named after their reason."""

from __future__ import annotations

import pytest

from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge.outcomes import BY_REASON, outcome_error

_PREFIX = "RUN_REASON_"


def error_for(status: int, reason: int) -> tuple[int, str]:
    e = outcome_error(runner_pb2.RunOutcome(status=status, reason=reason), "run-1")
    return e.status_code, e.reason


def test_every_reason_has_a_caller_status() -> None:
    named = {v.number for v in r.RunReason.DESCRIPTOR.values} - {r.RUN_REASON_UNSPECIFIED}
    assert set(BY_REASON) == named


def test_budget_reasons_are_budget_and_the_enum_suffix() -> None:
    budgets = [v for v in r.RunReason.DESCRIPTOR.values if v.name.startswith(_PREFIX + "BUDGET_")]
    assert len(budgets) == 6
    for value in budgets:
        suffix = value.name.removeprefix(_PREFIX + "BUDGET_").lower()
        assert error_for(r.RUN_STATUS_FAILED, value.number) == (502, f"budget_{suffix}")


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (r.RUN_REASON_NO_CALLBACK, (502, "no_callback")),
        (r.RUN_REASON_TIMED_OUT, (504, "timeout")),
        (r.RUN_REASON_RUN_LOST, (502, "run_lost")),
        (r.RUN_REASON_COMPANY_BUSY, (429, "too_many_runs")),
        (r.RUN_REASON_FLOW_FAILED, (502, "flow_failed")),
        (r.RUN_REASON_CRASHED, (502, "flow_failed")),
        (r.RUN_REASON_INTERNAL, (502, "flow_failed")),
        (r.RUN_REASON_VERSION_NOT_FOUND, (502, "flow_failed")),
        (r.RUN_REASON_IDEMPOTENCY_MISMATCH, (422, "idempotency_key_reused")),
        (r.RUN_REASON_ANSWERS_QUOTA, (429, "answers_quota")),
    ],
)
def test_reason_decides_over_status(reason: int, expected: tuple[int, str]) -> None:
    # The status is deliberately one that would say something else on its own.
    assert error_for(r.RUN_STATUS_SUCCEEDED, reason) == expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (r.RUN_STATUS_SUCCEEDED, (502, "no_callback")),
        (r.RUN_STATUS_TIMED_OUT, (504, "timeout")),
        (r.RUN_STATUS_FAILED, (502, "flow_failed")),
        (r.RUN_STATUS_UNSPECIFIED, (502, "flow_failed")),
    ],
)
def test_unspecified_reason_falls_back_on_the_status(status: int, expected) -> None:
    assert error_for(status, r.RUN_REASON_UNSPECIFIED) == expected


def test_a_reason_newer_than_the_edge_falls_back_on_the_status() -> None:
    assert error_for(r.RUN_STATUS_TIMED_OUT, 99) == (504, "timeout")


def test_busy_says_when_to_retry_and_names_no_run() -> None:
    e = outcome_error(runner_pb2.RunOutcome(reason=r.RUN_REASON_COMPANY_BUSY), "")
    assert e.headers == {"retry-after": "1"} and e.run_id is None
