"""The edge's in-memory view of callbacks and environments (docs/design.md §3, "Edge cache").

A `CacheState` is immutable: applying a SyncCallbacks message builds a new one, and the holder
(`CallbackCache`) swaps the reference whole, so a request sees either the state before a message
or after it, never half of it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from boomerang.v1 import callback_sync_service_pb2 as sync_pb2


class SyncProtocolError(ValueError):
    """A message that cannot follow the state it would apply to."""


@dataclass(frozen=True, slots=True)
class DeploymentRecord:
    #: Empty for the default environment.
    environment_id: str
    version_id: str
    enabled: bool


@dataclass(frozen=True, slots=True)
class CallbackRecord:
    id: str
    company: str
    flow_id: str
    #: SHA-256 digests of the accepted signatures.
    signature_digests: tuple[bytes, ...]
    content_type: str
    timeout_ms: int
    #: 0: unlimited (edge/rate_limits.py).
    rate_limit_per_minute: int
    #: Environment id ("" for the default environment) -> deployment.
    deployments: Mapping[str, DeploymentRecord]

    @classmethod
    def from_proto(cls, m: sync_pb2.CallbackRecord) -> CallbackRecord:
        deployments = {
            d.environment_id: DeploymentRecord(d.environment_id, d.version_id, d.enabled)
            for d in m.deployments
        }
        return cls(
            id=m.id,
            company=m.company,
            flow_id=m.flow_id,
            signature_digests=tuple(m.signature_digests),
            content_type=m.content_type,
            timeout_ms=m.timeout_ms,
            rate_limit_per_minute=m.rate_limit_per_minute,
            deployments=MappingProxyType(deployments),
        )

    def to_proto(self) -> sync_pb2.CallbackRecord:
        return sync_pb2.CallbackRecord(
            id=self.id,
            company=self.company,
            flow_id=self.flow_id,
            signature_digests=self.signature_digests,
            content_type=self.content_type,
            timeout_ms=self.timeout_ms,
            rate_limit_per_minute=self.rate_limit_per_minute,
            deployments=[
                sync_pb2.DeploymentRecord(
                    environment_id=d.environment_id, version_id=d.version_id, enabled=d.enabled
                )
                for d in self.deployments.values()
            ],
        )


@dataclass(frozen=True, slots=True)
class EnvironmentRecord:
    id: str
    company: str
    url_prefix: str

    @classmethod
    def from_proto(cls, m: sync_pb2.EnvironmentRecord) -> EnvironmentRecord:
        return cls(id=m.id, company=m.company, url_prefix=m.url_prefix)

    def to_proto(self) -> sync_pb2.EnvironmentRecord:
        return sync_pb2.EnvironmentRecord(
            id=self.id, company=self.company, url_prefix=self.url_prefix
        )


def _frozen(d: dict) -> Mapping:
    return MappingProxyType(d)


@dataclass(frozen=True, slots=True)
class CacheState:
    """Everything the edge knows at one (epoch, revision). Never mutated."""

    epoch: str = ""
    revision: int = 0
    #: (company, callback id) -> record.
    callbacks: Mapping[tuple[str, str], CallbackRecord] = field(default_factory=dict)
    #: (company, url prefix) -> environment id.
    prefixes: Mapping[tuple[str, str], str] = field(default_factory=dict)
    #: environment id -> record.
    environments: Mapping[str, EnvironmentRecord] = field(default_factory=dict)
    #: callback id -> company: deletions name callbacks by id only.
    callback_companies: Mapping[str, str] = field(default_factory=dict)

    def callback(self, company: str, callback_id: str) -> CallbackRecord | None:
        return self.callbacks.get((company, callback_id))

    def environment_id(self, company: str, url_prefix: str) -> str | None:
        return self.prefixes.get((company, url_prefix))

    def to_proto(self) -> sync_pb2.SyncCallbacksResponse:
        """The whole state as one snapshot message (the last-known-good file format)."""
        return sync_pb2.SyncCallbacksResponse(
            epoch=self.epoch,
            revision=self.revision,
            snapshot=True,
            callbacks=[c.to_proto() for c in self.callbacks.values()],
            environments=[e.to_proto() for e in self.environments.values()],
        )


EMPTY = CacheState()


def apply(state: CacheState, message: sync_pb2.SyncCallbacksResponse) -> CacheState:
    """The state after `message`: a snapshot replaces everything, changes upsert then delete.

    Idempotent: applying the same message twice gives the same state. Changes must carry the
    state's epoch and must not go back in revision (the stream is in revision order; going back
    would reinstate older records): those raise SyncProtocolError and leave `state` as it was.
    """
    if message.snapshot:
        base_callbacks: dict[tuple[str, str], CallbackRecord] = {}
        base_environments: dict[str, EnvironmentRecord] = {}
        companies: dict[str, str] = {}
    else:
        if message.epoch != state.epoch:
            raise SyncProtocolError(
                f"changes for epoch {message.epoch!r} cannot apply to epoch {state.epoch!r}"
            )
        if message.revision < state.revision:
            raise SyncProtocolError(
                f"changes at revision {message.revision} are older than {state.revision}"
            )
        base_callbacks = dict(state.callbacks)
        base_environments = dict(state.environments)
        companies = dict(state.callback_companies)

    for m in message.callbacks:
        record = CallbackRecord.from_proto(m)
        old_company = companies.get(record.id)
        if old_company is not None:
            base_callbacks.pop((old_company, record.id), None)
        base_callbacks[(record.company, record.id)] = record
        companies[record.id] = record.company
    for callback_id in message.deleted_callback_ids:
        company = companies.pop(callback_id, None)
        if company is not None:
            del base_callbacks[(company, callback_id)]

    for m in message.environments:
        base_environments[m.id] = EnvironmentRecord.from_proto(m)
    for environment_id in message.deleted_environment_ids:
        base_environments.pop(environment_id, None)

    prefixes = {(e.company, e.url_prefix): e.id for e in base_environments.values()}
    return CacheState(
        epoch=message.epoch,
        revision=message.revision,
        callbacks=_frozen(base_callbacks),
        prefixes=_frozen(prefixes),
        environments=_frozen(base_environments),
        callback_companies=_frozen(companies),
    )


class CallbackCache:
    """Holds the current state and how recently the control plane confirmed it.

    `live` is true while the change stream is up and has delivered its authoritative first
    message: the control plane would push any change, so the state is current. When the stream
    drops, `confirmed_at` records that moment; a staleness limit counts from there. Times are wall
    clock so that a state loaded from disk can be dated by its file.
    """

    __slots__ = ("confirmed_at", "live", "state")

    def __init__(self) -> None:
        self.state: CacheState | None = None
        self.confirmed_at: float = 0.0
        self.live: bool = False

    def install(self, state: CacheState, *, confirmed_at: float, live: bool) -> None:
        self.state = state
        self.confirmed_at = confirmed_at
        self.live = live

    def mark_down(self) -> None:
        """The change stream dropped: the state was current until now."""
        if self.live:
            self.live = False
            self.confirmed_at = time.time()

    def usable(self, staleness_limit_s: float) -> CacheState | None:
        """The state to serve from, or None (not loaded yet, or stale beyond the limit)."""
        state = self.state
        if state is None or self.live or staleness_limit_s <= 0:
            return state
        if time.time() - self.confirmed_at > staleness_limit_s:
            return None
        return state
