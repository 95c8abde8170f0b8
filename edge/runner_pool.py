"""Several runners behind one object: where a new run goes, and where it goes when that fails.

The edge keeps a RunFlowClient (a stream on a channel of its own) to each runner address. A new
run goes to the runner with the fewest open runs among those taking runs (stream open, not
draining), ties broken round-robin. Fewest-open-runs rather than plain round-robin because the
count is this edge's view of each runner's latency: a runner that is slow or overloaded holds its
runs longer and so gets fewer new ones, while round-robin would keep feeding it an equal share.
The round-robin tie-break spreads light load, where every count is 0, over all runners. It costs
a scan of a handful of runners per request.

Failover: a run that no runner has accepted yet is safe to start again (no run record exists),
so when its stream breaks before `accepted`, or the runner answers RUN_REASON_RUNNER_DRAINING,
it is started on another runner, each runner at most once per request. A run already accepted is
not: its stream breaking answers 502 `run_lost`. With no runner taking runs, a request waits up
to RUNNER_CONNECT_GRACE_S for one (an edge that just started, or a blip) before answering 503.
A run started again elsewhere is detached again there if its caller's detach time has passed.

Status URLs read kept answers with RunnerService.GetRunAnswer on the channel of any runner with a
stream open (every runner reads the same store), trying the next on failure, within one short
deadline: a status URL answers 503 rather than hold its caller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

import grpc

from boomerang.v1 import resources_pb2
from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge.channels import open_channel
from edge.runflow_client import Run, RunFlowClient, RunnerUnavailable, RunResult

log = logging.getLogger(__name__)

#: How long a request waits for a runner to take runs before answering 503.
RUNNER_CONNECT_GRACE_S = 1.0
#: How long a status URL waits for GetRunAnswer, over every runner tried.
RUN_ANSWER_DEADLINE_S = 2.0

_DRAINING = resources_pb2.RUN_REASON_RUNNER_DRAINING
# GetRunAnswer's answers for a token that names nothing (INVALID_ARGUMENT: one the runner finds
# malformed, which the edge's shape check let through).
_NO_ANSWER = frozenset({grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT})


class RunnerPool:
    def __init__(
        self,
        clients: Sequence[RunFlowClient],
        *,
        connect_grace_s: float = RUNNER_CONNECT_GRACE_S,
        channels: Sequence[grpc.aio.Channel] = (),
    ) -> None:
        if not clients:
            raise ValueError("a runner pool needs at least one runner")
        self.clients = tuple(clients)
        self.connect_grace_s = connect_grace_s
        self._channels = tuple(channels)
        self._turn = 0
        # Replaced on every change, so each waiter sees a change made after it began waiting.
        self._changed = asyncio.Event()
        for client in self.clients:
            client.on_change = self._on_change

    @classmethod
    def connect(
        cls,
        targets: Sequence[str],
        *,
        api_key: str,
        channel_options: Sequence[tuple[str, int]],
        credentials: grpc.ChannelCredentials | None = None,
        coalesce_s: float = 0.0,
    ) -> RunnerPool:
        """A pool with one channel per runner address (TLS with `credentials`);
        `keep_connected` opens the streams. `coalesce_s`: see RunFlowClient."""
        channels = [open_channel(t, channel_options, credentials) for t in targets]
        clients = [
            RunFlowClient(channel, api_key=api_key, name=target, coalesce_s=coalesce_s)
            for target, channel in zip(targets, channels, strict=True)
        ]
        return cls(clients, channels=channels)

    @property
    def connected(self) -> bool:
        """Some runner takes new runs."""
        return any(client.accepting for client in self.clients)

    @property
    def open_runs(self) -> int:
        return sum(client.open_runs for client in self.clients)

    def run(self, start: runner_pb2.RunStart) -> PooledRun:
        """A run of `start`; nothing is sent until its `result()` is awaited."""
        return PooledRun(self, start)

    def pick(self, exclude: Sequence[RunFlowClient] = ()) -> RunFlowClient | None:
        """The runner for a new run (fewest open runs, ties round-robin); None if none takes it."""
        clients = self.clients
        n = len(clients)
        first = self._turn
        self._turn = first + 1 if first + 1 < n else 0
        best: RunFlowClient | None = None
        fewest = 0
        for i in range(n):
            client = clients[(first + i) % n]
            if client.accepting and client not in exclude:
                runs = client.open_runs
                if best is None or runs < fewest:
                    best, fewest = client, runs
        return best

    async def wait_for_runner(self, exclude: Sequence[RunFlowClient] = ()) -> RunFlowClient:
        """`pick`, waiting up to connect_grace_s for a runner; raises RunnerUnavailable."""
        if len(exclude) >= len(self.clients):
            raise RunnerUnavailable  # every runner had its chance
        try:
            async with asyncio.timeout(self.connect_grace_s):
                while (client := self.pick(exclude)) is None:
                    await self._changed.wait()
        except TimeoutError:
            raise RunnerUnavailable from None
        return client

    async def run_answer(
        self, company: str, status_token: str, deadline_s: float = RUN_ANSWER_DEADLINE_S
    ) -> runner_pb2.GetRunAnswerResponse | None:
        """The answer kept for a status token (its `answer` unset while pending), or None when
        there is none (NOT_FOUND). Raises RunnerUnavailable when no connected runner answers."""
        request = runner_pb2.GetRunAnswerRequest(company=company, status_token=status_token)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        clients = self.clients
        n = len(clients)
        first = self._turn
        self._turn = first + 1 if first + 1 < n else 0
        for i in range(n):
            client = clients[(first + i) % n]
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            if not client.connected:
                continue
            try:
                return await client.run_answer(request, remaining)
            except grpc.aio.AioRpcError as e:
                if e.code() in _NO_ANSWER:
                    return None
                # Never the token: it is the capability to read the answer.
                log.warning("GetRunAnswer on runner %s failed: %s", client.name, e.code().name)
        raise RunnerUnavailable

    async def keep_connected(self) -> None:
        """Keep a stream open to every runner; cancel the task to stop (open runs then fail)."""
        async with asyncio.TaskGroup() as streams:
            for client in self.clients:
                streams.create_task(client.run(), name=f"edge-runflow {client.name}")

    async def close(self) -> None:
        """Close the channels `connect` opened (after cancelling `keep_connected`)."""
        for channel in self._channels:
            await channel.close()

    def _on_change(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class PooledRun:
    """One request's run, on whichever runner takes it."""

    __slots__ = ("_client", "_pool", "_run", "_start", "_tried")

    def __init__(self, pool: RunnerPool, start: runner_pb2.RunStart) -> None:
        self._pool = pool
        self._start = start
        self._tried: tuple[RunFlowClient, ...] = ()
        self._client: RunFlowClient | None = None
        self._run: Run | None = None

    @property
    def started(self) -> bool:
        """The start is out on a runner's stream (and not yet refused or lost)."""
        return self._run is not None

    @property
    def run_id(self) -> str | None:
        """None until accepted; "" when the runner did not start the run."""
        run = self._run
        return run.run_id if run is not None else None

    async def result(self, detach_at: float = 0.0) -> RunResult:
        """The callback, or the outcome of a run that ended without one (or what else answers
        the caller: see Run.result).

        `detach_at` (event-loop time, 0: never): from then on the runner is asked to keep the
        run's answer and say `detached` (RunFlowClient.detach).

        Raises RunnerUnavailable when no runner (left) takes the run, RunLost when the stream
        of the runner that accepted it breaks.
        """
        while True:
            run = self._run
            if run is None:
                run = await self._place()
            try:
                if detach_at:
                    await self._detach_when_due(run, detach_at)
                result = await run.result
            except RunnerUnavailable:
                self._run = None  # the stream broke before `accepted`: start it elsewhere
                continue
            if isinstance(result, runner_pb2.RunOutcome) and result.reason == _DRAINING:
                self._run = None  # refused, no record made: start it elsewhere
                continue
            return result

    def cancel(self, caller_status: int) -> None:
        """Tell the runner the caller got `caller_status` instead (no-op once answered)."""
        if self._run is not None and self._client is not None:
            self._client.cancel(self._run, caller_status)

    async def _detach_when_due(self, run: Run, detach_at: float) -> None:
        delay = detach_at - asyncio.get_running_loop().time()
        if delay > 0:
            # asyncio.wait, unlike a timeout around `await`, leaves the future alone at the end.
            await asyncio.wait((run.result,), timeout=delay)
        if not run.result.done() and self._client is not None:
            self._client.detach(run)

    async def _place(self) -> Run:
        pool = self._pool
        client = pool.pick(self._tried) or await pool.wait_for_runner(self._tried)
        self._tried += (client,)
        self._client = client
        self._run = run = client.start(self._start)
        return run
