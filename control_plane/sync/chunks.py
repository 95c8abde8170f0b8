"""Packs the records of one set into messages of at most about MAX_CHUNK_BYTES (protocol point 4).

Every chunk carries the set's epoch, revision and snapshot flag; all but the last have `more`.
Sizes are counted as records are added (the encoded size of each record plus its field tag and
length prefix), so packing is linear; a chunk never exceeds the bound unless a single record
does, and then that record travels alone (quotas keep records far below it).
"""

from __future__ import annotations

from boomerang.v1 import callback_sync_service_pb2 as sync
from control_plane.sync.records import SetHeader

MAX_CHUNK_BYTES = 1 << 20


def _varint_len(n: int) -> int:
    size = 1
    while n >= 0x80:
        n >>= 7
        size += 1
    return size


def _item_size(value: object) -> int:
    """Bytes a repeated field element takes in the message: tag, length prefix, payload."""
    n = len(value.encode()) if isinstance(value, str) else value.ByteSize()
    return 1 + _varint_len(n) + n  # field numbers below 16 take a one-byte tag


class ChunkPacker:
    def __init__(self, header: SetHeader, max_bytes: int | None = None) -> None:
        self.header = header
        self.max_bytes = max_bytes or MAX_CHUNK_BYTES
        self._base = self._new(more=True).ByteSize()
        self._chunk = self._new()
        self._size = self._base

    def _new(self, more: bool = False) -> sync.SyncCallbacksResponse:
        h = self.header
        return sync.SyncCallbacksResponse(
            epoch=h.epoch, revision=h.revision, snapshot=h.snapshot, more=more
        )

    def add(self, field: str, value: object) -> sync.SyncCallbacksResponse | None:
        """Adds one record (or deleted id) to `field`; returns a full chunk (with `more`) when
        the record did not fit in the one being filled."""
        size = _item_size(value)
        full = None
        if self._size + size > self.max_bytes and self._size > self._base:
            full, self._chunk, self._size = self._chunk, self._new(), self._base
            full.more = True
        repeated = getattr(self._chunk, field)
        if isinstance(value, str):
            repeated.append(value)
        else:
            repeated.add().CopyFrom(value)
        self._size += size
        return full

    def finish(self) -> sync.SyncCallbacksResponse:
        """The last chunk of the set (possibly carrying no records), without `more`."""
        last, self._chunk, self._size = self._chunk, self._new(), self._base
        return last
