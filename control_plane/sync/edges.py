"""Which edges exist and what they have applied (for ListEdges and operators)."""

from __future__ import annotations

from control_plane.store.clock import utcnow
from control_plane.store.models import EdgeState


def record(edge_id: str, epoch: str, revision: int, connected: bool) -> None:
    now = utcnow()
    EdgeState.insert(
        edge_id=edge_id, epoch=epoch, revision=revision, connected=connected, last_seen_at=now
    ).on_conflict(
        conflict_target=[EdgeState.edge_id],
        update={
            EdgeState.epoch: epoch,
            EdgeState.revision: revision,
            EdgeState.connected: connected,
            EdgeState.last_seen_at: now,
        },
    ).execute()


def list_edges() -> list[EdgeState]:
    return list(EdgeState.select().order_by(EdgeState.edge_id))


def pending(epoch: str, revision: int) -> list[str]:
    """Connected edges that have not acknowledged `revision` of `epoch` yet."""
    rows = EdgeState.select(EdgeState.edge_id).where(
        EdgeState.connected & ((EdgeState.epoch != epoch) | (EdgeState.revision < revision))
    )
    return sorted(r.edge_id for r in rows)
