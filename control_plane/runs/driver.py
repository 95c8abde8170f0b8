"""Executing runs: load → execute (before the callback, then the tail) → record, durably.

The rules (docs/runs.md; README, "Runs: what is kept"):
- a run id reaches the caller only once the run's record is durable (`accepted` is sent after
  the first commit), and the callback only once the checkpoint of everything after it is;
- every shape after the callback is checkpointed before the next one runs; a runner that dies
  leaves its runs to the next one that claims them (queue.py), which resumes the tail from the
  last checkpoint (at-least-once per shape) and fails runs whose caller was waiting (run_lost);
- a shape first runs inline on the loop within a slice of INLINE_STEPS expression steps; one that
  needs more runs in an engine worker process (workers.py), tails at a lower priority;
- budgets bound what any run may cost; a company may have only so many runs in flight here
  (its runs_in_flight quota, cached: runs/limits.py);
- a run whose answer is kept (an Idempotency-Key, an async or webhook answer, a detach) claims
  its kept_answer row in its first commit, before the flow runs, and every later commit that
  answers carries the answer (runs/answers.py, docs/answers.md). Other runs pay nothing for it.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
import time
from collections.abc import Callable

from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import runner_service_pb2 as rs
from control_plane.domain import quotas
from control_plane.domain.ids import new_id
from control_plane.domain.validation import is_id
from control_plane.engine import (
    CallbackResponse,
    RunInput,
    RunState,
    ShapeFailed,
    begin_wait,
    end_wait,
    finished,
    is_async,
    run_async_shape,
    run_shape,
    wait_seconds,
)
from control_plane.engine.budgets import DeadlinePassed, Meter, SliceExhausted
from control_plane.engine.definition import DefinitionError
from control_plane.engine.run import StartChild
from control_plane.grpckit.servicer import Runtime
from control_plane.outbound.client import Outbound
from control_plane.runs import answers, checkpoint, children, queue
from control_plane.runs.active import ENDED, ActiveRun, Nobody, RunListener, caller_timed_out
from control_plane.runs.journal import Journal, Task
from control_plane.runs.lifecycle import BUDGET_REASONS, LANE_CALLER, LANE_TAIL, RunRecord
from control_plane.runs.limits import RunLimits
from control_plane.runs.versions import LoadedVersion, VersionCache
from control_plane.runs.workers import EngineWorkers, WorkerCrashed
from control_plane.store.clock import epoch_seconds, utcnow

log = logging.getLogger(__name__)

#: Expression steps a shape may spend inline on the event loop before it moves to a worker: about
#: 1-2 ms of evaluation (engine/budgets.py has the per-step cost).
INLINE_STEPS = 2_000
#: Requests and buckets larger than this are never parsed or encoded inline (JSON costs ~5 ms
#: per MiB, and neither is metered in steps).
INLINE_BYTES = 64 * 1024
#: Runs a runner claims at once from the queue.
CLAIM_BATCH = 50
#: Given-up runs whose leases renewal leaves out at once: a bound on the renewal's parameters
#: (SQLite allows 32,766) if the database fails for long. Past it, a run given up stays leased.
MAX_GIVEN_UP = 10_000


class RunDriver:
    def __init__(
        self, runtime: Runtime, journal: Journal, owner: str, outbound: Outbound | None = None
    ) -> None:
        self.rt = runtime
        #: Connector shapes call through this (one pool per runner); None: they fail.
        self.outbound = outbound
        self.settings = runtime.settings
        self.journal = journal
        self.owner = owner
        self.versions = VersionCache()
        self.limits = RunLimits()
        self.workers = EngineWorkers(
            runtime.settings.engine_workers, runtime.settings.engine_worker_memory_mb
        )
        #: Runs in flight on this runner per company, by lane (callers waiting, tails).
        self.inflight: dict[int, collections.Counter[str]] = {
            LANE_CALLER: collections.Counter(),
            LANE_TAIL: collections.Counter(),
        }
        self.runs: set[ActiveRun] = set()
        #: Ids of runs this runner stopped working on without recording an end, while their
        #: task row is still its own: lease renewal leaves them out, so their lease lapses and
        #: the queue takes them up again, counting an attempt (see _give_up).
        self.given_up: set[str] = set()
        self.draining = False
        self.on_drain: list[Callable[[], None]] = []
        self._maintenance: asyncio.Task | None = None

    # -- lifecycle of the driver ------------------------------------------------------------

    def start(self) -> None:
        self._maintenance = asyncio.create_task(self._maintain(), name="run-queue")

    async def drain(self) -> None:
        """Stop taking runs, let runs before their callback finish within the grace, hand the
        rest back (their checkpoints are written), and stop."""
        self.draining = True
        for notify in self.on_drain:
            notify()
        await _cancel(self._maintenance)
        deadline = time.monotonic() + self.settings.drain_grace_s
        # Polled: runs leave the caller lane from many places, and this happens once per process.
        while any(run.lane == LANE_CALLER for run in self.runs):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        runs = list(self.runs)
        for run in runs:
            if run.task is not None:
                run.task.cancel()
        await asyncio.gather(*(run.task for run in runs if run.task), return_exceptions=True)
        for run in runs:
            # Callers still waiting get 502 run_lost when the stream closes: record exactly that.
            if run.lane == LANE_CALLER and run.durable and run.record and not run.record.final:
                run.record.keep_progress(run.progress)
                ending = (r.RUN_STATUS_FAILED, r.RUN_REASON_RUN_LOST, "the runner shut down")
                run.record.end(*ending)
                self.journal.save(run.record, answer=answers.outcome_answer(*ending))
                run.listener.outcome(r.RUN_STATUS_FAILED, r.RUN_REASON_RUN_LOST, "shut down")
        with contextlib.suppress(Exception):
            await self.journal.flush_all()
        try:
            released = await self.rt.db(lambda: queue.release(self.owner))
            log.info("drained: handed %d unfinished runs back to the queue", released)
        except Exception:
            log.exception("cannot hand runs back; they are taken up when their lease expires")
        await self.workers.close()

    # -- new runs -----------------------------------------------------------------------------

    def submit(self, start: rs.RunStart, listener: RunListener) -> ActiveRun:
        run = ActiveRun(listener, self.journal)
        run.task = asyncio.create_task(self._start(run, start))
        return run

    async def _start(self, run: ActiveRun, start: rs.RunStart) -> None:
        try:
            await self._start_run(run, start)
        finally:
            # Over: nothing more goes to its stream. Dropping the listener also breaks the
            # run <-> stream-run cycle, so a run's objects are freed at once by reference
            # counting instead of piling up for the cyclic GC, whose collections stalled the
            # loop for milliseconds (docs/design.md §3, "Garbage").
            run.listener = ENDED

    async def _start_run(self, run: ActiveRun, start: rs.RunStart) -> None:
        if self.draining:
            return _refuse(run, r.RUN_REASON_RUNNER_DRAINING, "the runner is shutting down")
        if why := _malformed(start):
            return _refuse(run, r.RUN_REASON_VERSION_NOT_FOUND, why)
        try:
            version = self.versions.get(start.version_id) or await self.rt.db(
                lambda: self.versions.load(start.version_id)
            )
        except DefinitionError as exc:
            # Saved under older rules that it no longer meets: it cannot run.
            return _refuse(run, r.RUN_REASON_FLOW_FAILED, f"the flow version is invalid: {exc}")
        except Exception:
            log.exception("cannot load flow version %s", start.version_id)
            return _refuse(run, r.RUN_REASON_INTERNAL, "the runner cannot load the flow version")
        if version is None:
            return _refuse(run, r.RUN_REASON_VERSION_NOT_FOUND, "flow version not found")
        company = version.company_id
        # The cached quota without a coroutine: this is every run's path.
        limit = self.limits.get(company)
        if limit is None:
            limit = await self._runs_in_flight(company)
        # No await from here to _enter: the count checked is the count entered.
        if (
            self.inflight[LANE_CALLER][company] >= limit
            or self.inflight[LANE_TAIL][company] >= self.settings.company_tails_in_flight
        ):
            return _refuse(run, r.RUN_REASON_COMPANY_BUSY, "too many runs in flight")
        # A webhook run has no caller waiting: it is a tail from its start.
        run.lane = LANE_TAIL if start.answer_mode == rs.ANSWER_MODE_WEBHOOK else LANE_CALLER
        self._enter(company, run.lane)
        self.runs.add(run)
        try:
            await self._run_new(run, version, start)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("run crashed in the runner")
            await self._crashed(run)
        finally:
            self.runs.discard(run)
            self._leave(company, run.lane)

    async def _runs_in_flight(self, company: str) -> int:
        """The company's runs_in_flight quota, from the cache (runs/limits.py) or the database."""
        limit = self.limits.get(company)
        if limit is not None:
            return limit
        try:
            return await self.rt.db(lambda: self.limits.load(company))
        except Exception:
            log.exception("cannot read the quotas of company %s; using the default", company)
            return quotas.configured().runs_in_flight

    def _enter(self, company: str, lane: int) -> None:
        self.inflight[lane][company] += 1

    def _leave(self, company: str, lane: int) -> None:
        counts = self.inflight[lane]
        counts[company] -= 1
        if not counts[company]:
            del counts[company]

    async def _crashed(self, run: ActiveRun) -> None:
        """A bug or a failing database: end the run if it can be recorded, and in any case
        answer the caller now rather than at its timeout."""
        record = run.record
        if record is not None and not record.final and run.durable:
            try:
                return await self._finish(
                    run, r.RUN_STATUS_FAILED, r.RUN_REASON_INTERNAL, "runner error"
                )
            except Exception:
                log.exception("cannot record the end of run %s", record.id)
                self._give_up(record)
        if not run.callback_sent:
            if not run.accepted_sent:
                run.listener.accepted("")  # no record exists: the caller gets no run id
            run.listener.outcome(r.RUN_STATUS_FAILED, r.RUN_REASON_INTERNAL, "runner error")

    async def _run_new(self, run: ActiveRun, version: LoadedVersion, start: rs.RunStart) -> None:
        record = RunRecord(
            id=new_id(),
            company_id=version.company_id,
            flow_id=version.flow_id,
            version_id=version.id,
            environment_id=start.environment_id,
            callback_id=start.callback_id,
            started_at=utcnow(),
        )
        if run.caller_status:
            record.caller_answered(run.caller_status)
        run.record, run.version = record, version
        run.input = RunInput(
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
        run.state = RunState(run.input, self._meter(record), self.outbound)
        run.state.start_child = self._child_starter(record, run.input)
        run.content_type = start.content_type
        if _keeps_answer(start) and not await self._claim(run, start):
            return  # a repeat of a key, or refused: no run
        if run.lane == LANE_TAIL:  # webhook mode: nobody waits, and the run is checkpointed
            return await self._guarded(run, self._tail)
        timer = asyncio.get_running_loop().call_later(
            (start.timeout_ms or 30_000) / 1000, caller_timed_out, run
        )
        try:
            await self._guarded(run, self._before_callback)
            if not record.final:
                self._leave(record.company_id, LANE_CALLER)
                run.lane = LANE_TAIL
                self._enter(record.company_id, LANE_TAIL)
                await self._guarded(run, self._tail)
        finally:
            timer.cancel()

    async def _claim(self, run: ActiveRun, start: rs.RunStart) -> bool:
        """Claims the start's key and its kept answer, and makes the run durable, in one
        transaction (answers.claim). True: the run is new and accepted; False: it was answered
        without a run (a repeat of the key, a mismatch, the quota)."""
        record, mode = run.record, start.answer_mode
        queued = mode in (rs.ANSWER_MODE_ASYNC, rs.ANSWER_MODE_WEBHOOK)
        secret = answers.new_secret() if mode == rs.ANSWER_MODE_ASYNC else None
        status_token = answers.token(record.id, secret) if secret else ""
        if queued:
            record.caller_answered(202)  # the edge answers 202 once it has `accepted`
        if mode == rs.ANSWER_MODE_WEBHOOK:
            # The request itself is kept, so another runner can start the run over.
            task = Task(LANE_TAIL, checkpoint.dump(run.input, run.progress, with_body=True))
        else:
            task = Task(LANE_CALLER, "")
        # A webhook run without a key has nothing to keep: it is only made durable.
        record.keeps_answer = keep = bool(start.idempotency_key) or secret is not None
        write_run = self.journal.writer(record, task)
        run.claiming = True  # a detach meanwhile waits: the run is not durable, nor may be
        try:
            claim = await self.rt.db(
                lambda: answers.claim(
                    write_run,
                    company_id=record.company_id,
                    callback_id=start.callback_id,
                    run_id=record.id,
                    key=start.idempotency_key,
                    fingerprint=start.request_fingerprint,
                    secret=secret,
                    key_answer=answers.queued(status_token) if queued else None,
                    keep=keep,
                    retention_s=self.settings.answer_retention_s,
                )
            )
        finally:
            run.claiming = False
        if claim.kind == "replay":
            run.listener.accepted("")
            run.listener.replay(claim.run_id, claim.answer)
            return False
        if claim.kind == "mismatch":
            _refuse(
                run,
                r.RUN_REASON_IDEMPOTENCY_MISMATCH,
                "the Idempotency-Key was already used with a different request",
            )
            return False
        if claim.kind == "quota":
            _refuse(run, r.RUN_REASON_ANSWERS_QUOTA, "the company's answer_bytes quota is used up")
            return False
        record.has_task = run.durable = True
        run.status_token = status_token
        self._send_accepted(run)
        return True

    async def detach(self, run: ActiveRun) -> str:
        """RunDetach: keeps the answer of a run whose caller stops waiting for it; returns the
        status token, or "" when it cannot (the answer_bytes quota, the database; the caller
        keeps waiting). The stream holds back the run's callback and outcome meanwhile
        (runner/service.py) and sends `detached` instead if this succeeds, recording 202 as
        what the caller got (ActiveRun.caller_answered)."""
        async with asyncio.timeout(5):  # the record exists once the version is loaded
            while run.record is None or run.claiming:
                if run.task is None or run.task.done():
                    return ""
                await asyncio.sleep(0.01)
        if run.task is not None and run.task.done() and not run.durable:
            return ""  # answered without a run (a repeat of a key, refused)
        record = run.record
        record.keeps_answer = True  # from now on, the run's answering commit carries its answer
        try:
            if not run.durable:
                task = None if record.final else Task(LANE_CALLER, "")
                await self.journal.commit(record, task)
                run.durable = True
                self._send_accepted(run)  # `accepted` always comes first
            answer = self._stored_answer(run)
            status_token = await self.rt.db(
                lambda: answers.detach(
                    run_id=record.id,
                    company_id=record.company_id,
                    callback_id=record.callback_id,
                    answer=answer,
                    retention_s=self.settings.answer_retention_s,
                )
            )
        except Exception:
            log.exception("cannot keep the answer of run %s", record.id)
            return ""
        if status_token is None:
            return ""
        # An answer given while the row was being written may have found no row to fill: fill
        # it now (filling never overwrites).
        late = self._stored_answer(run)
        if late is not None and answer is None:
            self.journal.save(record, urgent=False, answer=late)
        return status_token

    def _stored_answer(self, run: ActiveRun) -> bytes | None:
        """The run's answer as kept (a serialized StoredAnswer), once it has one."""
        if run.answered_with is None:
            return None
        kind, what = run.answered_with
        if kind == "callback":
            return answers.callback_answer(what.status, what.headers, what.body, run.content_type)
        return answers.outcome_answer(*what)

    async def _before_callback(self, run: ActiveRun) -> None:
        definition, progress = run.version.definition, run.progress
        while not finished(definition, progress):
            if run.abandoned:
                return await self._abandon(run)
            if wait_seconds(definition, progress) is not None:
                self._materialise(run)
                await self._make_durable(run)
                await self._sleep(run, begin_wait(definition, progress))
                end_wait(definition, progress, run.state)
                continue
            response = await self._shape(run)
            if response is not None:
                return await self._answer(run, response)
        await self._finish(
            run,
            r.RUN_STATUS_SUCCEEDED,
            r.RUN_REASON_NO_CALLBACK,
            "the flow finished without reaching a callback shape",
        )

    async def _answer(self, run: ActiveRun, response: CallbackResponse) -> None:
        """The first callback: make the rest durable, then answer."""
        record, progress = run.record, run.progress
        if run.abandoned:
            return await self._abandon(run)
        done = finished(run.version.definition, progress)
        task = None if done else Task(LANE_TAIL, self._state_text(run))
        record.responded(response.status)
        record.keep_progress(progress)
        if done:
            record.end(r.RUN_STATUS_SUCCEEDED)
        run.answered_with = ("callback", response)
        answer = self._stored_answer(run) if record.keeps_answer else None
        await self.journal.commit(record, task, answer=answer)
        run.durable = True
        self._send_accepted(run)
        run.listener.callback(response)
        run.callback_sent = True
        if done:
            run.listener.outcome(r.RUN_STATUS_SUCCEEDED, r.RUN_REASON_UNSPECIFIED, "")

    async def _tail(self, run: ActiveRun) -> None:
        definition, progress, record = run.version.definition, run.progress, run.record
        while not finished(definition, progress):
            if wait_seconds(definition, progress) is not None:
                self._materialise(run)
                fresh = not progress.wake_at
                left = begin_wait(definition, progress)
                if fresh:  # so a runner resuming it waits only for what is left
                    await self._checkpoint(run)
                await self._sleep(run, left)
                end_wait(definition, progress, run.state)
            else:
                await self._shape(run)
            await self._checkpoint(run)
        record.keep_progress(progress)
        record.end(r.RUN_STATUS_SUCCEEDED)
        await self.journal.commit(record, urgent=False)  # nobody waits for a tail
        run.listener.outcome(r.RUN_STATUS_SUCCEEDED, r.RUN_REASON_UNSPECIFIED, "")

    async def _guarded(self, run: ActiveRun, phase) -> None:
        """Runs a phase; a failure of the flow or a budget ends the run with its reason."""
        try:
            await phase(run)
        except ShapeFailed as exc:
            reason = BUDGET_REASONS.get(exc.budget, r.RUN_REASON_FLOW_FAILED)
            await self._finish(run, r.RUN_STATUS_FAILED, reason, str(exc))
        except (DeadlinePassed, TimeoutError):
            await self._finish(
                run,
                r.RUN_STATUS_TIMED_OUT,
                r.RUN_REASON_TIMED_OUT,
                f"the run exceeded its maximum duration of {self.settings.max_run_s:g} s",
            )
        except checkpoint.CheckpointError as exc:
            await self._finish(run, r.RUN_STATUS_FAILED, r.RUN_REASON_FLOW_FAILED, str(exc))
        except WorkerCrashed:
            await self._finish(
                run,
                r.RUN_STATUS_FAILED,
                r.RUN_REASON_CRASHED,
                f"the run's shape killed its engine worker {run.crashes} times",
            )

    # -- steps ---------------------------------------------------------------------------------

    async def _shape(self, run: ActiveRun) -> CallbackResponse | None:
        definition, progress, state = run.version.definition, run.progress, run.state
        if is_async(definition, progress):
            self._materialise(run)
            if run.lane == LANE_CALLER:
                await self._make_durable(run)  # it may take a while: the caller has the run id
            return await run_async_shape(definition, progress, state)
        small = len(run.input.body) <= INLINE_BYTES and state.bucket_bytes <= INLINE_BYTES
        if small and run.remote is None:
            state.meter.open_slice(INLINE_STEPS)
            try:
                return run_shape(definition, progress, state)
            except SliceExhausted:
                pass
            finally:
                state.meter.close_slice()
        if run.lane == LANE_CALLER:
            await self._make_durable(run)  # a long shape: give the caller its run id now
        if run.remote is None:
            run.remote = checkpoint.dump(run.input, progress)  # the progress moves to workers
            progress.bucket, progress.vars, progress.saved = [], {}, []
        version = run.version
        while True:
            try:
                run.remote, response, state.bucket_bytes = await self.workers.run_shape(
                    run.lane,
                    version.id,
                    version.source,
                    run.input,
                    progress,
                    run.remote,
                    state.meter.budgets,
                    state.meter.deadline,
                )
                break
            except WorkerCrashed:
                run.crashes += 1
                if run.crashes >= self.settings.run_max_attempts:
                    raise
                log.warning("an engine worker died running run %s; trying again", run.record.id)
        if state.bucket_bytes <= INLINE_BYTES:
            self._materialise(run)  # small again: back to the loop
        return response

    def _materialise(self, run: ActiveRun) -> None:
        """Brings a progress that lives in the workers (as checkpoint text) back to objects."""
        if run.remote is not None:
            _, loaded = checkpoint.load(run.remote)
            run.progress.bucket, run.progress.vars = loaded.bucket, loaded.vars
            run.progress.saved = loaded.saved
            run.remote = None

    def _state_text(self, run: ActiveRun) -> str:
        """The run's checkpoint: the workers' text when the progress lives there."""
        if run.remote is not None:
            return run.remote
        return checkpoint.dump(run.input, run.progress)

    async def _sleep(self, run: ActiveRun, seconds: float) -> None:
        left = self._deadline(run.record) - time.time()
        if seconds > left:
            await asyncio.sleep(max(0.0, left))
            raise TimeoutError
        await asyncio.sleep(seconds)

    async def _make_durable(self, run: ActiveRun) -> None:
        if not run.durable:
            await self.journal.commit(run.record, Task(LANE_CALLER, ""))
            run.durable = True
        self._send_accepted(run)

    async def _checkpoint(self, run: ActiveRun) -> None:
        run.record.keep_progress(run.progress)
        await self.journal.commit(run.record, Task(LANE_TAIL, self._state_text(run)), urgent=False)

    async def _finish(self, run: ActiveRun, status: int, reason: int, error: str) -> None:
        record = run.record
        record.keep_progress(run.progress)
        record.end(status, reason, error)
        if run.abandoned and not run.durable:
            return  # nobody has its id: the edge may be running the request elsewhere
        answer = None
        if not run.callback_sent:  # this ending is the run's answer
            run.answered_with = ("outcome", (status, reason, error))
            answer = self._stored_answer(run) if record.keeps_answer else None
        await self.journal.commit(record, urgent=run.lane == LANE_CALLER, answer=answer)
        run.durable = True
        self._send_accepted(run)
        run.listener.outcome(status, reason, error)

    async def _abandon(self, run: ActiveRun) -> None:
        if run.durable:
            await self._finish(
                run, r.RUN_STATUS_FAILED, r.RUN_REASON_RUN_LOST, "the edge's stream broke"
            )

    def _send_accepted(self, run: ActiveRun) -> None:
        if not run.accepted_sent:
            run.accepted_sent = True
            run.listener.accepted(run.record.id, run.status_token)

    def _child_starter(self, record: RunRecord, run_input: RunInput) -> StartChild:
        """The run's RunState.start_child: queues a run_flow shape's child (runs/children.py).
        It holds the record and input, not the run, whose state holds it: no reference cycle."""

        async def start_child(shape_id: str, flow_id: str, bucket: list, variables: dict) -> str:
            return await self.rt.db(
                lambda: children.start(record, run_input, shape_id, flow_id, bucket, variables)
            )

        return start_child

    def _meter(self, record: RunRecord) -> Meter:
        left = self._deadline(record) - time.time()
        return Meter(self.settings.budgets, deadline=time.monotonic() + left)

    def _deadline(self, record: RunRecord) -> float:
        """The run's wall-clock end (epoch seconds): its start plus the maximum run time."""
        return epoch_seconds(record.started_at) + self.settings.max_run_s

    # -- the queue: resume what others left -------------------------------------------------

    def _give_up(self, record: RunRecord) -> None:
        """Stops renewing the lease of a run that is no longer worked on here and has no end
        recorded. Renewal covers every task row this runner owns, so without this the run
        would stay leased, and stuck, for as long as the runner lives. The queue takes it up
        again once the lease lapses; `run_max_attempts` bounds how often."""
        if not record.has_task:
            return
        if len(self.given_up) < MAX_GIVEN_UP:
            self.given_up.add(record.id)
        else:
            log.error("run %s stays leased until this runner stops: too many given up", record.id)

    async def _leases_to_skip(self) -> list[str]:
        """The given-up runs whose task row is still this runner's. Kept until then, not for a
        time: renewal would revive a lapsed lease that nobody has claimed yet."""
        if self.given_up:
            ids = list(self.given_up)
            mine = await self.rt.db(lambda: queue.owned(self.owner, ids))
            self.given_up.intersection_update(mine)
        return list(self.given_up)

    async def _maintain(self) -> None:
        interval = min(1.0, self.settings.run_lease_s / 3)
        while True:
            try:
                skip = await self._leases_to_skip()
                await self.rt.db(
                    lambda skip=skip: queue.renew(self.owner, self.settings.run_lease_s, skip)
                )
                limit = min(CLAIM_BATCH, max(0, 10 * CLAIM_BATCH - len(self.runs)))
                if limit:
                    claimed = await self.rt.db(
                        lambda limit=limit: queue.claim(
                            self.owner, self.settings.run_lease_s, limit
                        )
                    )
                    for item in claimed:
                        self._resume(item)
            except Exception:
                log.exception("run queue maintenance failed; retrying")
            await asyncio.sleep(interval)

    def _resume(self, claimed: queue.Claimed) -> None:
        self.given_up.discard(claimed.record.id)  # claimed here again: renewed from now on
        run = ActiveRun(Nobody(), self.journal)
        run.record, run.durable, run.accepted_sent, run.callback_sent = (
            claimed.record,
            True,
            True,
            True,
        )
        run.task = asyncio.create_task(self._resume_run(run, claimed))

    async def _resume_run(self, run: ActiveRun, claimed: queue.Claimed) -> None:
        record = run.record
        company = record.company_id
        run.lane = LANE_TAIL
        self._enter(company, LANE_TAIL)
        self.runs.add(run)
        try:
            if claimed.lane == LANE_CALLER:
                # Its caller was answered 502 run_lost when the runner's stream broke.
                ending = (
                    r.RUN_STATUS_FAILED,
                    r.RUN_REASON_RUN_LOST,
                    "the runner working on it stopped before the caller was answered",
                )
                record.end(*ending)
                answer = answers.outcome_answer(*ending)
                return await self.journal.commit(record, urgent=False, answer=answer)
            if record.attempts > self.settings.run_max_attempts:
                record.end(
                    r.RUN_STATUS_FAILED,
                    r.RUN_REASON_CRASHED,
                    f"the run was taken up {record.attempts - 1} times after its runner stopped; "
                    "not tried again",
                )
                return await self.journal.commit(record, urgent=False)
            version = self.versions.get(record.version_id) or await self.rt.db(
                lambda: self.versions.load(record.version_id)
            )
            if version is None:
                record.end(r.RUN_STATUS_FAILED, r.RUN_REASON_VERSION_NOT_FOUND, "version deleted")
                return await self.journal.commit(record, urgent=False)
            run.version = version
            run.input, run.progress = checkpoint.load(claimed.state)
            run.state = RunState(run.input, self._meter(record), self.outbound)
            run.state.start_child = self._child_starter(record, run.input)
            log.info("resuming run %s at shape %d", record.id, run.progress.position)
            await self._guarded(run, self._tail)
        except asyncio.CancelledError:
            raise
        except Exception:
            # A tail is resumed from its last checkpoint, so it is tried again rather than
            # failed: a database that failed once (PostgreSQL broke a deadlock) need not end it.
            log.exception("resuming run %s failed; it goes back to the queue", record.id)
            self._give_up(record)
        finally:
            self.runs.discard(run)
            self._leave(company, LANE_TAIL)


#: RunStart.idempotency_key: 1-255 visible ASCII characters (the proto's contract).
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")


def _malformed(start: rs.RunStart) -> str:
    """Why a start names no run that can be recorded ("" if it can). Its ids are stored with the
    run as sent; PostgreSQL refuses NUL and over-long ids, and that would fail the commit."""
    for name in ("callback_id", "environment_id"):
        value = getattr(start, name)
        if value and not is_id(value):
            return f"{name} is not an id"
    # The edge checks these; the runner does not store what it was not promised.
    if start.idempotency_key and not _KEY_RE.fullmatch(start.idempotency_key):
        return "idempotency_key must be 1-255 visible ASCII characters"
    if len(start.request_fingerprint) > 64 or len(start.content_type) > 255:
        return "request_fingerprint or content_type is too long"
    if _keeps_answer(start) and not start.callback_id:
        return "a kept answer needs a callback_id"
    return ""


def _keeps_answer(start: rs.RunStart) -> bool:
    """Whether a start is claimed before it runs: it has a key, or its caller gets 202."""
    return bool(start.idempotency_key) or start.answer_mode in (
        rs.ANSWER_MODE_ASYNC,
        rs.ANSWER_MODE_WEBHOOK,
    )


def _refuse(run: ActiveRun, reason: int, text: str) -> None:
    run.listener.accepted("")
    run.listener.outcome(r.RUN_STATUS_FAILED, reason, text)


async def _cancel(task: asyncio.Task | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
