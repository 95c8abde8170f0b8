"""Table-driven tests of applying SyncCallbacks messages to the cache, and of the LKG file."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from edge_fakes import EPOCH, callback, deployment, digest

from boomerang.v1 import callback_sync_service_pb2 as sync_pb2
from edge import lkg, signatures
from edge.cache import EMPTY, CacheState, SyncProtocolError, apply

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
    assert set(state.callbacks) == case.callbacks
    assert dict(state.prefixes) == case.prefixes
    for cb_id, version in case.versions.items():
        record = next(r for r in state.callbacks.values() if r.id == cb_id)
        assert record.deployments[""].version_id == version


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
        before.callbacks[("acme", C)] = None  # type: ignore[index]


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
    raw = sync_pb2.SyncCallbacksResponse.FromString(path.read_bytes())
    assert raw.snapshot and raw.revision == 6


def test_lkg_missing_or_corrupt_is_no_state(tmp_path) -> None:
    assert lkg.load(tmp_path / "absent") is None
    garbage = tmp_path / "garbage"
    garbage.write_bytes(b"\xff\xff\xff not a proto")
    assert lkg.load(garbage) is None
    not_snapshot = tmp_path / "changes"
    not_snapshot.write_bytes(msg(3).SerializeToString())
    assert lkg.load(not_snapshot) is None


def test_empty_state_serializes_as_an_empty_snapshot() -> None:
    assert apply(EMPTY, CacheState().to_proto()) == EMPTY


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
