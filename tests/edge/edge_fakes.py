"""Fake control-plane servicers on real loopback gRPC servers, and test data, for edge tests."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import grpc
import httpx

from boomerang.local import free_port
from boomerang.v1 import callback_sync_service_pb2 as sync_pb2
from boomerang.v1 import callback_sync_service_pb2_grpc as sync_grpc
from boomerang.v1 import resources_pb2
from boomerang.v1 import runner_service_pb2 as runner_pb2
from boomerang.v1 import runner_service_pb2_grpc as runner_grpc

API_KEY = "test-installation-key"
EPOCH = "epoch-1"
SIGNATURE = "a" * 52
OTHER_SIGNATURE = "b" * 52

COMPANY = "acme"
OTHER_COMPANY = "globex"
ENV_UK = "01envuk0000000000000000000"
ENV_DE = "01envde0000000000000000000"
ENV_GLOBEX = "01envgl0000000000000000000"

# Callback ids (26 characters, lowercase, like ULIDs), one per runner behaviour.
CB_OK = "01cbok00000000000000000000"
CB_FAIL = "01cbfail000000000000000000"
CB_NOCB = "01cbnocb000000000000000000"
CB_SLOW = "01cbslow000000000000000000"
CB_BREAK = "01cbbreak00000000000000000"
CB_UNDEPLOYED = "01cbundep00000000000000000"
CB_DISABLED = "01cbdisab00000000000000000"
CB_NEW = "01cbnew0000000000000000000"
CB_BUSY = "01cbbusy000000000000000000"
CB_BUDGET = "01cbbudget0000000000000000"
CB_WAIT = "01cbwait000000000000000000"  # v-slow with a long timeout: waits until the test acts

SLOW_TIMEOUT_MS = 300


#: Response header naming the run a request started.
RUN_ID = "x-boomerang-run-id"


def error(response: httpx.Response, status: int, reason: str, run_id: str | None = None) -> None:
    """Asserts an error response as docs/design.md §1 has it: JSON, reason, message, run id."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": reason,
        "message": response.json()["message"],
        "run_id": run_id,
    }
    assert response.json()["message"]
    assert SIGNATURE not in response.text
    if run_id:
        assert response.headers[RUN_ID] == run_id
    else:
        assert RUN_ID not in response.headers


def digest(signature: str) -> bytes:
    return hashlib.sha256(signature.encode()).digest()


def deployment(version: str, env: str = "", enabled: bool = True) -> sync_pb2.DeploymentRecord:
    return sync_pb2.DeploymentRecord(environment_id=env, version_id=version, enabled=enabled)


def callback(
    cb_id: str,
    *deployments: sync_pb2.DeploymentRecord,
    timeout_ms: int = 5000,
    signature: str = SIGNATURE,
    company: str = COMPANY,
    content_type: str = "application/json",
    mode: int = 0,
    async_after_ms: int = 0,
) -> sync_pb2.CallbackRecord:
    return sync_pb2.CallbackRecord(
        id=cb_id,
        company=company,
        flow_id=f"flow-{cb_id}",
        signature_digests=[digest(signature)],
        content_type=content_type,
        timeout_ms=timeout_ms,
        deployments=deployments,
        mode=mode,
        async_after_ms=async_after_ms,
    )


def snapshot(revision: int = 1) -> sync_pb2.SyncCallbacksResponse:
    return sync_pb2.SyncCallbacksResponse(
        epoch=EPOCH,
        revision=revision,
        snapshot=True,
        callbacks=[
            callback(
                CB_OK,
                deployment("v-ok"),
                deployment("v-ok-uk", ENV_UK),
                content_type="application/vnd.acme+json",
            ),
            callback(CB_FAIL, deployment("v-fail")),
            callback(CB_NOCB, deployment("v-nocb")),
            callback(CB_SLOW, deployment("v-slow"), timeout_ms=SLOW_TIMEOUT_MS),
            callback(CB_BREAK, deployment("v-break")),
            callback(CB_BUSY, deployment("v-busy")),
            callback(CB_BUDGET, deployment("v-budget")),
            callback(CB_WAIT, deployment("v-slow"), timeout_ms=20_000),
            callback(CB_UNDEPLOYED, deployment("v-ok", ENV_UK)),
            callback(CB_DISABLED, deployment("v-ok", enabled=False)),
        ],
        environments=[
            sync_pb2.EnvironmentRecord(id=ENV_UK, company=COMPANY, url_prefix="uk"),
            sync_pb2.EnvironmentRecord(id=ENV_DE, company=COMPANY, url_prefix="de"),
            sync_pb2.EnvironmentRecord(id=ENV_GLOBEX, company=OTHER_COMPANY, url_prefix="eu"),
        ],
    )


