"""The last-known-good copy of the cache on disk (docs/design.md §3; Kong's hybrid-mode LKG).

Format: the whole state as one binary `SyncCallbacksResponse` with `snapshot = true`, so loading
it is applying a snapshot. Written atomically: a temporary file in the same directory, fsync,
os.replace, fsync of the directory; a crash leaves the old file or the new one, never a torn one.
Blocking: call `save` off the event loop.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from boomerang.v1 import callback_sync_service_pb2 as sync_pb2
from edge.cache import EMPTY, CacheState, SyncProtocolError, apply
from edge.config import private_state_dir

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LoadedState:
    state: CacheState
    #: When the file was written (wall clock): the last time the control plane confirmed it.
    written_at: float


def save(path: Path, state: CacheState) -> None:
    data = state.to_proto().SerializeToString()
    private_state_dir(path.parent)
    # mkstemp creates the file 0600, and os.replace keeps that mode: only this user reads it.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def load(path: Path) -> LoadedState | None:
    """The saved state, or None when there is none or it cannot be read (logged)."""
    try:
        data = path.read_bytes()
        written_at = path.stat().st_mtime
    except FileNotFoundError:
        return None
    except OSError as e:
        log.warning("cannot read last-known-good file %s: %s", path, e)
        return None
    message = sync_pb2.SyncCallbacksResponse()
    try:
        message.ParseFromString(data)
        if not message.snapshot:
            raise SyncProtocolError("not a snapshot")
        state = apply(EMPTY, message)
    except (DecodeError, SyncProtocolError) as e:
        log.warning("ignoring unreadable last-known-good file %s: %s", path, e)
        return None
    return LoadedState(state=state, written_at=written_at)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
