"""Engine worker processes: where shapes too heavy for the event loop's inline slice run.

Why processes: engine threads shared the GIL with the loop that serves the API and the streams.
Measured with bench/priority.py, a backlog of heavy tails on two threads took a light caller's
p99 from 7.7 ms to 320 ms: every handoff of a light run (stream read, commit, answer) waited for
the GIL behind the engine. A worker process competes only for a core, and the operating system's
scheduler, unlike the GIL, honours priority: tails run in workers at a lower priority (nice 10),
so work whose caller waits goes first. Workers also bound memory (RLIMIT_AS), and a worker that
dies takes only its own shape with it: the run is retried, and failed after
`BOOMERANG_RUN_MAX_ATTEMPTS` crashes (a poison run never loops).

While a run's bucket is large, it lives in the workers as the checkpoint's JSON text: each
shape gets the text, and returns the new text, which is also what is committed. So this process
never pickles, parses or encodes a large bucket; only shapes that outgrew their inline slice,
or runs whose request or bucket is over 64 KiB, pay for the trip. Pools are started on first
use, with "spawn": forking a process that runs gRPC's threads is unsafe.
"""

from __future__ import annotations

import asyncio
import ctypes
import json
import logging
import multiprocessing
import os
import resource
import signal
from collections import OrderedDict
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from control_plane.engine import (
    CallbackResponse,
    Definition,
    Progress,
    RunInput,
    RunState,
    ShapeFailed,
    load_definition,
    run_shape,
)
from control_plane.engine.budgets import Budgets, DeadlinePassed, Meter
from control_plane.runs import checkpoint
from control_plane.runs.fair_slots import FairSlots
from control_plane.runs.lifecycle import LANE_CALLER, LANE_TAIL

log = logging.getLogger(__name__)

#: Scheduling priority of tail workers relative to the runner (higher is nicer).
TAIL_NICENESS = 10


class WorkerCrashed(Exception):
    """The worker process running the shape died (killed, out of memory): run it again."""


class EngineWorkers:
    def __init__(self, per_lane: int, memory_mb: int) -> None:
        self.per_lane = per_lane
        self.memory_mb = memory_mb
        self._pools: dict[int, ProcessPoolExecutor] = {}
        #: Per lane: no more shapes handed to the pool than it has workers plus one, taken in
        #: turn by company (fair_slots.py). The one more is the next shape, queued so that a
        #: worker never idles while its slot comes back through the loop: with exactly as many
        #: slots as workers, 4.5 ms shapes took 6-8% longer each on one worker (a scratch
        #: measurement); with one more, as long as with no slots at all.
        self._slots = {lane: FairSlots(per_lane + 1) for lane in (LANE_CALLER, LANE_TAIL)}

    def _pool(self, lane: int) -> ProcessPoolExecutor:
        pool = self._pools.get(lane)
        if pool is None:
            niceness = 0 if lane == LANE_CALLER else TAIL_NICENESS
            pool = self._pools[lane] = ProcessPoolExecutor(
                self.per_lane,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_start_worker,
                initargs=(niceness, self.memory_mb, os.getpid()),
            )
        return pool

    async def run_shape(
        self,
        lane: int,
        version_id: str,
        source: str,
        run_input: RunInput,
        progress: Progress,
        state: str,
        budgets: Budgets,
        deadline: float | None,
    ) -> tuple[str, CallbackResponse | None, int]:
        """Runs the shape at the position in a worker, from `state` (the run's checkpoint).

        Returns the checkpoint after the shape, the caller's response if any and the bucket's
        size. The bucket and variables never come back as objects: only the checkpoint's text,
        which the worker encodes, so this process never pickles or parses a large bucket (it
        did, and that held the GIL the event loop needs). The rest of `progress` (position,
        log, steps) is updated in place; its bucket and variables are left as they were.
        Raises ShapeFailed, DeadlinePassed or WorkerCrashed like run_shape would."""
        job = (version_id, source, _input_fields(run_input), state, budgets, deadline)
        slots = self._slots[lane]
        await slots.acquire(run_input.company)
        pool = self._pool(lane)
        try:
            try:
                future = pool.submit(_work, *job)
            except BaseException:
                slots.release()
                raise
            # The slot comes back when the worker is done with the shape, not when the run stops
            # waiting for it (a cancelled run's shape still occupies its worker to the end).
            future.add_done_callback(_release_soon(asyncio.get_running_loop(), slots))
            result = await asyncio.wrap_future(future)
        except BrokenProcessPool:
            if self._pools.get(lane) is pool:
                del self._pools[lane]  # the next shape starts a new pool
                pool.shutdown(wait=False, cancel_futures=True)
            raise WorkerCrashed from None
        kind = result[0]
        if kind == "deadline":
            progress.steps = result[1]
            raise DeadlinePassed
        progress.set_cursor(result[1])
        if kind == "failed":
            raise ShapeFailed(*result[2:])
        new_state, answer, bucket_bytes = result[2:]
        return new_state, None if answer is None else CallbackResponse(*answer), bucket_bytes

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self._pools.clear()