def callback_url(
    callback_id: str, prefix: str | None = None, *, company: str = COMPANY, **query: str
) -> str:
    path = f"/api/v1/{company}/{callback_id}" + (f"/{prefix}" if prefix else "")
    return str(httpx.URL(path, params=query))


def signed(callback_id: str, prefix: str | None = None, **query: str) -> str:
    """A callback URL with the right signature in the query."""
    return callback_url(callback_id, prefix, patchworks_signature=SIGNATURE, **query)


def _authorized(context: grpc.aio.ServicerContext) -> bool:
    metadata = dict(context.invocation_metadata() or ())
    return metadata.get("authorization") == f"Bearer {API_KEY}"


class FakeSync(sync_grpc.CallbackSyncServiceServicer):
    """Answers hello with `first` (a snapshot by default), then sends what `push` is given."""

    def __init__(self) -> None:
        self.first: sync_pb2.SyncCallbacksResponse = snapshot()
        #: Set to hold back the first message (an edge that is connected but not in sync).
        self.gate = asyncio.Event()
        self.gate.set()
        self.hellos: list[sync_pb2.SyncHello] = []
        self.acks: list[tuple[str, int]] = []
        self.heartbeats = 0
        #: Streams refused for a missing or wrong API key.
        self.rejected = 0
        self._streams: list[tuple[asyncio.Queue, grpc.aio.ServicerContext]] = []

    async def SyncCallbacks(self, request_iterator, context):
        if not _authorized(context):
            self.rejected += 1
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad key")
        first = await context.read()
        if first.WhichOneof("message") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "hello first")
        self.hellos.append(first.hello)
        queue: asyncio.Queue = asyncio.Queue()
        entry = (queue, context)
        self._streams.append(entry)
        acks = asyncio.create_task(self._read_acks(context))
        try:
            await self.gate.wait()
            await context.write(self.first)
            while True:
                message = await queue.get()
                if isinstance(message, grpc.StatusCode):
                    await context.abort(message, "reset by test")
                await context.write(message)
        finally:
            acks.cancel()
            self._streams.remove(entry)

    async def _read_acks(self, context: grpc.aio.ServicerContext) -> None:
        while True:
            request = await context.read()
            if request is grpc.aio.EOF:
                return
            if request.WhichOneof("message") == "heartbeat":
                self.heartbeats += 1
                continue
            self.acks.append((request.ack.epoch, request.ack.revision))

    def push(self, message: sync_pb2.SyncCallbacksResponse) -> None:
        for queue, _ in self._streams:
            queue.put_nowait(message)

    def reset(self, code: grpc.StatusCode = grpc.StatusCode.RESOURCE_EXHAUSTED) -> None:
        for queue, _ in self._streams:
            queue.put_nowait(code)

    @property
    def streams(self) -> int:
        return len(self._streams)


