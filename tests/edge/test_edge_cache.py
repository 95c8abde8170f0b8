"""Table-driven tests of applying SyncCallbacks messages to the cache, and of the LKG file."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from edge_fakes import EPOCH, callback, deployment, digest

from boomerang.v1 import callback_sync_service_pb2 as sync_pb2
from edge import lkg, signatures
from edge.cache import EMPTY, SyncProtocolError, apply

A, B, C = "01aaaaaaaaaaaaaaaaaaaaaaaa", "01bbbbbbbbbbbbbbbbbbbbbbbb", "01cccccccccccccccccccccccc"


def env(env_id: str, prefix: str, company: str = "acme") -> sync_pb2.EnvironmentRecord:
    return sync_pb2.EnvironmentRecord(id=env_id, company=company, url_prefix=prefix)


def msg(revision: int, *, snapshot: bool = False, epoch: str = EPOCH, **fields):
    return sync_pb2.SyncCallbacksResponse(
        epoch=epoch, revision=revision, snapshot=snapshot, **fields
    )


BASE = msg(
    5,
    snapshot=True,
    callbacks=[callback(A, deployment("v1")), callback(B, deployment("v2", "e1"))],
    environments=[env("e1", "uk"), env("e2", "de")],
)


@dataclass
class Case:
    name: str
    messages: list[sync_pb2.SyncCallbacksResponse]
    revision: int
    callbacks: set[tuple[str, str]]
    prefixes: dict[tuple[str, str], str]
    versions: dict[str, str] = field(default_factory=dict)  # callback id -> default version


CASES = [
    Case(
        "snapshot loads everything",
        [BASE],
        5,
        {("acme", A), ("acme", B)},
        {("acme", "uk"): "e1", ("acme", "de"): "e2"},
        {A: "v1"},
    ),
    Case(
        "snapshot replaces, not merges",
        [BASE, msg(9, snapshot=True, callbacks=[callback(C, deployment("v3"))])],
        9,
        {("acme", C)},
        {},
        {C: "v3"},
    ),
    Case(
        "changes upsert a new and a changed callback",
        [BASE, msg(6, callbacks=[callback(C), callback(A, deployment("v9"))])],
        6,
        {("acme", A), ("acme", B), ("acme", C)},
        {("acme", "uk"): "e1", ("acme", "de"): "e2"},
        {A: "v9"},
    ),
    Case(
        "changes delete callbacks and environments",
        [BASE, msg(6, deleted_callback_ids=[A, "unknown"], deleted_environment_ids=["e2"])],
        6,
        {("acme", B)},
        {("acme", "uk"): "e1"},
    ),
    Case(
        "an environment's new prefix replaces its old one",
        [BASE, msg(6, environments=[env("e1", "gb")])],
        6,
        {("acme", A), ("acme", B)},
        {("acme", "gb"): "e1", ("acme", "de"): "e2"},
    ),
    Case(
        "a callback moving company leaves no trace under the old one",
        [BASE, msg(6, callbacks=[callback(A, company="globex")])],
        6,
        {("globex", A), ("acme", B)},
        {("acme", "uk"): "e1", ("acme", "de"): "e2"},
    ),
    Case(
        "empty changes only move the revision",
        [BASE, msg(7)],
        7,
        {("acme", A), ("acme", B)},
        {("acme", "uk"): "e1", ("acme", "de"): "e2"},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_apply(case: Case) -> None:
    state = EMPTY
    for m in case.messages:
        state = apply(state, m)

    assert state.epoch == EPOCH and state.revision == case.revision
    assert {(r.company, r.id) for r in state.callbacks.values()} == case.callbacks
    assert dict(state.prefixes) == case.prefixes
    for cb_id, version in case.versions.items():
        record = state.callbacks[cb_id]
        assert state.deployment(record, "").version_id == version


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_apply_is_idempotent(case: Case) -> None:
    state = EMPTY
    for m in case.messages:
        state = apply(state, m)
    assert apply(state, case.messages[-1]) == state


def test_apply_never_mutates_the_old_state() -> None:
    before = apply(EMPTY, BASE)
    after = apply(before, msg(6, deleted_callback_ids=[A], environments=[env("e3", "fr")]))
    assert before.callback("acme", A) is not None and before.revision == 5
    assert before.environment_id("acme", "fr") is None
    assert after.callback("acme", A) is None and after.environment_id("acme", "fr") == "e3"
    with pytest.raises(TypeError):
        before.callbacks[C] = None  # type: ignore[index]


@pytest.mark.parametrize(
    "bad",
    [msg(6, epoch="other-epoch", deleted_callback_ids=[A]), msg(4, deleted_callback_ids=[A])],
    ids=["changes for another epoch", "changes older than the state"],
)
def test_changes_that_cannot_follow_are_refused(bad) -> None:
    state = apply(EMPTY, BASE)
    with pytest.raises(SyncProtocolError):
        apply(state, bad)
    assert state.callback("acme", A) is not None


def test_a_new_epoch_snapshot_is_accepted_at_any_revision() -> None:
    state = apply(apply(EMPTY, BASE), msg(1, snapshot=True, epoch="rebuilt"))
    assert (state.epoch, state.revision, dict(state.callbacks)) == ("rebuilt", 1, {})


def test_lkg_round_trip(tmp_path) -> None:
    state = apply(apply(EMPTY, BASE), msg(6, callbacks=[callback(C, deployment("v3", "e2"))]))
    path = tmp_path / "sub" / "lkg.binpb"

    lkg.save(path, state)
    loaded = lkg.load(path)

    assert loaded is not None and loaded.state == state
    assert loaded.state.callback("acme", C).deployments["e2"].version_id == "v3"
    assert list(path.parent.iterdir()) == [path]  # no temporary file left behind


def test_lkg_writes_a_change_set_as_changes_and_reloads_the_same_state(tmp_path) -> None:
    path = tmp_path / "lkg.binpb"
    store = lkg.LkgStore(path)
    base = apply(EMPTY, FLOWS_BASE)
    store.save(base, [FLOWS_BASE], EMPTY)  # a snapshot: written from its own chunks
    assert lkg.load(path).state == base
    inode = path.stat().st_ino
    changes = [
        msg(6, more=True, callbacks=[callback(C)], flows=[flow("f-a", ("", "v7"))]),
        msg(6, deleted_callback_ids=[B], deleted_flow_ids=["f-b"], environments=[env("e3", "fr")]),
    ]
    after = apply(base, changes)
    store.save(after, changes, base)
    store.close()

    assert path.stat().st_ino == inode  # written in place, not rewritten whole
    loaded = lkg.load(path)
    assert loaded is not None and loaded.state == after
    assert loaded.state.deployment(loaded.state.callbacks[A], "").version_id == "v7"


def test_lkg_rewrites_whole_when_it_does_not_hold_the_base(tmp_path) -> None:
    path = tmp_path / "lkg.binpb"
    base = apply(EMPTY, FLOWS_BASE)
    later = apply(base, msg(7, deleted_callback_ids=[A]))
    lkg.save(path, base)
    # A store that missed revision 7 (its write failed, say) is handed revision 8's changes.
    store = lkg.LkgStore(path)
    eight = msg(8, callbacks=[callback(C)])
    final = apply(later, eight)
    store.save(final, [eight], later)
    store.close()
    assert lkg.load(path).state == final


def test_lkg_missing_or_corrupt_is_no_state(tmp_path) -> None:
    assert lkg.load(tmp_path / "absent") is None
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\xff\xff\xff not a proto")
    assert lkg.load(garbage) is None
    not_snapshot = tmp_path / "changes"
    not_snapshot.write_bytes(msg(3).SerializeToString())
    assert lkg.load(not_snapshot) is None


def test_lkg_in_the_previous_format_still_loads(tmp_path) -> None:
    old = tmp_path / "lkg.binpb"
    old.write_bytes(BASE.SerializeToString())  # one snapshot message, as written before
    loaded = lkg.load(old)
    assert loaded is not None and loaded.state == apply(EMPTY, BASE)


FLOWS_BASE = msg(
    5,
    snapshot=True,
    callbacks=[
        sync_pb2.CallbackRecord(id=A, company="acme", flow_id="f-a"),
        sync_pb2.CallbackRecord(id=B, company="acme", flow_id="f-b"),
    ],
    environments=[env("e1", "uk")],
)


def flow(flow_id: str, *deployments: tuple[str, str], company: str = "acme"):
    return sync_pb2.FlowRecord(
        id=flow_id,
        company=company,
        deployments=[deployment(version, environment) for environment, version in deployments],
    )


def test_callbacks_route_through_their_flow() -> None:
    state = apply(
        EMPTY,
        msg(
            5,
            snapshot=True,
            callbacks=[
                sync_pb2.CallbackRecord(id=A, company="acme", flow_id="f-a"),
                sync_pb2.CallbackRecord(id=B, company="acme", flow_id="f-other-company"),
                sync_pb2.CallbackRecord(id=C, company="acme", flow_id="f-gone"),
            ],
            flows=[
                flow("f-a", ("", "v1"), ("e1", "v2")),
                flow("f-other-company", ("", "v9"), company="globex"),
            ],
        ),
    )
    a = state.callbacks[A]
    assert (state.deployment(a, "").version_id, state.deployment(a, "e1").version_id) == (
        "v1",
        "v2",
    )
    assert state.deployment(a, "e2") is None
    # A flow of another company never routes a callback; an unknown flow routes nowhere.
    assert state.deployment(state.callbacks[B], "") is None
    assert state.deployment(state.callbacks[C], "") is None
    # One flow change reroutes every callback of the flow.
    moved = apply(state, msg(6, flows=[flow("f-a", ("", "v3"))]))
    assert moved.deployment(moved.callbacks[A], "").version_id == "v3"
    assert moved.deployment(moved.callbacks[A], "e1") is None
    gone = apply(moved, msg(7, deleted_flow_ids=["f-a"]))
    assert gone.deployment(gone.callbacks[A], "") is None


def test_a_set_in_chunks_applies_as_one_message_would() -> None:
    whole = msg(
        6,
        callbacks=[callback(C), callback(A, deployment("v9"))],
        deleted_callback_ids=[B],
        environments=[env("e3", "fr")],
    )
    chunks = [
        msg(6, more=True, callbacks=[callback(C)]),
        msg(6, more=True, callbacks=[callback(A, deployment("v9"))]),
        msg(6, deleted_callback_ids=[B], environments=[env("e3", "fr")]),
    ]
    base = apply(EMPTY, BASE)
    assert apply(base, chunks) == apply(base, whole)


def test_chunks_of_different_sets_are_refused() -> None:
    with pytest.raises(SyncProtocolError):
        apply(apply(EMPTY, BASE), [msg(6, more=True), msg(7)])
    with pytest.raises(SyncProtocolError):
        apply(EMPTY, [msg(6, snapshot=True, more=True), msg(6)])


@pytest.mark.parametrize(
    ("signature", "digests", "ok"),
    [
        ("s" * 52, (digest("s" * 52),), True),
        ("s" * 52, (digest("t" * 52), digest("s" * 52)), True),
        ("t" * 52, (digest("s" * 52),), False),
        ("s" * 51, (digest("s" * 52),), False),
        ("s" * 52, (), False),
        ("s" * 52, None, False),  # unknown callback
    ],
)
def test_signature_matches(signature, digests, ok) -> None:
    assert signatures.matches(signature, digests) is ok
