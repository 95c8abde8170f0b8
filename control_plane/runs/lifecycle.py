"""A run's life: its record, its statuses and reasons (the proto enums), and the one place that
decides what the caller got.

    running ──callback reached──► responded ──► succeeded | failed | timed_out
       └──────────────── ends before a callback ──► succeeded | failed | timed_out

`response_status` is what the caller actually got: the callback's status when it was sent, the
status the edge reports when it answered otherwise (504 timeout, 499 caller left), 502 when the
run ended, failed or was lost before answering. Once set it never changes, except that the edge's
own report wins: it is the one that spoke to the caller.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import orjson

from boomerang.v1 import resources_pb2 as r
from control_plane.grpckit.convert import RUN_STATUS_NAMES, RUN_STATUSES
from control_plane.store.clock import utcnow

# The stored status names (the run table's `status` column) and their enum have one home, the
# conversions between rows and messages.
STATUS_NAMES: dict[int, str] = RUN_STATUS_NAMES
STATUSES: dict[str, int] = RUN_STATUSES
FINAL = frozenset({r.RUN_STATUS_SUCCEEDED, r.RUN_STATUS_FAILED, r.RUN_STATUS_TIMED_OUT})

#: Budget names (engine.budgets.BudgetExceeded.budget) to their reason.
BUDGET_REASONS: dict[str, int] = {
    "expression_steps": r.RUN_REASON_BUDGET_EXPRESSION_STEPS,
    "value_size": r.RUN_REASON_BUDGET_VALUE_SIZE,
    "bucket_size": r.RUN_REASON_BUDGET_BUCKET_SIZE,
    "variables_size": r.RUN_REASON_BUDGET_VARIABLES_SIZE,
    "callback_size": r.RUN_REASON_BUDGET_CALLBACK_SIZE,
    "shape_log": r.RUN_REASON_BUDGET_SHAPE_LOG,
}

# Shared: json.dumps with non-default arguments builds a new encoder on every call.
_SHAPES_ENCODER = json.JSONEncoder(separators=(",", ":"))


def _shapes_json(shapes: list[dict[str, Any]]) -> str:
    """The shape log as stored: orjson (~0.6 µs for a three-shape log, against ~8 µs, on every
    commit of a run); the stdlib encoder for what orjson refuses (a lone surrogate in an
    error). Both write the same values (orjson leaves non-ASCII unescaped)."""
    try:
        return orjson.dumps(shapes).decode()
    except orjson.JSONEncodeError:
        return _SHAPES_ENCODER.encode(shapes)


#: What the caller gets when a run ends before answering (the edge maps reasons the same way).
NO_ANSWER_STATUS = 502

#: Lanes of the run queue: a caller waits (first) or the tail after the callback.
LANE_CALLER, LANE_TAIL = 0, 1


@dataclass(slots=True)
class RunRecord:
    """A run as the runner holds it; `row()` is what the run table stores."""

    id: str
    company_id: str
    flow_id: str
    version_id: str
    environment_id: str
    callback_id: str
    started_at: dt.datetime
    status: int = r.RUN_STATUS_RUNNING
    reason: int = r.RUN_REASON_UNSPECIFIED
    responded_at: dt.datetime | None = None
    ended_at: dt.datetime | None = None
    response_status: int = 0
    error: str = ""
    shapes: list[dict[str, Any]] = field(default_factory=list)
    attempts: int = 1
    #: Whether a run_task row was written for it (so ending it has one to delete).
    has_task: bool = False
    #: Whether it has a kept_answer row (runs/answers.py): only then do its answers cost a
    #: write.
    keeps_answer: bool = False
    #: What its notify shapes wrote (engine/notify.py), at most MAX_NOTICES.
    notices: list[dict[str, Any]] = field(default_factory=list)
    #: The run whose run_flow shape started this one ("" for a run started by a request), and
    #: the length of that chain (0 for a run started by a request).
    parent_run_id: str = ""
    depth: int = 0

    def keep_progress(self, progress: Any) -> None:
        """Copies what the record shows of the run's engine.Progress: its log and notices."""
        self.shapes = [s.to_doc() for s in progress.shapes]
        self.notices = progress.notices

    @property
    def final(self) -> bool:
        return self.status in FINAL

    def responded(self, status: int) -> None:
        """The callback shape's answer was sent to the edge."""
        self.status, self.responded_at = r.RUN_STATUS_RESPONDED, utcnow()
        if self.response_status == 0:
            self.response_status = status

    def caller_answered(self, status: int) -> None:
        """The edge says what it told the caller instead of a callback (504, 499, 502)."""
        self.response_status = status

    def end(self, status: int, reason: int = r.RUN_REASON_UNSPECIFIED, error: str = "") -> None:
        self.status, self.reason, self.error = status, reason, error
        self.ended_at = utcnow()
        if self.response_status == 0:
            # The caller was not answered by a callback: the edge answers 502 for every ending
            # without one (flow_failed, no_callback, run_lost, budget_…).
            self.response_status = NO_ANSWER_STATUS

    def row(self) -> tuple:
        """Column values in runs.journal.COLUMNS order. By hand: dataclasses.asdict deep-copies
        and cost 90 µs a record on the event loop."""
        return (
            self.id,
            self.company_id,
            self.flow_id,
            self.version_id,
            self.environment_id,
            self.callback_id,
            STATUS_NAMES[self.status],
            self.started_at,
            self.responded_at,
            self.ended_at,
            self.response_status,
            self.error,
            _shapes_json(self.shapes),
            self.reason,
            self.attempts,
            self.parent_run_id,
            self.depth,
            # Notices are the flow's values (a NaN, a huge integer): the stdlib writes them as
            # it always has.
            _SHAPES_ENCODER.encode(self.notices) if self.notices else "[]",
        )
