"""What an edge must know, built from the store: snapshots and changes since a revision.

Records are read after the head revision, so they are at least as new as the revision reported;
a change that lands in between is sent again with its own revision, and applying is idempotent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from boomerang.v1 import callback_sync_service_pb2 as sync
from control_plane.store import changes
from control_plane.store.models import Callback, Company, Deployment, Environment, Flow

CHUNK = 500  # keeps IN (...) lists under every backend's parameter limit


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for i in range(0, len(ids), CHUNK):
        yield ids[i : i + CHUNK]


def _callback_records(where=None) -> list[sync.CallbackRecord]:
    q = (
        Callback.select(
            Callback.id,
            Callback.flow,
            Callback.signature_digest,
            Callback.content_type,
            Callback.timeout_ms,
            Callback.rate_limit_per_minute,
            Company.slug,
        )
        .join(Flow)
        .join(Company)
        .order_by(Callback.id)
        .objects()
    )
    rows = list(q if where is None else q.where(where))
    flow_ids = sorted({r.flow_id for r in rows})
    deployments = defaultdict(list)
    for chunk in _chunks(flow_ids):
        for d in Deployment.select().where(Deployment.flow.in_(chunk)):
            deployments[d.flow_id].append(
                sync.DeploymentRecord(
                    environment_id=d.environment_id, version_id=d.version_id, enabled=d.enabled
                )
            )
    return [
        sync.CallbackRecord(
            id=r.id,
            company=r.slug,
            flow_id=r.flow_id,
            signature_digests=[bytes(r.signature_digest)],
            content_type=r.content_type,
            timeout_ms=r.timeout_ms,
            rate_limit_per_minute=r.rate_limit_per_minute,
            deployments=deployments[r.flow_id],
        )
        for r in rows
    ]


def _environment_records(where=None) -> list[sync.EnvironmentRecord]:
    q = (
        Environment.select(Environment.id, Environment.url_prefix, Company.slug)
        .join(Company)
        .order_by(Environment.id)
        .objects()
    )
    rows = q if where is None else q.where(where)
    return [sync.EnvironmentRecord(id=r.id, company=r.slug, url_prefix=r.url_prefix) for r in rows]


def snapshot() -> sync.SyncCallbacksResponse:
    head = changes.head()
    return sync.SyncCallbacksResponse(
        epoch=head.epoch,
        revision=head.revision,
        snapshot=True,
        callbacks=_callback_records(),
        environments=_environment_records(),
    )


def can_resume(epoch: str, revision: int, head: changes.Head) -> bool:
    """Continuity is provable when the edge's state came from this database and every change
    after it is still in the log."""
    if epoch != head.epoch or revision > head.revision:
        return False
    oldest = changes.oldest_retained()
    return oldest == 0 or revision >= oldest - 1


def since(epoch: str, revision: int) -> sync.SyncCallbacksResponse:
    """Changes after `revision`, or a snapshot when they cannot be proven complete."""
    head = changes.head()
    if not can_resume(epoch, revision, head):
        return snapshot()
    touched: dict[str, set[str]] = defaultdict(set)
    for change in changes.changes_since(revision, head.revision):
        touched[change.entity].add(change.entity_id)
    callback_ids = set(touched["callback"])
    for chunk in _chunks(sorted(touched["flow"])):
        callback_ids.update(
            c.id for c in Callback.select(Callback.id).where(Callback.flow.in_(chunk))
        )
    records: list[sync.CallbackRecord] = []
    for chunk in _chunks(sorted(callback_ids)):
        records += _callback_records(Callback.id.in_(chunk))
    environments: list[sync.EnvironmentRecord] = []
    for chunk in _chunks(sorted(touched["environment"])):
        environments += _environment_records(Environment.id.in_(chunk))
    return sync.SyncCallbacksResponse(
        epoch=head.epoch,
        revision=head.revision,
        snapshot=False,
        callbacks=records,
        deleted_callback_ids=sorted(callback_ids - {r.id for r in records}),
        environments=environments,
        deleted_environment_ids=sorted(touched["environment"] - {e.id for e in environments}),
    )
