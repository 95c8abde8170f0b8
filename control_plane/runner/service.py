"""RunnerService.RunFlow: a thin stream adapter over the run driver (control_plane/runs).

The reader hands each `start` to the driver and each `cancel` or `detach` to its run; every
event a run produces goes into the stream's outbox, and one writer sends what the outbox holds
in as few messages as fit under MAX_MESSAGE_BYTES. Under load that packs many runs' events into
each HTTP/2 frame, which keeps the edge's per-request CPU low (docs/design.md §3, RunFlow).

GetRunAnswer reads the answer kept for an async run (runs/answers.py, docs/answers.md).
"""

from __future__ import annotations

import asyncio
import logging

from boomerang.v1 import runner_service_pb2 as rs
from boomerang.v1 import runner_service_pb2_grpc as rs_grpc
from control_plane.domain.tenancy import RUN_SCOPES
from control_plane.engine import CallbackResponse
from control_plane.grpckit.servicer import Runtime, Servicer
from control_plane.runs import answers
from control_plane.runs.active import ActiveRun
from control_plane.runs.driver import RunDriver

log = logging.getLogger(__name__)

#: Packed events per message stay under this; a single larger event (a callback body up to its
#: budget, at most 8 MiB) goes alone. The edge accepts up to 64 MiB.
MAX_MESSAGE_BYTES = 4 << 20
_EVENT_OVERHEAD = 64  # a generous bound on an event's bytes besides its body


class _Outbox:
    """Events waiting to be written on one stream; `drain` takes them all at once."""

    def __init__(self) -> None:
        self.events: list[rs.RunFlowServerEvent] = []
        self.sizes: list[int] = []
        self.ready = asyncio.Event()

    def put(self, event: rs.RunFlowServerEvent, size: int = _EVENT_OVERHEAD) -> None:
        self.events.append(event)
        self.sizes.append(size)
        self.ready.set()

    def drain(self) -> list[list[rs.RunFlowServerEvent]]:
        """The queued events, split into messages of at most MAX_MESSAGE_BYTES."""
        events, sizes = self.events, self.sizes
        self.events, self.sizes = [], []
        self.ready.clear()
        if sum(sizes) <= MAX_MESSAGE_BYTES:
            return [events] if events else []
        messages: list[list[rs.RunFlowServerEvent]] = [[]]
        total = 0
        for event, size in zip(events, sizes, strict=True):
            if messages[-1] and total + size > MAX_MESSAGE_BYTES:
                messages.append([])
                total = 0
            messages[-1].append(event)
            total += size
        return messages


class _StreamRun:
    """A run as one stream sees it: the driver's listener for that run.

    While a `detach` is being kept (`held` is a list), the run's answer events wait in it: if
    the detach succeeds they are dropped for `detached` (the caller gets 202, and the answer is
    kept for its status URL); if not, they go out as they would have."""

    __slots__ = ("answered", "held", "outbox", "ref", "run", "silent")

    def __init__(self, ref: int, outbox: _Outbox) -> None:
        self.ref = ref
        self.outbox = outbox
        self.silent = False
        self.answered = False  # a callback, outcome or replay went out: a detach comes too late
        self.held: list[tuple[rs.RunFlowServerEvent, int]] | None = None
        self.run: ActiveRun | None = None

    def _answer(self, event: rs.RunFlowServerEvent, size: int = _EVENT_OVERHEAD) -> None:
        if self.silent:
            return
        if self.held is not None:
            self.held.append((event, size))
        else:
            self.answered = True
            self.outbox.put(event, size)

    def accepted(self, run_id: str, status_token: str = "") -> None:
        if not self.silent:
            # Fields set in place: building the inner message and copying it in costs ~50% more.
            event = rs.RunFlowServerEvent(run_ref=self.ref)
            accepted = event.accepted
            accepted.run_id = run_id
            if status_token:
                accepted.status_token = status_token
            self.outbox.put(event)

    def replay(self, run_id: str, answer: bytes | None) -> None:
        replay = rs.RunReplay(run_id=run_id)
        if answer is not None:
            replay.answer.ParseFromString(answer)
        size = len(answer or b"") + _EVENT_OVERHEAD
        self._answer(rs.RunFlowServerEvent(run_ref=self.ref, replay=replay), size)

    def hold(self) -> None:
        self.held = []

    def release(self) -> None:
        """The detach failed: what the run said meanwhile goes out."""
        held, self.held = self.held or [], None
        for event, size in held:
            self._answer(event, size)

    def detached(self, status_token: str) -> None:
        """The detach succeeded: `detached` replaces the held answer, and nothing follows."""
        self.held = None
        if not self.silent:
            self.answered = True
            detached = rs.RunDetached(status_token=status_token)
            self.outbox.put(rs.RunFlowServerEvent(run_ref=self.ref, detached=detached))
        self.silent = True

    def callback(self, response: CallbackResponse) -> None:
        if self.silent:
            return
        event = rs.RunFlowServerEvent(run_ref=self.ref)
        callback = event.callback
        callback.status_code = response.status
        for name, value in response.headers:
            callback.headers.add(name=name, value=value)
        callback.body = response.body
        self._answer(event, len(response.body) + _EVENT_OVERHEAD)

    def outcome(self, status: int, reason: int, error: str) -> None:
        event = rs.RunFlowServerEvent(run_ref=self.ref)
        outcome = event.outcome
        outcome.status, outcome.reason = status, reason
        if error:
            outcome.error = error[:1000]
        self._answer(event)


