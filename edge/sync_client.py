"""Keeps the cache current over CallbackSyncService.SyncCallbacks (see its proto for the protocol).

Per stream: send `hello` with what we have; then for every message: apply it (atomically, by
swapping the state), persist it as last-known-good, and only then `ack` its revision. The first
message is authoritative; until it arrives we keep serving what we had. Any failure ends the
stream; we reconnect with backoff and resync from what we applied.
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
from edge.cache import EMPTY, CallbackCache, SyncProtocolError, apply

log = logging.getLogger(__name__)


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
        self._lkg_path = lkg_path
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
        try:
            have = self._cache.state or EMPTY
            hello = sync_pb2.SyncHello(
                edge_id=self._edge_id, epoch=have.epoch, revision=have.revision
            )
            await call.write(sync_pb2.SyncCallbacksRequest(hello=hello))
            while True:
                message = await call.read()
                if message is grpc.aio.EOF:
                    return
                await self._apply(call, message)
        finally:
            call.cancel()

    async def _apply(
        self, call: grpc.aio.StreamStreamCall, message: sync_pb2.SyncCallbacksResponse
    ) -> None:
        state = apply(self._cache.state or EMPTY, message)
        first = not self._cache.live
        self._cache.install(state, confirmed_at=time.time(), live=True)
        if first:
            self._backoff.reset()
            self._last_error = ""
            log.info("control plane in sync at epoch %s revision %d", state.epoch, state.revision)
        # Persist before acknowledging: an ack promises the edge would come back with this state.
        await asyncio.to_thread(lkg.save, self._lkg_path, state)
        ack = sync_pb2.SyncAck(epoch=state.epoch, revision=state.revision)
        await call.write(sync_pb2.SyncCallbacksRequest(ack=ack))

    def _note_failure(self, what: str) -> None:
        # Log a failure once, not at every retry while the control plane stays down.
        if what != self._last_error:
            log.warning("control-plane sync stream down (%s); retrying", what)
            self._last_error = what
