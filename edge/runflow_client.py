"""The edge's side of RunnerService.RunFlow: one long-lived stream shared by every request.

Each run is tagged with a `run_ref` from a counter. Requests only append their event to the
stream's pending batch and wake the writer; the writer sends everything queued as ONE
RunFlowRequest per write, so under load one write (and one HTTP/2 frame) carries many runs.
That batching is the performance design (docs/design.md §3: a stream per request kept 0.14 of bare
Sanic throughput, a batched shared stream 0.56): the edge's event-loop CPU per request is the
budget, so a run costs one future and a dict entry, never a task of its own.

A reader dispatches the runner's events to the run's future, which resolves with the first of
`callback` (the caller's response) or `outcome` (the run ended without one), or, for kept answers
(docs/answers.md), `replay` (a repeated Idempotency-Key), `detached` (after `detach`) or, for an
async or webhook-mode start, an `accepted` that names the run. If the stream breaks,
every open run fails: `RunnerUnavailable` if it was not accepted yet, `RunLost` if it was. Then
the client reconnects with backoff; starts in between fail at once with `RunnerUnavailable`.

A runner about to shut down says `draining` (or answers a start with RUN_REASON_RUNNER_DRAINING):
the client then reports itself not `accepting` until its next stream, so the pool (runner_pool)
sends new runs elsewhere, while the runs already open here still get their events.

One message never packs more than MAX_MESSAGE_BYTES of events (one larger event goes alone): a
burst of large bodies in one message could pass the runner's receive limit, and the runner would
end the stream, failing every tenant's open runs.

Coalescing (`coalesce_s`, EDGE_RUNFLOW_COALESCE_MS): at a moderate rate the writer would send
each start on its own, and a gRPC message costs each process far more CPU than a start does, so
a start queued while other runs are open waits until `coalesce_s` after the previous write, and
the starts queued meanwhile share one message. A lone start (no other run open: one connection's
latency) goes at once; NATURAL_BATCH queued events end the wait; and a stream whose last message
carried that many batches well by itself, so its starts do not wait: under such a load, waiting
would only leave both processes idle (docs/design.md §3, "Coalescing at a moderate rate").
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable

import grpc

from boomerang.v1 import resources_pb2
from boomerang.v1 import runner_service_pb2 as runner_pb2
from boomerang.v1 import runner_service_pb2_grpc as runner_grpc
from edge.backoff import Backoff

log = logging.getLogger(__name__)

RunResult = (
    runner_pb2.RunCallback
    | runner_pb2.RunOutcome
    | runner_pb2.RunReplay
    | runner_pb2.RunDetached
    | runner_pb2.RunAccepted
)

#: Most bytes of packed events in one RunFlowRequest: the contract's bound for both writers, a
#: quarter of the runner's 16 MiB receive limit.
MAX_MESSAGE_BYTES = 4 << 20
# ByteSize() costs about as much as serializing (measured: 8 us against 7 us for 20 small
# starts), so the writer measures a batch only when this estimate could pass the limit: the
# bodies, plus per start a bound on the rest (request line and headers fit Sanic's 8 KiB header
# limit; the ids are short), plus per cancel its few bytes.
_START_ALLOWANCE = 16 << 10
_CANCEL_ALLOWANCE = 32

_ASYNC = runner_pb2.ANSWER_MODE_ASYNC
_WEBHOOK = runner_pb2.ANSWER_MODE_WEBHOOK
#: Events after which the runner sends nothing more for the run.
_LAST_EVENTS = frozenset({"callback", "outcome", "replay", "detached"})

_DRAINING = resources_pb2.RUN_REASON_RUNNER_DRAINING

#: Events that make a message worth sending without a coalescing wait: once this many are
#: queued they go at once, and a stream whose last message carried this many batches well by
#: itself (its next start does not wait either).
NATURAL_BATCH = 8


class RunnerUnavailable(Exception):
    """The run could not start: no stream to the runner, or it broke before `accepted`."""


class RunLost(Exception):
    """The stream broke after the run was accepted; the run goes on but its answer is lost."""


class _Stream:
    """One RunFlow call and the runs opened on it."""

    __slots__ = (
        "call",
        "deferred",
        "last_events",
        "last_write",
        "pending",
        "pending_bytes",
        "runs",
        "wake",
    )

    def __init__(self, call: grpc.aio.StreamStreamCall) -> None:
        self.call = call
        #: Runs waiting for `callback` or `outcome`, by run_ref.
        self.runs: dict[int, Run] = {}
        #: Events queued for the next write.
        self.pending = runner_pb2.RunFlowRequest()
        #: At least the serialized size of `pending` (see _START_ALLOWANCE).
        self.pending_bytes = 0
        self.wake = asyncio.Event()
        #: Event-loop time the last write began, and how many events it carried.
        self.last_write = 0.0
        self.last_events = 0
        #: The timer that wakes the writer when a coalescing wait ends.
        self.deferred: asyncio.TimerHandle | None = None


class Run:
    """One run as a request sees it."""

    __slots__ = ("_stream", "answer_mode", "ref", "result", "run_id")

    def __init__(
        self, ref: int, result: asyncio.Future[RunResult], stream: _Stream, answer_mode: int = 0
    ) -> None:
        self.ref = ref
        #: None until `accepted`; then the run id ("" when the runner could not start the run).
        self.run_id: str | None = None
        #: Resolves with the first answer for the caller: RunCallback, RunOutcome, RunReplay,
        #: RunDetached, or (ASYNC and WEBHOOK starts) the RunAccepted of a run that started.
        self.result = result
        #: The start's AnswerMode.
        self.answer_mode = answer_mode
        self._stream = stream


class RunFlowClient:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        api_key: str,
        name: str = "runner",
        backoff: Backoff | None = None,
        coalesce_s: float = 0.0,
    ) -> None:
        #: The runner's address, for logs and metrics.
        self.name = name
        #: Longest a start waits for others to share its message (0: never waits).
        self.coalesce_s = coalesce_s
        #: Called whenever `accepting` may have changed (the pool wakes requests waiting for one).
        self.on_change: Callable[[], None] = _nothing
        self._stub = runner_grpc.RunnerServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._backoff = backoff or Backoff()
        self._refs = itertools.count(1)
        self._stream: _Stream | None = None
        self._draining = False
        self._last_error = ""

    @property
    def connected(self) -> bool:
        return self._stream is not None

    @property
    def draining(self) -> bool:
        """The runner said it takes no new runs (cleared by the next stream)."""
        return self._draining

    @property
    def accepting(self) -> bool:
        """New runs may start here: a stream is open and the runner is not draining."""
        return self._stream is not None and not self._draining

    @property
    def open_runs(self) -> int:
        stream = self._stream
        return len(stream.runs) if stream is not None else 0

    def start(self, start: runner_pb2.RunStart) -> Run:
        """Queue a run's start; raises RunnerUnavailable when there is no stream."""
        stream = self._stream
        if stream is None:
            raise RunnerUnavailable
        ref = next(self._refs)
        run = Run(ref, asyncio.get_running_loop().create_future(), stream, start.answer_mode)
        stream.runs[ref] = run
        stream.pending.events.add(run_ref=ref, start=start)
        stream.pending_bytes += len(start.body) + _START_ALLOWANCE
        self._queued(stream)
        return run

    def _queued(self, stream: _Stream) -> None:
        """Wakes the writer for a queued start: now, or when its coalescing wait ends."""
        if stream.wake.is_set():
            return
        queued = len(stream.pending.events)
        if stream.deferred is not None:  # waiting already: until the batch is worth a message
            if queued >= NATURAL_BATCH:
                stream.wake.set()
            return
        loop = asyncio.get_running_loop()
        if (
            len(stream.runs) <= queued  # no other run open: nothing to wait with
            or max(queued, stream.last_events) >= NATURAL_BATCH
            or loop.time() >= stream.last_write + self.coalesce_s
        ):
            stream.wake.set()
        else:
            stream.deferred = loop.call_at(stream.last_write + self.coalesce_s, stream.wake.set)

    def cancel(self, run: Run, caller_status: int = 0) -> None:
        """Stop waiting for a run that has neither called back nor ended (no-op otherwise).

        `caller_status` is what the caller got instead (504, 499); the runner records it.
        """
        stream = run._stream
        if stream.runs.pop(run.ref, None) is None:
            return
        if stream is self._stream:
            cancel = runner_pb2.RunCancel(caller_status=caller_status)
            stream.pending.events.add(run_ref=run.ref, cancel=cancel)
            stream.pending_bytes += _CANCEL_ALLOWANCE
            stream.wake.set()

    def detach(self, run: Run) -> None:
        """Ask the runner to keep the answer of a run whose caller waited long enough (the
        callback's async_after_ms): it then sends `detached` unless it has answered already."""
        stream = run._stream
        if run.ref in stream.runs and stream is self._stream:
            stream.pending.events.add(run_ref=run.ref, detach=runner_pb2.RunDetach())
            stream.pending_bytes += _CANCEL_ALLOWANCE
            stream.wake.set()

    async def run_answer(
        self, request: runner_pb2.GetRunAnswerRequest, timeout_s: float
    ) -> runner_pb2.GetRunAnswerResponse:
        """RunnerService.GetRunAnswer on this runner's channel; raises grpc.aio.AioRpcError."""
        return await self._stub.GetRunAnswer(request, metadata=self._metadata, timeout=timeout_s)

    async def run(self) -> None:
        """Keep a stream open forever; cancel the task to stop (open runs then fail)."""
        while True:
            opened = time.monotonic()
            try:
                await self._session()
                self._note_failure("stream ended by the runner")
            except grpc.aio.AioRpcError as e:
                self._note_failure(f"{e.code().name}: {e.details()}")
            except asyncio.InvalidStateError:
                self._note_failure("stream finished")
            except Exception as e:
                log.exception("RunFlow stream failed")
                self._note_failure(type(e).__name__)
            if time.monotonic() - opened >= self._backoff.cap_s:
                self._backoff.reset()
            await asyncio.sleep(self._backoff.next_delay())

    async def _session(self) -> None:
        call = self._stub.RunFlow(metadata=self._metadata)
        stream = _Stream(call)
        try:
            await call.wait_for_connection()
            self._stream = stream
            self._draining = False  # a runner that drained and came back takes runs again
            self.on_change()
            if self._last_error:
                log.info("RunFlow stream to the runner %s is up again", self.name)
                self._last_error = ""
            reader = asyncio.create_task(self._read(stream), name="edge-runflow-reader")
            writer = asyncio.create_task(self._write(stream), name="edge-runflow-writer")
            try:
                done, _ = await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
            finally:
                reader.cancel()
                writer.cancel()
                await asyncio.gather(reader, writer, return_exceptions=True)
            # Re-raise what ended the stream; the reader's error (the call's status) says most.
            (reader if reader in done else writer).result()
        finally:
            if self._stream is stream:
                self._stream = None
                self.on_change()
            if stream.deferred is not None:
                stream.deferred.cancel()
            call.cancel()
            _fail_open_runs(stream)

    async def _write(self, stream: _Stream) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await stream.wake.wait()
            stream.wake.clear()
            if stream.deferred is not None:  # woken before its coalescing wait ended
                stream.deferred.cancel()
                stream.deferred = None
            batch, stream.pending = stream.pending, runner_pb2.RunFlowRequest()
            estimate, stream.pending_bytes = stream.pending_bytes, 0
            stream.last_write, stream.last_events = loop.time(), len(batch.events)
            if estimate <= MAX_MESSAGE_BYTES or batch.ByteSize() <= MAX_MESSAGE_BYTES:
                await stream.call.write(batch)
            else:
                for part in split_batch(batch, MAX_MESSAGE_BYTES):
                    await stream.call.write(part)

    async def _read(self, stream: _Stream) -> None:
        runs = stream.runs
        while True:
            response = await stream.call.read()
            if response is grpc.aio.EOF:
                return
            self._backoff.reset()
            for event in response.events:
                run = runs.get(event.run_ref)
                if run is None:
                    # Cancelled or answered runs' later events are not needed; run_ref 0 is none.
                    if event.HasField("draining"):
                        self._drain()
                    continue
                kind = event.WhichOneof("event")
                if kind == "accepted":
                    run.run_id = event.accepted.run_id
                    if run.answer_mode and _answers_on_accept(run.answer_mode, event.accepted):
                        if not run.result.done():
                            run.result.set_result(event.accepted)
                elif kind in _LAST_EVENTS:
                    del runs[event.run_ref]
                    if kind == "outcome" and event.outcome.reason == _DRAINING:
                        self._drain()  # the start raced the `draining` event, or there was none
                    if not run.result.done():
                        run.result.set_result(getattr(event, kind))

    def _drain(self) -> None:
        if not self._draining:
            log.info("runner %s is draining; new runs go to other runners", self.name)
            self._draining = True
            self.on_change()

    def _note_failure(self, what: str) -> None:
        if what != self._last_error:
            log.warning("RunFlow stream to the runner %s down (%s); retrying", self.name, what)
            self._last_error = what


