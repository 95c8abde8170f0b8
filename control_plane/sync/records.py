"""What an edge must know, read from the store: whole snapshots and the changes since a revision,
as `Record`s (one protobuf each) that `chunks.py` packs into bounded messages.

Records are read after the head revision, so they are at least as new as the revision reported;
a change that lands in between is sent again with its own revision, and applying is idempotent.
Everything is read in keyset-paginated batches: a snapshot of a million callbacks never sits in
memory as one list.

Deployments travel once per flow (FlowRecord); callbacks name their flow. Sending them on every
callback multiplied the state by the number of environments (issue 7: 1,100 environments times
1,100 callbacks made one 72.8 MB message).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from boomerang.v1 import callback_sync_service_pb2 as sync
from control_plane import secrets
from control_plane.domain.callback_settings import origins_list
from control_plane.grpckit.convert import ts
from control_plane.store import changes
from control_plane.store.clock import utcnow
from control_plane.store.models import (
    Callback,
    Company,
    Deployment,
    Environment,
    Flow,
    hmac_secret_aad,
)

ID_BATCH = 500  # keeps IN (...) lists under every backend's parameter limit
PAGE = 2_000  # rows per keyset-paginated read of a snapshot


@dataclass(frozen=True)
class SetHeader:
    epoch: str
    revision: int
    snapshot: bool


# One unit of a set: ("callbacks" | "environments" | "flows", record) or
# ("deleted_callback_ids" | "deleted_environment_ids" | "deleted_flow_ids", id).
Item = tuple[str, object]


def _batches(ids: Iterable[str]) -> Iterator[list[str]]:
    ids = sorted(ids)
    for i in range(0, len(ids), ID_BATCH):
        yield ids[i : i + ID_BATCH]


def _callbacks(where, limit: int | None = None) -> list[sync.CallbackRecord]:
    # Plain tuples: building a peewee model per row was most of a snapshot's time.
    rows = (
        Callback.select(
            Callback.id,
            Callback.flow,
            Callback.signature_digest,
            Callback.content_type,
            Callback.timeout_ms,
            Callback.rate_limit_per_minute,
            Company.slug,
            Callback.previous_signature_digest,
            Callback.previous_signature_expires_at,
            Callback.hmac_scheme,
            Callback.hmac_secret_sealed,
            Callback.allowed_origins,
            Callback.mode,
            Callback.async_after_ms,
        )
        .join(Flow)
        .join(Company)
        .where(where)
        .order_by(Callback.id)
        .limit(limit)
        .tuples()
    )
    now = utcnow()
    out = []
    for (
        cb_id,
        flow_id,
        sig_digest,
        content_type,
        timeout_ms,
        rate_limit,
        slug,
        prev_digest,
        prev_expires,
        hmac_scheme,
        hmac_sealed,
        origins,
        mode,
        async_after_ms,
    ) in rows:
        record = sync.CallbackRecord(
            id=cb_id,
            company=slug,
            flow_id=flow_id,
            signature_digests=[bytes(sig_digest)],
            content_type=content_type,
            timeout_ms=timeout_ms,
            rate_limit_per_minute=rate_limit,
            hmac_scheme=hmac_scheme,
            # The edge computes the HMAC, so it needs the secret itself (docs/security.md).
            hmac_secret=_open_hmac_secret(cb_id, hmac_sealed),
            allowed_origins=origins_list(origins),
            mode=mode,
            async_after_ms=async_after_ms,
        )
        # Only while the grace lasts: the edge then ends it by its own clock, so it ends on
        # time even if the control plane is down by then.
        if prev_digest is not None and prev_expires is not None and prev_expires > now:
            record.previous_signature_digest = bytes(prev_digest)
            record.previous_signature_expire_time.CopyFrom(ts(prev_expires))
        out.append(record)
    return out


def _open_hmac_secret(callback_id: str, sealed) -> bytes:
    if not sealed:
        return b""
    return secrets.box().open(bytes(sealed), hmac_secret_aad(callback_id)).encode()


def _flows(where, limit: int | None = None) -> list[sync.FlowRecord]:
    query = Flow.select(Flow.id, Company.slug).join(Company).where(where).order_by(Flow.id)
    rows = list(query.limit(limit).objects())
    deployments = defaultdict(list)
    for batch in _batches(r.id for r in rows):
        query = Deployment.select().where(Deployment.flow.in_(batch))
        for d in query.order_by(Deployment.flow, Deployment.environment_id):
            deployments[d.flow_id].append(
                sync.DeploymentRecord(
                    environment_id=d.environment_id, version_id=d.version_id, enabled=d.enabled
                )
            )
    return [sync.FlowRecord(id=r.id, company=r.slug, deployments=deployments[r.id]) for r in rows]


def _environments(where, limit: int | None = None) -> list[sync.EnvironmentRecord]:
    rows = (
        Environment.select(Environment.id, Environment.url_prefix, Company.slug)
        .join(Company)
        .where(where)
        .order_by(Environment.id)
        .limit(limit)
        .objects()
    )
    return [sync.EnvironmentRecord(id=r.id, company=r.slug, url_prefix=r.url_prefix) for r in rows]


# field name -> (reader of records matching a condition, the table's id column)
_KINDS: dict[str, tuple[Callable, object]] = {
    "environments": (_environments, Environment.id),
    "flows": (_flows, Flow.id),
    "callbacks": (_callbacks, Callback.id),
}


def can_resume(epoch: str, revision: int, head: changes.Head) -> bool:
    """Continuity is provable when the edge's state came from this database and every change
    after it is still in the log."""
    if epoch != head.epoch or revision > head.revision:
        return False
    oldest = changes.oldest_retained()
    return oldest == 0 or revision >= oldest - 1


class SetReader:
    """Reads one set (a snapshot or the changes since a revision) a batch at a time.

    `header()` decides what the set is; then `next_batch()` returns the next few thousand items
    ([] at the end). Each call is a short piece of blocking database work, meant for the
    database pool, so a large snapshot never holds a connection (or a transaction) for long.
    """

    def __init__(self, epoch: str, revision: int) -> None:
        self._since = (epoch, revision)
        self._steps: Iterator[list[Item]] | None = None

    def header(self) -> SetHeader:
        head = changes.head()
        epoch, revision = self._since
        if can_resume(epoch, revision, head):
            self._steps = self._changes(revision, head.revision)
            return SetHeader(head.epoch, head.revision, snapshot=False)
        self._steps = self._snapshot()
        return SetHeader(head.epoch, head.revision, snapshot=True)

    def next_batch(self) -> list[Item]:
        assert self._steps is not None, "header() first"
        return next(self._steps, [])

    def _snapshot(self) -> Iterator[list[Item]]:
        for field, (read, id_column) in _KINDS.items():
            after = ""
            while True:
                rows = _page(read, id_column, after)
                if not rows:
                    break
                after = rows[-1].id
                yield [(field, r) for r in rows]

    def _changes(self, revision: int, upto: int) -> Iterator[list[Item]]:
        touched: dict[str, set[str]] = defaultdict(set)
        for change in changes.changes_since(revision, upto):
            touched[change.entity].add(change.entity_id)
        for field, (read, id_column) in _KINDS.items():
            entity = field[:-1]  # "callbacks" -> "callback"
            for batch in _batches(touched[entity]):
                found = read(id_column.in_(batch))
                gone = sorted(set(batch) - {r.id for r in found})
                yield [(field, r) for r in found] + [(f"deleted_{entity}_ids", i) for i in gone]


def _page(read: Callable, id_column, after: str) -> list:
    """The next PAGE records with an id above `after` (keyset pagination: no OFFSET scans)."""
    return read(id_column > after, PAGE)