def _release_soon(loop: asyncio.AbstractEventLoop, slots: FairSlots):
    """A done-callback (run on the pool's thread) that gives the slot back on the loop."""

    def release(_) -> None:
        try:
            loop.call_soon_threadsafe(slots.release)
        except RuntimeError:  # the loop is closed: the runner is stopping, slots go with it
            pass

    return release


def _input_fields(run_input: RunInput) -> tuple:
    return (
        run_input.run_id,
        run_input.company,
        run_input.flow_id,
        run_input.callback_id,
        run_input.environment_id,
        run_input.method,
        run_input.headers,
        run_input.query,
        run_input.body,
    )


# -- in the worker process ----------------------------------------------------------------

#: Parsed definitions by version id (deployed versions never change), most recent last.
_DEFINITIONS: OrderedDict[str, Definition] = OrderedDict()
_MAX_DEFINITIONS = 256


def _start_worker(niceness: int, memory_mb: int, parent: int) -> None:
    # A worker must not outlive its runner: SIGKILL of the runner (a crash, an OOM kill) leaves
    # the worker blocked on its queue forever. Linux delivers SIGKILL to it when its parent
    # dies (prctl PR_SET_PDEATHSIG); if that already happened, leave now.
    _prctl_pdeathsig(signal.SIGKILL)
    if os.getppid() != parent:
        os._exit(0)
    if niceness:
        os.nice(niceness)
    limit = memory_mb << 20
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _prctl_pdeathsig(sig: int) -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the worker only outlives a killed runner
        log.warning("cannot tie engine workers to the runner's life on this system")


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _definition(version_id: str, source: str) -> Definition:
    found = _DEFINITIONS.get(version_id)
    if found is None:
        found = _DEFINITIONS[version_id] = load_definition(json.loads(source))
        while len(_DEFINITIONS) > _MAX_DEFINITIONS:
            _DEFINITIONS.popitem(last=False)
    return found


def _work(
    version_id: str,
    source: str,
    input_fields: tuple,
    state: str,
    budgets: Budgets,
    deadline: float | None,
) -> tuple:
    """One shape, in a worker. Plain tuples back: ShapeFailed does not pickle by its args."""
    definition = _definition(version_id, source)
    run_input = RunInput(*input_fields)
    _, progress = checkpoint.load(state)
    run = RunState(run_input, Meter(budgets, deadline))
    try:
        response = run_shape(definition, progress, run)
    except ShapeFailed as exc:
        return ("failed", progress.cursor(), exc.shape_id, exc.what, exc.budget)
    except DeadlinePassed:
        return ("deadline", progress.steps)
    answer = None if response is None else (response.status, response.headers, response.body)
    new_state = checkpoint.dump(run_input, progress)
    return ("ok", progress.cursor(), new_state, answer, run.bucket_bytes)
