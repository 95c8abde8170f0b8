"""Keeps the cache current over CallbackSyncService.SyncCallbacks (see its proto for the protocol).

Per stream: send `hello` with what we have, then a heartbeat every HEARTBEAT_S. The chunks of a
set are built into the next state (and a snapshot into a new last-known-good file) as they
arrive, but nothing is visible until the last one (`more` unset): then the state is swapped in
whole, the file committed, and only then the set acknowledged. While a change
set is in transit, the callbacks it names are refused (CallbackCache.held). The first set is
authoritative; until it arrives we keep serving what we had. Any failure ends the stream,
dropping a partly received set; we reconnect with backoff and resync from what we applied.
See docs/sync.md.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

import grpc

from boomerang.v1 import callback_sync_service_pb2 as sync_pb2
from boomerang.v1 import callback_sync_service_pb2_grpc as sync_grpc
from edge import lkg
from edge.backoff import Backoff
from edge.cache import EMPTY, CacheState, CallbackCache, SetBuilder, SyncProtocolError

log = logging.getLogger(__name__)

#: Liveness (protocol point 7): the control plane counts an edge silent for 10 s as dead.
HEARTBEAT_S = 2.0
#: Chunks with more records than this (and every snapshot chunk) are taken off the event loop,
#: so requests keep flowing while a large set is turned into a state.
APPLY_INLINE_MAX = 2_000


class SyncClient:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        api_key: str,
        edge_id: str,
        cache: CallbackCache,
        lkg_path: Path,
        backoff: Backoff | None = None,
    ) -> None:
        self._stub = sync_grpc.CallbackSyncServiceStub(channel)
        self._metadata = (("authorization", f"Bearer {api_key}"),)
        self._edge_id = edge_id
        self._cache = cache
        self._lkg = lkg.LkgStore(lkg_path)
        self._backoff = backoff or Backoff()
        self._last_error = ""

    @property
    def connected(self) -> bool:
        """The stream is up and its authoritative first message has been applied."""
        return self._cache.live

    @property
    def applied_revision(self) -> int:
        state = self._cache.state
        return state.revision if state is not None else 0

    async def run(self) -> None:
        """Sync forever; cancel the task to stop."""
        while True:
            try:
                await self._stream()
                self._note_failure("stream ended by the control plane")
            except grpc.aio.AioRpcError as e:
                self._note_failure(f"{e.code().name}: {e.details()}")
            except SyncProtocolError as e:
                self._note_failure(f"bad message from the control plane: {e}")
            except Exception as e:
                log.exception("sync stream failed")
                self._note_failure(type(e).__name__)
            finally:
                self._cache.mark_down()
            await asyncio.sleep(self._backoff.next_delay())

    async def _stream(self) -> None:
        call = self._stub.SyncCallbacks(metadata=self._metadata)
        writing = asyncio.Lock()  # gRPC allows one write at a time; acks and heartbeats share

        async def send(request: sync_pb2.SyncCallbacksRequest) -> None:
            async with writing:
                await call.write(request)

        heartbeats = asyncio.create_task(self._heartbeat(send), name="edge-sync-heartbeat")
        try:
            have = self._cache.state or EMPTY
            hello = sync_pb2.SyncHello(
                edge_id=self._edge_id, epoch=have.epoch, revision=have.revision
            )
            await send(sync_pb2.SyncCallbacksRequest(hello=hello))
            incoming: _IncomingSet | None = None
            try:
                while True:
                    message = await call.read()
                    if message is grpc.aio.EOF:
                        return  # a set cut short is dropped with `incoming`
                    if heartbeats.done():
                        heartbeats.result()  # a failed heartbeat write ends the stream
                    if incoming is None:
                        incoming = _IncomingSet(self._cache.state or EMPTY, message, self._lkg)
                    if not message.snapshot:
                        # Fail closed: the state would answer for these with what is being
                        # replaced. A snapshot holds nothing: it names everything, and the state
                        # it replaces was already served while disconnected (docs/sync.md).
                        self._cache.hold(message)
                    await incoming.add(message)
                    if message.more:
                        continue
                    done, incoming = incoming, None
                    await self._apply(send, done)
            finally:
                if incoming is not None:
                    await asyncio.to_thread(incoming.drop)
        finally:
            heartbeats.cancel()
            await asyncio.gather(heartbeats, return_exceptions=True)
            call.cancel()

    async def _heartbeat(self, send) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await send(sync_pb2.SyncCallbacksRequest(heartbeat=sync_pb2.SyncHeartbeat()))

    async def _apply(self, send, incoming: _IncomingSet) -> None:
        state = incoming.builder.build()
        first = not self._cache.live
        self._cache.install(state, confirmed_at=time.time(), live=True)
        if first:
            self._backoff.reset()
            self._last_error = ""
            log.info("control plane in sync at epoch %s revision %d", state.epoch, state.revision)
        # Persist before acknowledging: an ack promises the edge would come back with this state.
        await asyncio.to_thread(incoming.persist, state)
        ack = sync_pb2.SyncAck(epoch=state.epoch, revision=state.revision)
        await send(sync_pb2.SyncCallbacksRequest(ack=ack))

    def _note_failure(self, what: str) -> None:
        # Log a failure once, not at every retry while the control plane stays down.
        if what != self._last_error:
            log.warning("control-plane sync stream down (%s); retrying", what)
            self._last_error = what


class _IncomingSet:
    """A set being received: its records turned into the next state as chunks arrive, and, for
    a snapshot, written to a new last-known-good file as they arrive too, so a large snapshot
    is never held whole as protobufs. Change sets keep their chunks: the file takes them as
    changes (edge/lkg.py)."""

    def __init__(
        self, base: CacheState, first: sync_pb2.SyncCallbacksResponse, store: lkg.LkgStore
    ) -> None:
        self.base = base
        self.builder = SetBuilder(base, first)  # refuses changes that cannot follow `base`
        self.store = store
        self.writer = store.begin_snapshot() if first.snapshot else None
        self.chunks: list[sync_pb2.SyncCallbacksResponse] = []

    async def add(self, chunk: sync_pb2.SyncCallbacksResponse) -> None:
        size = len(chunk.callbacks) + len(chunk.flows) + len(chunk.environments)
        if self.writer is not None or size > APPLY_INLINE_MAX:
            await asyncio.to_thread(self._add, chunk)
        else:
            self._add(chunk)

    def _add(self, chunk: sync_pb2.SyncCallbacksResponse) -> None:
        self.builder.add(chunk)  # checks the chunk belongs to the set
        if self.writer is not None:
            self.writer.add(chunk)
        else:
            self.chunks.append(chunk)

    def persist(self, state: CacheState) -> None:
        if self.writer is not None:
            self.writer.commit(state)
        else:
            self.store.save(state, self.chunks, self.base)

    def drop(self) -> None:
        if self.writer is not None:
            self.writer.abort()
