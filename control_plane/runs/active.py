"""A run in a runner's hands, and where its events go.

`ActiveRun` holds what the driver needs between shapes (record, input, progress, state) and what
its caller has been told (accepted, callback); `RunListener` is the stream that started it.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from control_plane.engine import CallbackResponse, Progress, RunInput, RunState
from control_plane.runs.lifecycle import LANE_CALLER, RunRecord
from control_plane.runs.versions import LoadedVersion

if TYPE_CHECKING:
    from control_plane.runs.journal import Journal


class RunListener(Protocol):
    """Where a run's events go: the RunFlow stream that started it. Called on the event loop;
    must not block. Events for a run whose stream is gone are dropped by the listener."""

    def accepted(self, run_id: str, status_token: str = "") -> None: ...
    def callback(self, response: CallbackResponse) -> None: ...
    def outcome(self, status: int, reason: int, error: str) -> None: ...
    def replay(self, run_id: str, answer: bytes | None) -> None: ...


class Nobody:
    """The listener of a resumed run: its caller was answered long ago, by another runner."""

    def accepted(self, run_id: str, status_token: str = "") -> None:
        pass

    def replay(self, run_id: str, answer: bytes | None) -> None:
        pass

    def callback(self, response: CallbackResponse) -> None:
        pass

    def outcome(self, status: int, reason: int, error: str) -> None:
        pass


#: The listener of a run that is over (driver._start): anything said after its end is dropped.
ENDED = Nobody()


class ActiveRun:
    """A run this runner works on, and what its caller has been told so far."""

    def __init__(self, listener: RunListener, journal: Journal) -> None:
        self.listener = listener
        self.record: RunRecord | None = None
        self.input: RunInput | None = None
        self.progress = Progress()
        self.state: RunState | None = None
        self.version: LoadedVersion | None = None
        self.lane = LANE_CALLER
        self.durable = False  # the record exists in the database
        self.accepted_sent = False
        self.callback_sent = False
        self.abandoned = False  # the stream broke before `accepted`: the edge may retry elsewhere
        self.caller_status = 0  # what the edge told the caller instead of a callback, if it did
        self.crashes = 0  # engine workers that died running this run's shapes
        self.claiming = False  # its start is being claimed (driver._claim)
        self.content_type = ""  # the callback's, kept with a kept answer
        self.status_token = ""  # for `accepted`, when the run keeps an async answer
        #: What the run answered, once it has: ("callback", CallbackResponse) or
        #: ("outcome", (status, reason, error)); kept answers are built from it (driver.py).
        self.answered_with: tuple[str, object] | None = None
        #: While the bucket is large, the progress lives in the engine workers as this
        #: checkpoint text (progress.bucket and .vars are then empty); None otherwise.
        self.remote: str | None = None
        self.task: asyncio.Task | None = None
        self._journal = journal

    def caller_answered(self, status: int) -> None:
        """The edge answered the caller without a callback (RunCancel.caller_status). May come
        before the record exists (the version was still loading): kept until it does."""
        self.listener = Nobody()
        self.caller_status = status or 504
        if self.record is not None:
            self.record.caller_answered(self.caller_status)
            self._save()

    def detach(self) -> None:
        """The stream that started the run is gone."""
        if self.callback_sent:
            return
        self.listener = Nobody()
        if not self.accepted_sent:
            self.abandoned = True  # no caller has its id; the edge may run the request elsewhere
        elif self.record is not None and self.record.response_status == 0:
            self.record.caller_answered(502)  # the edge answers 502 run_lost
            self._save()

    def _save(self) -> None:
        if self.durable and self._journal is not None and self.record is not None:
            self._journal.save(self.record, urgent=False)  # the caller has its answer


def caller_timed_out(run: ActiveRun) -> None:
    # A fallback for when the edge cannot say (its stream broke): past its timeout, the caller
    # got 504 unless a callback was sent before.
    if not run.callback_sent and run.record is not None and run.record.response_status == 0:
        run.record.caller_answered(504)
        run._save()
