"""CallbackSyncService: one stream per edge (protocol in callback_sync_service.proto)."""

from __future__ import annotations

import asyncio
import logging

import grpc

from boomerang.v1 import callback_sync_service_pb2 as sync
from boomerang.v1 import callback_sync_service_pb2_grpc as sync_grpc
from control_plane.domain.errors import DomainError
from control_plane.domain.tenancy import SYNC_SCOPES
from control_plane.domain.validation import unprintable
from control_plane.grpckit import convert
from control_plane.grpckit.servicer import Runtime, Servicer
from control_plane.grpckit.status import to_status
from control_plane.sync import edges
from control_plane.sync.chunks import ChunkPacker
from control_plane.sync.feed import ChangeFeed
from control_plane.sync.liveness import Liveness
from control_plane.sync.records import SetReader

log = logging.getLogger(__name__)

# Flow control: at most this many sets await an ack; meanwhile changes coalesce into the next
# set, so a slow edge costs one pending set, never a backlog.
MAX_UNACKED = 4
# An edge whose window stays full this long is not keeping up: reset it; it resyncs.
ACK_TIMEOUT_S = 10.0
HELLO_TIMEOUT_S = 10.0
# A write (one chunk) the edge does not take within this long means it stopped reading: reset.
WRITE_TIMEOUT_S = 10.0


# The EdgeState columns' sizes (store/models.py).
MAX_EDGE_ID_CHARS = 128
MAX_EPOCH_CHARS = 32


def _violation(message: str) -> DomainError:
    return DomainError("invalid_argument", "PROTOCOL_VIOLATION", message)


def _check_position(field: str, epoch: str, revision: int) -> None:
    """What an edge says it has is stored as given (edges.record): it must fit the columns."""
    if len(epoch) > MAX_EPOCH_CHARS or unprintable(epoch):
        raise _violation(f"{field}.epoch must be at most {MAX_EPOCH_CHARS} printable characters")
    if revision < 0:
        raise _violation(f"{field}.revision must not be negative")


def _check_hello(hello: sync.SyncHello) -> None:
    if len(hello.edge_id) > MAX_EDGE_ID_CHARS or unprintable(hello.edge_id):
        raise _violation(f"hello.edge_id must be at most {MAX_EDGE_ID_CHARS} printable characters")
    _check_position("hello", hello.epoch, hello.revision)


class CallbackSyncServicer(Servicer, sync_grpc.CallbackSyncServiceServicer):
    def __init__(self, runtime: Runtime, feed: ChangeFeed) -> None:
        super().__init__(runtime)
        self.feed = feed
        self.liveness = Liveness(runtime)

    async def ListEdges(self, request, context):
        def fn(p):
            return sync.ListEdgesResponse(
                edges=[
                    sync.Edge(
                        edge_id=e.edge_id,
                        epoch=e.epoch,
                        revision=e.revision,
                        connected=e.connected,
                        last_seen_time=convert.ts(e.last_seen_at),
                    )
                    for e in edges.list_edges()
                ]
            )

        return await self.call(context, fn, admin=True)

    async def SyncCallbacks(self, request_iterator, context):
        await self.call(context, lambda p: None, admin=True, scopes=SYNC_SCOPES, open_ended=True)
        requests = aiter(request_iterator)
        try:
            first = await asyncio.wait_for(anext(requests), HELLO_TIMEOUT_S)
        except (TimeoutError, StopAsyncIteration):
            first = None
        if first is None or not first.HasField("hello") or not first.hello.edge_id:
            await context.abort_with_status(
                to_status(_violation("the first message must be a hello with an edge_id"))
            )
        hello = first.hello
        try:
            _check_hello(hello)
        except DomainError as err:
            await context.abort_with_status(to_status(err))
        stream = _EdgeStream(self.rt, self.feed, self.liveness, context, hello.edge_id)
        try:
            await stream.run(requests, hello.epoch, hello.revision)
        except DomainError as err:
            await context.abort_with_status(to_status(err))
        finally:
            await stream.close()