class RunnerServicer(Servicer, rs_grpc.RunnerServiceServicer):
    def __init__(self, runtime: Runtime, driver: RunDriver) -> None:
        super().__init__(runtime)
        self.driver = driver
        self._outboxes: set[_Outbox] = set()
        self._detaching: set[asyncio.Task] = set()
        driver.on_drain.append(self._announce_drain)

    def _announce_drain(self) -> None:
        for outbox in self._outboxes:
            outbox.put(rs.RunFlowServerEvent(run_ref=0, draining=rs.RunnerDraining()))

    async def RunFlow(self, request_iterator, context):
        await self.call(context, lambda p: None, admin=True, scopes=RUN_SCOPES, open_ended=True)
        outbox = _Outbox()
        runs: dict[int, _StreamRun] = {}
        self._outboxes.add(outbox)
        if self.driver.draining:
            self._announce_drain()
        reader = asyncio.create_task(
            self._read(request_iterator, outbox, runs), name="runflow-reader"
        )
        # The reader's end wakes the writer too: one Event to wait on, rather than a task and an
        # asyncio.wait per batch (measurable per request when batches are small).
        reader.add_done_callback(lambda _: outbox.ready.set())
        try:
            while True:
                await outbox.ready.wait()
                finished = reader.done()
                for events in outbox.drain():
                    await context.write(rs.RunFlowResponse(events=events))
                if finished:
                    reader.result()
                    return  # the edge closed its side; runs carry on and are recorded
        finally:
            reader.cancel()
            self._outboxes.discard(outbox)
            for stream_run in runs.values():
                stream_run.silent = True
                if stream_run.run is not None:
                    stream_run.run.detach()

    async def _read(self, request_iterator, outbox: _Outbox, runs: dict[int, _StreamRun]) -> None:
        async for request in request_iterator:
            for event in request.events:
                ref = event.run_ref
                if event.HasField("start"):
                    stream_run = runs[ref] = _StreamRun(ref, outbox)
                    run = stream_run.run = self.driver.submit(event.start, stream_run)
                    run.task.add_done_callback(lambda _, ref=ref: runs.pop(ref, None))
                elif event.HasField("detach"):
                    stream_run = runs.get(ref)
                    if (
                        stream_run is not None
                        and stream_run.run is not None
                        and not stream_run.answered
                        and not stream_run.silent
                        and stream_run.held is None
                    ):
                        stream_run.hold()
                        task = asyncio.create_task(self._detach(stream_run, runs))
                        self._detaching.add(task)
                        task.add_done_callback(self._detaching.discard)
                elif event.HasField("cancel"):
                    stream_run = runs.pop(ref, None)
                    if stream_run is not None and stream_run.run is not None:
                        # The caller has its answer: stop talking about this run; it goes on.
                        stream_run.silent = True
                        stream_run.run.caller_answered(event.cancel.caller_status)

    async def _detach(self, stream_run: _StreamRun, runs: dict[int, _StreamRun]) -> None:
        try:
            status_token = await self.driver.detach(stream_run.run)
        except Exception:
            log.exception("cannot detach a run")
            status_token = ""
        if status_token and not stream_run.silent:  # else the stream broke: its edge said 502
            stream_run.detached(status_token)
            stream_run.run.caller_answered(202)
            if runs.get(stream_run.ref) is stream_run:
                del runs[stream_run.ref]  # like a cancel: this run_ref is done
        elif not status_token:
            stream_run.release()

    async def GetRunAnswer(self, request, context):
        return await self.call(
            context,
            lambda p: answers.get_run_answer(p, request.company, request.status_token),
            admin=True,
            scopes=RUN_SCOPES,
        )