def _answers_on_accept(mode: int, accepted: runner_pb2.RunAccepted) -> bool:
    """An async start is answered once it has its status URL, a webhook one once it is queued;
    the run stays open until the caller's `cancel` (202). An async start accepted without a
    token (by a runner that predates answer modes) is waited for as usual."""
    if not accepted.run_id:
        return False  # not started: `replay` or `outcome` follows
    return mode == _WEBHOOK or (mode == _ASYNC and bool(accepted.status_token))


def _nothing() -> None:
    pass


def split_batch(batch: runner_pb2.RunFlowRequest, limit: int) -> list[runner_pb2.RunFlowRequest]:
    """`batch`'s events, in order, in messages of at most `limit` bytes (a larger event alone)."""
    parts: list[runner_pb2.RunFlowRequest] = []
    part = runner_pb2.RunFlowRequest()
    size = 0
    for event in batch.events:
        n = event.ByteSize()
        n += 1 + _varint_size(n)  # the field's tag and length prefix
        if size and size + n > limit:
            parts.append(part)
            part = runner_pb2.RunFlowRequest()
            size = 0
        part.events.append(event)
        size += n
    parts.append(part)
    return parts


def _varint_size(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _fail_open_runs(stream: _Stream) -> None:
    runs = list(stream.runs.values())
    stream.runs.clear()
    for run in runs:
        if not run.result.done():
            run.result.set_exception(RunnerUnavailable() if run.run_id is None else RunLost())
