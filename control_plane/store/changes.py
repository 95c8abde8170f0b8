"""The change log edges are synced from.

`record_change` must be called inside the write transaction that makes the change: the revision
row is locked until commit, so concurrent writers take revisions one after another, gap-free and
in commit order, and a change is visible exactly when its revision is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import peewee

from control_plane.store.clock import utcnow
from control_plane.store.db import write_transaction
from control_plane.store.models import Change, RevisionCounter

ENTITIES = ("callback", "environment", "flow")


@dataclass(frozen=True)
class Head:
    epoch: str
    revision: int


def record_change(entity: str, entity_id: str) -> int:
    """Takes the next revision for one changed object; returns it."""
    assert entity in ENTITIES, entity
    # UPDATE ... SET revision = revision + 1 takes the row lock at once (PostgreSQL) and runs
    # inside BEGIN IMMEDIATE on SQLite, so no two transactions read the same value.
    RevisionCounter.update(revision=RevisionCounter.revision + 1).where(
        RevisionCounter.id == 1
    ).execute()
    revision = (
        RevisionCounter.select(RevisionCounter.revision).where(RevisionCounter.id == 1).scalar()
    )
    Change.create(revision=revision, entity=entity, entity_id=entity_id, created_at=utcnow())
    return revision


def head() -> Head:
    row = RevisionCounter.get_by_id(1)
    return Head(epoch=row.epoch, revision=row.revision)


def changes_since(revision: int, upto: int) -> list[Change]:
    return list(
        Change.select()
        .where((Change.revision > revision) & (Change.revision <= upto))
        .order_by(Change.revision)
    )


def oldest_retained() -> int:
    """Lowest revision still in the log (0 when empty): continuity is provable from one below."""
    return Change.select(Change.revision).order_by(Change.revision).limit(1).scalar() or 0


def prune(older_than: dt.datetime) -> int:
    """Deletes a prefix of the log: changes recorded before `older_than`, but never the newest.

    Keeping the newest row keeps `oldest_retained` meaningful (an empty log would prove nothing):
    an edge whose revision is below the oldest row minus one gets a snapshot. Returns the number
    of rows deleted.
    """
    newest = Change.select(peewee.fn.MAX(Change.revision)).scalar()
    through = (
        Change.select(peewee.fn.MAX(Change.revision)).where(Change.created_at < older_than).scalar()
    )
    if newest is None or through is None:
        return 0
    with write_transaction():
        return Change.delete().where(Change.revision <= min(through, newest - 1)).execute()
