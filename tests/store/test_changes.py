"""Change records: what edges are told, and that it is told in the write's own transaction.

Every mutation an edge must know about writes exactly the expected Change rows (entity,
entity_id), each from inside the write transaction, so a failure anywhere in the write leaves
neither the change nor its revision behind. Reads, failed mutations and mutations edges do not
care about (drafts, keys, new companies and flows) write none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from control_plane.domain import (
    api_keys,
    callbacks,
    companies,
    environments,
    flows,
    runs,
)
from control_plane.domain.callbacks import Settings
from control_plane.domain.errors import DomainError
from control_plane.domain.ids import new_id
from control_plane.domain.tenancy import Principal
from control_plane.store import changes
from control_plane.store.db import database
from control_plane.store.models import Change
from tests.api.helpers import CALLBACK_FLOW, database_state

ADMIN = Principal(key_id="k", company_id=None)
WRITERS = (callbacks, companies, environments, flows)  # the modules that call record_change


@dataclass
class World:
    flow: str  # v1 deployed on the default environment, v2 on "ve"; draft v3
    other_flow: str  # never deployed
    ve: str
    spare: str  # a VE nothing is deployed to
    callbacks: list[str]  # two on `flow`
    other_callback: str  # on `other_flow`
    key: str


def _world() -> World:
    companies.create_company(ADMIN, "Acme", "acme")
    ve = environments.create_environment(ADMIN, "acme", "VE", "ve").id
    spare = environments.create_environment(ADMIN, "acme", "Spare", "spare").id
    flow = flows.create_flow(ADMIN, "acme", "f", CALLBACK_FLOW)[0].id
    other = flows.create_flow(ADMIN, "acme", "g", CALLBACK_FLOW)[0].id
    flows.deploy_version(ADMIN, flow, 0, "", False)
    flows.deploy_version(ADMIN, flow, 0, ve, False)
    cbs = [callbacks.create_callback(ADMIN, flow, Settings()).id for _ in range(2)]
    other_cb = callbacks.create_callback(ADMIN, other, Settings()).id
    key = api_keys.create_api_key(ADMIN, "acme", "k")[0].id
    return World(flow, other, ve, spare, cbs, other_cb, key)


@dataclass(frozen=True)
class Mutation:
    name: str
    run: Callable[[World], object]
    # (world, what `run` returned) -> the (entity, entity_id) rows expected. Their order within
    # one write means nothing (all commit together), so they are compared sorted.
    changes: Callable[[World, object], list[tuple[str, str]]]


EDGE_MUTATIONS = [
    Mutation(
        "create callback",
        lambda w: callbacks.create_callback(ADMIN, w.flow, Settings()).id,
        lambda w, new: [("callback", new)],
    ),
    Mutation(
        "update callback",
        lambda w: callbacks.update_callback(
            ADMIN, w.callbacks[0], Settings(timeout_ms=5), ["timeout_ms"]
        ),
        lambda w, _: [("callback", w.callbacks[0])],
    ),
    Mutation(
        "regenerate signature",
        lambda w: callbacks.regenerate_signature(ADMIN, w.callbacks[1]),
        lambda w, _: [("callback", w.callbacks[1])],
    ),
    Mutation(
        "delete callback",
        lambda w: callbacks.delete_callback(ADMIN, w.callbacks[0]),
        lambda w, _: [("callback", w.callbacks[0])],
    ),
    Mutation(
        "deploy draft",
        lambda w: flows.deploy_version(ADMIN, w.other_flow, 0, "", False),
        lambda w, _: [("flow", w.other_flow)],
    ),
    Mutation(
        "deploy old version to a VE",
        lambda w: flows.deploy_version(ADMIN, w.flow, 1, w.spare, True),
        lambda w, _: [("flow", w.flow)],
    ),
    Mutation(
        "disable deployment",
        lambda w: flows.set_deployment_enabled(ADMIN, w.flow, w.ve, False),
        lambda w, _: [("flow", w.flow)],
    ),
    Mutation(
        "delete deployment",
        lambda w: flows.delete_deployment(ADMIN, w.flow, ""),
        lambda w, _: [("flow", w.flow)],
    ),
    Mutation(
        "create environment",
        lambda w: environments.create_environment(ADMIN, "acme", "New", "new").id,
        lambda w, new: [("environment", new)],
    ),
    Mutation(
        "delete environment",
        lambda w: environments.delete_environment(ADMIN, w.spare),
        lambda w, _: [("environment", w.spare)],
    ),
    Mutation(
        "delete flow",
        lambda w: flows.delete_flow(ADMIN, w.flow),
        lambda w, _: [("callback", c) for c in w.callbacks] + [("flow", w.flow)],
    ),
    Mutation(
        "delete company",
        lambda w: companies.delete_company(ADMIN, "acme"),
        lambda w, _: (
            [("callback", c) for c in [*w.callbacks, w.other_callback]]
            + [("environment", e) for e in (w.ve, w.spare)]
            + [("flow", f) for f in (w.flow, w.other_flow)]
        ),
    ),
]

# Nothing an edge serves changes.
SILENT_MUTATIONS = [
    Mutation(
        "enable an enabled deployment",
        lambda w: flows.set_deployment_enabled(ADMIN, w.flow, w.ve, True),
        lambda w, _: [],
    ),
    Mutation(
        "create company",
        lambda w: companies.create_company(ADMIN, "Other", "other"),
        lambda w, _: [],
    ),
    Mutation("create flow", lambda w: flows.create_flow(ADMIN, "acme", "h", None), lambda w, _: []),
    Mutation(
        "update draft",
        lambda w: flows.update_draft(ADMIN, w.flow, CALLBACK_FLOW, 0),
        lambda w, _: [],
    ),
    Mutation(
        "create api key", lambda w: api_keys.create_api_key(ADMIN, "acme", "k2"), lambda w, _: []
    ),
    Mutation("revoke api key", lambda w: api_keys.revoke_api_key(ADMIN, w.key), lambda w, _: []),
]
MUTATIONS = EDGE_MUTATIONS + SILENT_MUTATIONS

READS = [
    ("get company", lambda w: companies.get_company(ADMIN, "acme")),
    ("list companies", lambda w: companies.list_companies(ADMIN, 0, "")),
    ("get environment", lambda w: environments.get_environment(ADMIN, w.ve)),
    ("list environments", lambda w: environments.list_environments(ADMIN, "acme", 0, "")),
    ("get flow", lambda w: flows.get_flow(ADMIN, w.flow)),
    ("list flows", lambda w: flows.list_flows(ADMIN, "acme", 0, "")),
    ("get draft", lambda w: flows.get_draft(ADMIN, w.flow)),
    ("list versions", lambda w: flows.list_versions(ADMIN, w.flow)),
    ("get version", lambda w: flows.get_version(ADMIN, w.flow, 1)),
    ("list deployments", lambda w: flows.list_deployments(ADMIN, w.flow)),
    ("get callback", lambda w: callbacks.get_callback(ADMIN, w.callbacks[0])),
    ("list callbacks", lambda w: callbacks.list_callbacks(ADMIN, w.flow, 0, "")),
    ("callback urls", lambda w: callbacks.callback_urls(ADMIN, "http://e", w.callbacks[0], w.ve)),
    ("list api keys", lambda w: api_keys.list_api_keys(ADMIN, "", 0, "")),
    ("list runs", lambda w: runs.list_runs(ADMIN, "acme")),
]

FAILED = [
    (
        "create callback, bad timeout",
        lambda w: callbacks.create_callback(ADMIN, w.flow, Settings(timeout_ms=-1)),
    ),
    (
        "update callback, bad mask",
        lambda w: callbacks.update_callback(ADMIN, w.callbacks[0], Settings(), ["nope"]),
    ),
    ("regenerate, no such callback", lambda w: callbacks.regenerate_signature(ADMIN, new_id())),
    ("delete callback, no such callback", lambda w: callbacks.delete_callback(ADMIN, new_id())),
    ("deploy, already deployed", lambda w: flows.deploy_version(ADMIN, w.flow, 1, "", False)),
    ("deploy, no such version", lambda w: flows.deploy_version(ADMIN, w.flow, 9, "", False)),
    (
        "deploy, no such environment",
        lambda w: flows.deploy_version(ADMIN, w.flow, 0, new_id(), False),
    ),
    (
        "disable, no deployment there",
        lambda w: flows.set_deployment_enabled(ADMIN, w.flow, w.spare, False),
    ),
    ("delete deployment, none there", lambda w: flows.delete_deployment(ADMIN, w.other_flow, "")),
    (
        "create environment, prefix taken",
        lambda w: environments.create_environment(ADMIN, "acme", "X", "ve"),
    ),
    ("delete environment in use", lambda w: environments.delete_environment(ADMIN, w.ve)),
    ("delete flow, no such flow", lambda w: flows.delete_flow(ADMIN, new_id())),
    ("delete company, no such company", lambda w: companies.delete_company(ADMIN, "nope")),
    (
        "delete company, company key",
        lambda w: companies.delete_company(Principal("k", "x"), "acme"),
    ),
    (
        "update draft, version immutable",
        lambda w: flows.update_draft(ADMIN, w.flow, CALLBACK_FLOW, 1),
    ),
]


def _written_since(revision: int) -> list[tuple[int, str, str]]:
    return [
        (c.revision, c.entity, c.entity_id)
        for c in Change.select().where(Change.revision > revision).order_by(Change.revision)
    ]


@pytest.fixture
def recorded(monkeypatch) -> list[tuple[str, str, bool]]:
    """Every record_change call: (entity, entity_id, inside a transaction?)."""
    calls: list[tuple[str, str, bool]] = []
    real = changes.record_change

    def recording(entity: str, entity_id: str) -> int:
        calls.append((entity, entity_id, database.in_transaction()))
        return real(entity, entity_id)

    for module in WRITERS:
        monkeypatch.setattr(module, "record_change", recording)
    return calls


@pytest.mark.parametrize("m", MUTATIONS, ids=[m.name for m in MUTATIONS])
def test_a_mutation_writes_exactly_its_changes(db, m, recorded):
    w = _world()
    head = changes.head().revision
    recorded.clear()

    result = m.run(w)

    expected = m.changes(w, result)
    assert sorted((e, i) for _, e, i in _written_since(head)) == sorted(expected)
    assert [rev for rev, _, _ in _written_since(head)] == list(
        range(head + 1, head + 1 + len(expected))
    )
    assert changes.head().revision == head + len(expected)
    assert all(in_tx for _, _, in_tx in recorded), "record_change outside the write transaction"


class Boom(Exception):
    pass


@pytest.mark.parametrize("m", EDGE_MUTATIONS, ids=[m.name for m in EDGE_MUTATIONS])
def test_a_write_failing_after_its_change_leaves_nothing(db, m, monkeypatch):
    """The change and the write it describes commit together or not at all."""
    w = _world()
    before = database_state()
    real = changes.record_change

    def failing(entity: str, entity_id: str) -> int:
        real(entity, entity_id)
        raise Boom

    for module in WRITERS:
        monkeypatch.setattr(module, "record_change", failing)

    with pytest.raises(Boom):
        m.run(w)

    assert database_state() == before


@pytest.mark.parametrize("name, read", READS, ids=[n for n, _ in READS])
def test_a_read_writes_nothing(db, name, read):
    w = _world()
    before = database_state()
    read(w)
    assert database_state() == before


@pytest.mark.parametrize("name, mutation", FAILED, ids=[n for n, _ in FAILED])
def test_a_failed_mutation_writes_nothing(db, name, mutation):
    w = _world()
    before = database_state()
    with pytest.raises(DomainError):
        mutation(w)
    assert database_state() == before