@dataclass
class FakeRunner(runner_grpc.RunnerServiceServicer):
    """Plays a run according to the start's version id:

    v-ok*   accepted + callback (201, x-extra header, body naming the version), later outcome
    v-fail  accepted, outcome FAILED (flow_failed)
    v-nocb  accepted, outcome SUCCEEDED (no_callback)
    v-busy  accepted with no run id, outcome COMPANY_BUSY (not started)
    v-budget accepted, outcome FAILED (BUDGET_EXPRESSION_STEPS)
    v-slow  accepted, then nothing until cancelled
    v-break accepted, then the whole stream fails
    other   accepted with no run id, outcome VERSION_NOT_FOUND

    With `hold` it records starts and answers none (a runner slow to make runs durable); with
    `draining` it refuses them with RUN_REASON_RUNNER_DRAINING; `drain()` also says `draining`.

    Kept answers, as runner_service.proto has them: an Idempotency-Key is claimed per callback
    (`keys`); a repeat gets `replay` (with the first answer once there is one) or, with another
    fingerprint, IDEMPOTENCY_MISMATCH. An ASYNC start gets `accepted` with a status token and its
    answer is kept in `answers` for GetRunAnswer (v-slow's stays pending until `finish`); a
    WEBHOOK start gets `accepted` alone. `detach` on an open v-slow run keeps its answer and says
    `detached`. With `answers_full` every start that needs a kept answer is refused
    (ANSWERS_QUOTA) and `detach` is ignored. With `lookups_fail` GetRunAnswer is UNAVAILABLE.
    """

    starts: list[runner_pb2.RunStart] = field(default_factory=list)
    cancels: list[int] = field(default_factory=list)
    #: run_ref -> RunCancel.caller_status, for every cancel.
    cancel_statuses: dict[int, int] = field(default_factory=dict)
    #: run_ref -> run id, for every accepted run.
    run_ids: dict[int, str] = field(default_factory=dict)
    #: Events per RunFlowRequest received (to see the batching).
    batch_sizes: list[int] = field(default_factory=list)
    #: Serialized size of each RunFlowRequest received.
    batch_bytes: list[int] = field(default_factory=list)
    streams_opened: int = 0
    #: Run ids are f"{prefix}run-{n}" (tells two fake runners apart).
    prefix: str = ""
    hold: bool = False
    draining: bool = False
    #: (callback id, key) -> the claim of an Idempotency-Key.
    keys: dict[tuple[str, str], Claim] = field(default_factory=dict)
    #: status token -> the answer kept for it.
    answers: dict[str, Kept] = field(default_factory=dict)
    answers_full: bool = False
    lookups_fail: bool = False
    #: GetRunAnswer calls received.
    lookups: list[runner_pb2.GetRunAnswerRequest] = field(default_factory=list)
    #: run_refs of every `detach` received.
    detaches: list[int] = field(default_factory=list)
    #: run_ref -> (run id, start) of runs open on their stream with no answer sent (v-slow).
    open: dict[int, tuple[str, runner_pb2.RunStart]] = field(default_factory=dict)
    _n: int = 0
    _outs: list[asyncio.Queue] = field(default_factory=list)

    def drain(self) -> None:
        """Refuse new runs from now on, and say so on every open stream."""
        self.draining = True
        for out in self._outs:
            out.put_nowait([runner_pb2.RunFlowServerEvent(draining=runner_pb2.RunnerDraining())])

    @property
    def streams(self) -> int:
        return len(self._outs)

    async def RunFlow(self, request_iterator, context):
        if not _authorized(context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad key")
        self.streams_opened += 1
        out: asyncio.Queue = asyncio.Queue()

        async def writer() -> None:
            while True:
                events = await out.get()
                await context.write(runner_pb2.RunFlowResponse(events=events))

        writing = asyncio.create_task(writer())
        self._outs.append(out)
        try:
            while True:
                request = await context.read()
                if request is grpc.aio.EOF:
                    return
                self.batch_sizes.append(len(request.events))
                self.batch_bytes.append(request.ByteSize())
                for event in request.events:
                    if event.WhichOneof("event") == "cancel":
                        self.cancels.append(event.run_ref)
                        self.cancel_statuses[event.run_ref] = event.cancel.caller_status
                        self.open.pop(event.run_ref, None)
                        continue
                    if event.WhichOneof("event") == "detach":
                        self.detaches.append(event.run_ref)
                        self._detach(event.run_ref, out)
                        continue
                    if self._play(event.run_ref, event.start, out) == "break":
                        await asyncio.sleep(0.05)  # let `accepted` go out first
                        await context.abort(grpc.StatusCode.UNAVAILABLE, "runner crashed")
        finally:
            self._outs.remove(out)
            writing.cancel()

    async def GetRunAnswer(self, request, context):
        if not _authorized(context):
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad key")
        self.lookups.append(request)
        if self.lookups_fail:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "database down")
        kept = self.answers.get(request.status_token)
        if kept is None or kept.company != request.company:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such run answer")
        response = runner_pb2.GetRunAnswerResponse(run_id=kept.run_id)
        if kept.answer is not None:
            response.answer.CopyFrom(kept.answer)
        return response

    def finish(self, run_id: str, callback: runner_pb2.RunCallback) -> None:
        """A kept-answer run reaches its callback: its status URL answers with it from now on."""
        for kept in self.answers.values():
            if kept.run_id == run_id:
                kept.answer = runner_pb2.StoredAnswer(
                    callback=callback, content_type=kept.content_type
                )

    def _play(self, ref: int, start: runner_pb2.RunStart, out: asyncio.Queue) -> str:
        self.starts.append(start)
        if self.hold:
            return ""
        if self.draining:
            reason = resources_pb2.RUN_REASON_RUNNER_DRAINING
            out.put_nowait(
                [accepted(ref), outcome(ref, resources_pb2.RUN_STATUS_UNSPECIFIED, reason)]
            )
            return ""
        mode = start.answer_mode
        key = (start.callback_id, start.idempotency_key)
        if self.answers_full and (start.idempotency_key or mode == runner_pb2.ANSWER_MODE_ASYNC):
            reason = resources_pb2.RUN_REASON_ANSWERS_QUOTA
            out.put_nowait(
                [accepted(ref), outcome(ref, resources_pb2.RUN_STATUS_UNSPECIFIED, reason)]
            )
            return ""
        claim = self.keys.get(key) if start.idempotency_key else None
        if claim is not None:
            if claim.fingerprint != start.request_fingerprint:
                reason = resources_pb2.RUN_REASON_IDEMPOTENCY_MISMATCH
                second = outcome(ref, resources_pb2.RUN_STATUS_UNSPECIFIED, reason)
            else:
                replay = runner_pb2.RunReplay(run_id=claim.run_id, answer=claim.answer)
                second = runner_pb2.RunFlowServerEvent(run_ref=ref, replay=replay)
            out.put_nowait([accepted(ref), second])
            return ""

        version = start.version_id
        self._n += 1
        run_id = f"{self.prefix}run-{self._n}"
        known = version.startswith("v-ok") or version in _STARTED
        if not known:
            reason = (
                resources_pb2.RUN_REASON_COMPANY_BUSY
                if version == "v-busy"
                else resources_pb2.RUN_REASON_VERSION_NOT_FOUND
            )
            out.put_nowait(
                [accepted(ref), outcome(ref, resources_pb2.RUN_STATUS_UNSPECIFIED, reason)]
            )
            return ""
        self.run_ids[ref] = run_id
        if start.idempotency_key:
            claim = self.keys[key] = Claim(start.request_fingerprint, run_id)
        answer = _answer_event(ref, start)  # None: v-slow and v-break never answer
        kept = None
        if answer is not None:
            kept = runner_pb2.StoredAnswer(content_type=start.content_type)
            getattr(kept, answer.WhichOneof("event")).CopyFrom(
                getattr(answer, answer.WhichOneof("event"))
            )

        if mode in (runner_pb2.ANSWER_MODE_ASYNC, runner_pb2.ANSWER_MODE_WEBHOOK):
            token = status_token(run_id) if mode == runner_pb2.ANSWER_MODE_ASYNC else ""
            if token:
                self.answers[token] = Kept(start.company, run_id, start.content_type, kept)
            if claim is not None:
                claim.answer = runner_pb2.StoredAnswer(
                    queued=runner_pb2.RunQueued(status_token=token), content_type=start.content_type
                )
            out.put_nowait([accepted(ref, run_id, token)])
            return ""

        if answer is None:
            self.open[ref] = (run_id, start)
            out.put_nowait([accepted(ref, run_id)])
            return "break" if version == "v-break" else ""
        if claim is not None:
            claim.answer = kept
        out.put_nowait([accepted(ref, run_id), answer])
        if answer.HasField("callback"):
            out.put_nowait([outcome(ref, SUCCEEDED)])
        return ""

    def _detach(self, ref: int, out: asyncio.Queue) -> None:
        opened = self.open.get(ref)
        if opened is None or self.answers_full:
            return  # answered already (or never opened); or no room to keep the answer
        del self.open[ref]
        run_id, start = opened
        token = status_token(run_id)
        self.answers[token] = Kept(start.company, run_id, start.content_type, None)
        claim = self.keys.get((start.callback_id, start.idempotency_key))
        if start.idempotency_key and claim is not None:
            claim.answer = runner_pb2.StoredAnswer(
                queued=runner_pb2.RunQueued(status_token=token), content_type=start.content_type
            )
        detached = runner_pb2.RunDetached(status_token=token)
        out.put_nowait([runner_pb2.RunFlowServerEvent(run_ref=ref, detached=detached)])


