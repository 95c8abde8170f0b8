"""A run's shape log: one entry per shape run, kept to a bounded size.

The log is part of the run's checkpoint (rewritten after every shape of a tail) and of its run
row, so its size is paid again and again. It keeps the first HEAD_ENTRIES entries (how the run
started) and the latest ones (where it ended or failed); when it outgrows KEPT_ENTRIES or
KEPT_BYTES, the oldest entries after the head are folded into one gap entry (status "omitted",
its `error` saying how many were left out, its duration their total). How many shapes a run may
run at all is a budget (Budgets.shape_log, counted in Progress.logged); this only bounds what is
kept of their log (docs/quotas.md, "Bounded documents").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final, Literal

#: Entries kept per run, the gap entry included.
KEPT_ENTRIES: Final = 1_000
#: Approximate JSON bytes kept per run: with 64-character shape ids this bound comes first.
KEPT_BYTES: Final = 128 << 10
#: Entries at the start of the log that always stay.
HEAD_ENTRIES: Final = 100
#: The status of the entry that stands for the entries left out.
GAP: Final = "omitted"
# JSON keys, quotes and numbers of one entry besides its strings.
_ENTRY_OVERHEAD: Final = 110


@dataclass(slots=True)
class ShapeLog:
    shape_id: str
    shape_type: str
    status: Literal["ok", "failed", "omitted"]
    duration_us: int
    items_in: int
    items_out: int
    error: str = ""

    def to_doc(self) -> dict[str, Any]:
        # By hand: dataclasses.asdict deep-copies and cost 26 µs a run on the event loop.
        return {
            "shape_id": self.shape_id,
            "shape_type": self.shape_type,
            "status": self.status,
            "duration_us": self.duration_us,
            "items_in": self.items_in,
            "items_out": self.items_out,
            "error": self.error,
        }


def entry_bytes(entry: ShapeLog) -> int:
    return _ENTRY_OVERHEAD + len(entry.shape_id) + len(entry.shape_type) + len(entry.error)


def log_bytes(log: list[ShapeLog]) -> int:
    return sum(entry_bytes(e) for e in log)


def append(log: list[ShapeLog], entry: ShapeLog, logged: int, size: int) -> int:
    """Appends `entry`, the run's `logged`-th, then folds the oldest entries after the head into
    the gap until the log is within bounds; returns its new size (log_bytes, kept up to date so
    that a long run never re-measures its whole log)."""
    log.append(entry)
    size += entry_bytes(entry)
    if len(log) <= KEPT_ENTRIES and size <= KEPT_BYTES:
        return size
    gap = log[HEAD_ENTRIES] if len(log) > HEAD_ENTRIES else None
    if gap is None or gap.status != GAP:
        gap = ShapeLog("", "", GAP, 0, log[HEAD_ENTRIES].items_in, 0)
        log.insert(HEAD_ENTRIES, gap)
        size += entry_bytes(gap)
    # Two entries after the gap always stay: the newest, which may be the failure.
    while (len(log) > KEPT_ENTRIES or size > KEPT_BYTES) and len(log) > HEAD_ENTRIES + 2:
        dropped = log.pop(HEAD_ENTRIES + 1)
        size -= entry_bytes(dropped)
        gap.duration_us += dropped.duration_us
        gap.items_out = dropped.items_out
    size -= entry_bytes(gap)
    gap.error = f"{logged - (len(log) - 1)} entries left out"
    return size + entry_bytes(gap)
