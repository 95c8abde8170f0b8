"""Which edges exist, what they have applied and whether they are alive (ListEdges, and
RegenerateSignature's wait_for_edges_ms)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from control_plane.store.clock import utcnow
from control_plane.store.models import EdgeState

#: An edge not heard from (hello, ack or heartbeat) for this long is dead to the control plane:
#: shown as not connected, and not waited for. Edges heartbeat every 2 s (protocol point 7).
LIVENESS_S = 10.0


@dataclass(frozen=True)
class EdgeView:
    edge_id: str
    epoch: str
    revision: int
    connected: bool
    last_seen_at: dt.datetime


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


def disconnected(edge_id: str) -> None:
    """The edge's stream ended. Its last contact stays what it was: ending is not news of it."""
    EdgeState.update(connected=False).where(EdgeState.edge_id == edge_id).execute()


def seen(edge_ids: list[str]) -> None:
    """The edges were heard from just now (one statement for a batch of heartbeats)."""
    if edge_ids:
        EdgeState.update(last_seen_at=utcnow()).where(EdgeState.edge_id.in_(edge_ids)).execute()


def _alive_since() -> dt.datetime:
    return utcnow() - dt.timedelta(seconds=LIVENESS_S)


def list_edges() -> list[EdgeView]:
    """Every edge that ever connected. `connected`: its stream is open and it was heard from
    within LIVENESS_S — a stream whose end was never seen (the control plane crashed, say)
    does not keep a dead edge connected."""
    alive_since = _alive_since()
    return [
        EdgeView(
            e.edge_id,
            e.epoch,
            e.revision,
            bool(e.connected) and e.last_seen_at >= alive_since,
            e.last_seen_at,
        )
        for e in EdgeState.select().order_by(EdgeState.edge_id)
    ]


def pending(epoch: str, revision: int) -> list[str]:
    """Live edges that have not acknowledged `revision` of `epoch` yet.

    Live means heard from within LIVENESS_S, whether or not a stream is open at this instant:
    an edge whose streams keep failing (it cannot apply a change, say) reconnects and heartbeats
    between failures, still serves its old state, and so must be named. A dead edge is not.
    """
    rows = EdgeState.select(EdgeState.edge_id).where(
        (EdgeState.last_seen_at >= _alive_since())
        & ((EdgeState.epoch != epoch) | (EdgeState.revision < revision))
    )
    return sorted(r.edge_id for r in rows)