@dataclass
class Claim:
    """An Idempotency-Key claimed by a run: its fingerprint and, once there is one, its answer."""

    fingerprint: bytes
    run_id: str
    answer: runner_pb2.StoredAnswer | None = None


@dataclass
class Kept:
    """The answer kept for a status token (None while pending)."""

    company: str
    run_id: str
    content_type: str
    answer: runner_pb2.StoredAnswer | None


def status_token(run_id: str) -> str:
    """A token of the real shape: 26 lowercase ULID-like characters and 52 base-32 ones."""
    digest_ = hashlib.sha256(run_id.encode()).digest()
    return digest_.hex()[:26] + base64.b32encode(digest_ * 2).decode().lower()[:52]


def accepted(ref: int, run_id: str = "", token: str = "") -> runner_pb2.RunFlowServerEvent:
    return runner_pb2.RunFlowServerEvent(
        run_ref=ref, accepted=runner_pb2.RunAccepted(run_id=run_id, status_token=token)
    )


def _answer_event(ref: int, start: runner_pb2.RunStart) -> runner_pb2.RunFlowServerEvent | None:
    """The event that answers a started run's caller (None: the run never answers)."""
    version = start.version_id
    if version.startswith("v-ok"):
        body = json.dumps([{"version": version, "body": start.body.decode()}]).encode()
        cb = runner_pb2.RunCallback(
            status_code=201,
            headers=[
                runner_pb2.HttpHeader(name="x-extra", value="yes"),
                runner_pb2.HttpHeader(name="content-length", value="999"),
                runner_pb2.HttpHeader(name="x-evil", value="a\r\nset-cookie: x=1"),
            ],
            body=body,
        )
        return runner_pb2.RunFlowServerEvent(run_ref=ref, callback=cb)
    if version == "v-fail":
        return outcome(ref, FAILED, resources_pb2.RUN_REASON_FLOW_FAILED)
    if version == "v-nocb":
        return outcome(ref, SUCCEEDED, resources_pb2.RUN_REASON_NO_CALLBACK)
    if version == "v-budget":
        return outcome(ref, FAILED, resources_pb2.RUN_REASON_BUDGET_EXPRESSION_STEPS)
    return None


