"""What the caller gets when a run ends without a callback: one table from RunReason to error.

The runner names why a run ended (RunOutcome.reason); the caller's status follows from that
alone. UNSPECIFIED (a peer that predates the enum, or a run that succeeded without a callback)
falls back on the run's status.
"""

from __future__ import annotations

from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge import errors

#: Every RunReason but UNSPECIFIED. RUNNER_DRAINING is retried on another runner by the pool and
#: only lands here if that is not done; then, as with no runner left, the flow did not start.
BY_REASON: dict[int, type[errors.CallbackError]] = {
    r.RUN_REASON_FLOW_FAILED: errors.FlowFailed,
    r.RUN_REASON_NO_CALLBACK: errors.NoCallback,
    r.RUN_REASON_VERSION_NOT_FOUND: errors.FlowFailed,
    r.RUN_REASON_TIMED_OUT: errors.CallbackTimeout,
    r.RUN_REASON_RUN_LOST: errors.RunInterrupted,
    r.RUN_REASON_CRASHED: errors.FlowFailed,
    r.RUN_REASON_BUDGET_EXPRESSION_STEPS: errors.BudgetExpressionSteps,
    r.RUN_REASON_BUDGET_VALUE_SIZE: errors.BudgetValueSize,
    r.RUN_REASON_BUDGET_BUCKET_SIZE: errors.BudgetBucketSize,
    r.RUN_REASON_BUDGET_VARIABLES_SIZE: errors.BudgetVariablesSize,
    r.RUN_REASON_BUDGET_CALLBACK_SIZE: errors.BudgetCallbackSize,
    r.RUN_REASON_BUDGET_SHAPE_LOG: errors.BudgetShapeLog,
    r.RUN_REASON_COMPANY_BUSY: errors.TooManyRuns,
    r.RUN_REASON_RUNNER_DRAINING: errors.RunnerDown,
    r.RUN_REASON_INTERNAL: errors.FlowFailed,
    r.RUN_REASON_IDEMPOTENCY_MISMATCH: errors.IdempotencyKeyReused,
    r.RUN_REASON_ANSWERS_QUOTA: errors.AnswersQuota,
}

_BY_STATUS: dict[int, type[errors.CallbackError]] = {
    r.RUN_STATUS_SUCCEEDED: errors.NoCallback,
    r.RUN_STATUS_TIMED_OUT: errors.CallbackTimeout,
}


def outcome_error(outcome: runner_pb2.RunOutcome, run_id: str | None) -> errors.CallbackError:
    """The error for a run that ended (or never started) without reaching a callback."""
    error = BY_REASON.get(outcome.reason) or _BY_STATUS.get(outcome.status, errors.FlowFailed)
    # An empty run id means no run record exists (the runner did not start the run).
    return error(run_id=run_id)
