"""Pruning the change log keeps resume decisions exact (both backends)."""

from __future__ import annotations

import datetime as dt

from control_plane.store import changes
from control_plane.store.clock import utcnow
from control_plane.store.db import write_transaction
from control_plane.store.models import Change
from control_plane.sync import records


def _write(n: int) -> None:
    for _ in range(n):
        with write_transaction():
            changes.record_change("callback", "0" * 26)


def test_prune_deletes_a_prefix_and_edges_behind_it_get_a_snapshot(db):
    _write(5)
    Change.update(created_at=utcnow() - dt.timedelta(days=30)).where(Change.revision <= 3).execute()
    _write(2)
    head = changes.head()
    assert head.revision == 7

    assert changes.prune(utcnow() - dt.timedelta(days=7)) == 3
    assert [c.revision for c in Change.select().order_by(Change.revision)] == [4, 5, 6, 7]
    assert changes.oldest_retained() == 4
    assert records.can_resume(head.epoch, 3, head)  # needs 4.. : all there
    assert not records.can_resume(head.epoch, 2, head)  # needed 3: pruned → snapshot
    assert records.SetReader(head.epoch, 2).header().snapshot
    assert not records.SetReader(head.epoch, 3).header().snapshot


def test_prune_never_empties_the_log(db):
    _write(3)
    Change.update(created_at=utcnow() - dt.timedelta(days=30)).execute()
    head = changes.head()
    assert changes.prune(utcnow()) == 2
    assert [c.revision for c in Change.select()] == [3]
    assert not records.can_resume(head.epoch, 1, head)
    assert records.can_resume(head.epoch, 2, head)