SUCCEEDED = resources_pb2.RUN_STATUS_SUCCEEDED
FAILED = resources_pb2.RUN_STATUS_FAILED
# Versions the fake starts (gives a run id); v-ok* too.
_STARTED = ("v-fail", "v-nocb", "v-slow", "v-break", "v-budget")


def outcome(
    ref: int, status: int, reason: int = resources_pb2.RUN_REASON_UNSPECIFIED
) -> runner_pb2.RunFlowServerEvent:
    return runner_pb2.RunFlowServerEvent(
        run_ref=ref, outcome=runner_pb2.RunOutcome(status=status, reason=reason, error="x")
    )


# As the runner's (control_plane/server.py): a message over 16 MiB ends the stream.
SERVER_OPTIONS = [("grpc.max_receive_message_length", 16 << 20)]


class LoopbackServer:
    """A real grpc.aio server on loopback for fake servicers; after `stop()`, `start()` serves
    again on the same port (a runner or control plane that went away and came back)."""

    def __init__(self, *, sync: FakeSync | None = None, runner: FakeRunner | None = None) -> None:
        self.sync = sync
        self.runner = runner
        self.port = 0  # a free one, the first time
        self._server: grpc.aio.Server | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self) -> str:
        server = grpc.aio.server(options=SERVER_OPTIONS)
        if self.sync is not None:
            sync_grpc.add_CallbackSyncServiceServicer_to_server(self.sync, server)
        if self.runner is not None:
            runner_grpc.add_RunnerServiceServicer_to_server(self.runner, server)
        self.port = server.add_insecure_port(self.target)
        await server.start()
        self._server = server
        return self.target

    async def stop(self) -> None:
        """Ends every open stream at once, as a crash would."""
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop(grace=None)


@contextlib.asynccontextmanager
async def grpc_server(sync: FakeSync | None = None, runner: FakeRunner | None = None):
    """A real grpc.aio server on a free loopback port; yields its target."""
    server = LoopbackServer(sync=sync, runner=runner)
    try:
        yield await server.start()
    finally:
        await server.stop()


def dead_target() -> str:
    """A loopback address where nothing listens."""
    return f"127.0.0.1:{free_port()}"


async def wait_for(predicate: Callable[[], bool | Awaitable[bool]], within_s: float = 5.0) -> None:
    """Poll `predicate` until true; fails after `within_s` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        result = predicate()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)