class _EdgeStream:
    """State of one edge's stream: how many sets await an ack."""

    def __init__(self, rt: Runtime, feed: ChangeFeed, liveness: Liveness, context, edge_id: str):
        self.rt, self.feed, self.liveness = rt, feed, liveness
        self.context, self.edge_id = context, edge_id
        self.wake = feed.subscribe()
        self.ack_event = asyncio.Event()
        self.unacked = 0
        self.reader: asyncio.Task | None = None

    async def run(self, requests, epoch: str, revision: int) -> None:
        await self.rt.db(lambda: edges.record(self.edge_id, epoch, revision, True))
        self.reader = asyncio.create_task(
            self._read_acks(requests), name=f"sync-acks-{self.edge_id}"
        )
        # The first set is authoritative: changes since what the edge has, or a snapshot.
        sent = (epoch, revision)
        while True:
            sent = await self._send_set(*sent)
            while self.unacked >= MAX_UNACKED or self._head() in (None, sent):
                if not await self._wait():
                    return  # the edge closed its side

    def _head(self) -> tuple[str, int] | None:
        head = self.feed.head
        return None if head is None else (head.epoch, head.revision)

    async def _send_set(self, epoch: str, revision: int) -> tuple[str, int]:
        """Sends everything since (epoch, revision) as one set of bounded chunks, read from the
        store a page at a time; returns the set's (epoch, revision)."""
        reader = SetReader(epoch, revision)
        header = await self.rt.db(reader.header)
        packer = ChunkPacker(header)
        while batch := await self.rt.db(reader.next_batch):
            for field, value in batch:
                if (chunk := packer.add(field, value)) is not None:
                    await self._write(chunk)
        await self._write(packer.finish())
        self.unacked += 1
        return header.epoch, header.revision

    async def _wait(self) -> bool:
        """Waits for news (a new head, or an ack when the window is full); False once the edge
        has closed its side. Raises SLOW_CONSUMER when a full window sees no ack in time."""
        window_full = self.unacked >= MAX_UNACKED
        news = asyncio.ensure_future((self.ack_event if window_full else self.wake).wait())
        done, _ = await asyncio.wait(
            {news, self.reader},
            timeout=ACK_TIMEOUT_S if window_full else None,
            return_when=asyncio.FIRST_COMPLETED,
        )
        news.cancel()
        if self.reader in done:
            self.reader.result()  # a protocol error from the edge ends the stream with it
            return False
        if not done:
            log.warning("edge %s acknowledged nothing for %ss; reset", self.edge_id, ACK_TIMEOUT_S)
            raise DomainError(
                "resource_exhausted",
                "SLOW_CONSUMER",
                f"no acknowledgement for {ACK_TIMEOUT_S}s with {MAX_UNACKED} sets "
                "outstanding; reconnect to resync",
            )
        (self.ack_event if window_full else self.wake).clear()
        return True

    async def _write(self, message: sync.SyncCallbacksResponse) -> None:
        try:
            await asyncio.wait_for(self.context.write(message), WRITE_TIMEOUT_S)
        except TimeoutError:
            log.warning("edge %s is not reading; resetting", self.edge_id)
            await self.context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "edge not reading")

    async def _read_acks(self, requests) -> None:
        async for request in requests:
            kind = request.WhichOneof("message")
            if kind == "heartbeat":
                await self.liveness.heard(self.edge_id)
                continue
            if kind != "ack":
                raise _violation("after hello, an edge sends only acks and heartbeats")
            _check_position("ack", request.ack.epoch, request.ack.revision)
            self.unacked = max(0, self.unacked - 1)
            self.ack_event.set()
            ack = (request.ack.epoch, request.ack.revision)
            # Recording an ack also dates the edge's last contact.
            await self.rt.db(lambda a=ack: edges.record(self.edge_id, a[0], a[1], True))

    async def close(self) -> None:
        self.feed.unsubscribe(self.wake)
        if self.reader is not None:
            self.reader.cancel()
            await asyncio.gather(self.reader, return_exceptions=True)
        try:
            await self.rt.db(lambda: edges.disconnected(self.edge_id))
        except Exception:
            log.exception("cannot record that edge %s disconnected", self.edge_id)
