"""RunnerService.RunFlow: many runs over one stream, events packed into few messages.

The reader turns each `start` into a run task; every event a run produces goes into the
stream's outbox, and one writer sends whatever the outbox holds as a single message. Under load
that packs many runs' events into each HTTP/2 frame, which is what keeps the edge's per-request
CPU low (DESIGN §3, RunFlow).
"""

from __future__ import annotations

import asyncio
import logging

from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import runner_service_pb2 as rs
from boomerang.v1 import runner_service_pb2_grpc as rs_grpc
from control_plane.domain.ids import new_id
from control_plane.engine import CallbackResponse, RunInput, ShapeLog, execute
from control_plane.grpckit.servicer import Runtime, Servicer
from control_plane.runner.records import RunRecord, RunRecorder
from control_plane.runner.versions import VersionCache
from control_plane.store.clock import utcnow

log = logging.getLogger(__name__)

OUTCOME_STATUS = {
    "succeeded": r.RUN_STATUS_SUCCEEDED,
    "failed": r.RUN_STATUS_FAILED,
    "timed_out": r.RUN_STATUS_TIMED_OUT,
}


class _Outbox:
    """Events waiting to be written on one stream; `drain` takes them all at once."""

    def __init__(self) -> None:
        self.events: list[rs.RunFlowServerEvent] = []
        self.ready = asyncio.Event()
        self.cancelled: set[int] = set()

    def put(self, event: rs.RunFlowServerEvent) -> None:
        if event.run_ref in self.cancelled:
            if event.HasField("outcome"):  # the run's last event: forget the ref
                self.cancelled.discard(event.run_ref)
            return
        self.events.append(event)
        self.ready.set()

    def drain(self) -> list[rs.RunFlowServerEvent]:
        events, self.events = self.events, []
        self.ready.clear()
        return events


class RunnerServicer(Servicer, rs_grpc.RunnerServiceServicer):
    def __init__(self, runtime: Runtime, recorder: RunRecorder) -> None:
        super().__init__(runtime)
        self.recorder = recorder
        self.versions = VersionCache()
        # Runs outlive the stream that started them (the flow goes on after the response).
        self.runs: set[asyncio.Task] = set()

    async def RunFlow(self, request_iterator, context):
        await self.call(context, lambda p: None, admin=True)
        outbox = _Outbox()
        reader = asyncio.create_task(self._read(request_iterator, outbox), name="runflow-reader")
        try:
            while True:
                ready = asyncio.ensure_future(outbox.ready.wait())
                done, _ = await asyncio.wait({ready, reader}, return_when=asyncio.FIRST_COMPLETED)
                if ready not in done:
                    ready.cancel()
                events = outbox.drain()
                if events:
                    await context.write(rs.RunFlowResponse(events=events))
                if reader in done:
                    reader.result()
                    return  # the edge closed its side; runs carry on and are recorded
        finally:
            reader.cancel()

    async def _read(self, request_iterator, outbox: _Outbox) -> None:
        async for request in request_iterator:
            for event in request.events:
                if event.HasField("start"):
                    task = asyncio.create_task(self._run(event.run_ref, event.start, outbox))
                    self.runs.add(task)
                    task.add_done_callback(self.runs.discard)
                elif event.HasField("cancel"):
                    # The caller is gone: stop talking about this run; the flow still finishes.
                    outbox.cancelled.add(event.run_ref)

    async def _run(self, ref: int, start: rs.RunStart, outbox: _Outbox) -> None:
        version = self.versions.get(start.version_id)
        if version is None:
            version = await self.rt.db(lambda: self.versions.load(start.version_id))
        if version is None:
            outbox.put(rs.RunFlowServerEvent(run_ref=ref, accepted=rs.RunAccepted()))
            outbox.put(_outcome(ref, "failed", "version_not_found", "flow version not found"))
            return
        record = RunRecord(
            id=new_id(),
            company_id=version.company_id,
            flow_id=version.flow_id,
            version_id=version.id,
            environment_id=start.environment_id,
            callback_id=start.callback_id,
            started_at=utcnow(),
        )
        self.recorder.save(record)
        outbox.put(rs.RunFlowServerEvent(run_ref=ref, accepted=rs.RunAccepted(run_id=record.id)))

        def on_callback(response: CallbackResponse) -> None:
            if record.response_status == 0:  # the caller is still waiting
                record.status, record.responded_at = "responded", utcnow()
                record.response_status = response.status
                self.recorder.save(record)
            outbox.put(
                rs.RunFlowServerEvent(
                    run_ref=ref,
                    callback=rs.RunCallback(
                        status_code=response.status,
                        headers=[rs.HttpHeader(name=n, value=v) for n, v in response.headers],
                        body=response.body,
                    ),
                )
            )

        def caller_gave_up() -> None:
            if record.response_status == 0:
                record.response_status = 504
                self.recorder.save(record)

        deadline = asyncio.get_running_loop().call_later(
            (start.timeout_ms or 30_000) / 1000, caller_gave_up
        )
        run_input = RunInput(
            run_id=record.id,
            company=start.company,
            flow_id=version.flow_id,
            callback_id=start.callback_id,
            environment_id=start.environment_id,
            method=start.method,
            headers=tuple((h.name, h.value) for h in start.headers),
            query=tuple((q.name, q.value) for q in start.query),
            body=start.body,
        )
        try:
            result = await asyncio.wait_for(
                execute(version.definition, run_input, on_callback), self.rt.settings.max_run_s
            )
            status, error = result.status, result.error
            shapes = [_shape_row(s) for s in result.shapes]
            reached = result.callback_reached
        except TimeoutError:
            status, error, shapes, reached = (
                "timed_out",
                "the run exceeded its maximum duration",
                [],
                False,
            )
        except Exception:
            log.exception("run %s crashed", record.id)
            status, error, shapes, reached = "failed", "internal error in the runner", [], False
        finally:
            deadline.cancel()
        reason = {"failed": "flow_failed", "timed_out": "timed_out"}.get(status, "")
        if status == "succeeded" and not reached:
            reason, error = "no_callback", "the flow finished without reaching a callback shape"
        record.status, record.error, record.shapes = status, error, shapes
        record.ended_at = utcnow()
        if record.response_status == 0:
            record.response_status = 502  # failed or no callback: the caller got a 502
        self.recorder.save(record)
        outbox.put(_outcome(ref, status, reason, error))


def _shape_row(s: ShapeLog) -> dict:
    # By hand: dataclasses.asdict deep-copies and cost 26 µs a run on the event loop.
    return {
        "shape_id": s.shape_id,
        "shape_type": s.shape_type,
        "status": s.status,
        "duration_us": s.duration_us,
        "items_in": s.items_in,
        "items_out": s.items_out,
        "error": s.error,
    }


def _outcome(ref: int, status: str, reason: str, error: str) -> rs.RunFlowServerEvent:
    return rs.RunFlowServerEvent(
        run_ref=ref,
        outcome=rs.RunOutcome(status=OUTCOME_STATUS[status], reason=reason, error=error),
    )
