"""The run queue and retention, on every backend: claims take only expired leases and count
attempts, two runners never claim the same run (SKIP LOCKED on PostgreSQL), renew and release
move leases, pruning removes only ended runs past retention, and the version cache is bounded."""

from __future__ import annotations

import datetime as dt
import threading

import peewee
import pytest
from playhouse.db_url import parse

from control_plane.domain.ids import new_id
from control_plane.runs import queue
from control_plane.runs.retention import prune_runs
from control_plane.runs.versions import LoadedVersion, VersionCache
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import Company, Run, RunTask
from tests.api.helpers import insert_run


def _company() -> str:
    company = Company.create(id=new_id(), slug=f"c{new_id()[-8:]}", name="c", created_at=utcnow())
    return company.id


def _task(company_id: str, *, lane: int = 1, owner: str = "dead", lease_s: float = -1, **run):
    run_id = insert_run(company_id, new_id(), status="responded", **run)
    RunTask.create(
        run=run_id,
        company_id=company_id,
        lane=lane,
        state="{}",
        owner=owner,
        lease_until=utcnow() + dt.timedelta(seconds=lease_s),
        attempts=1,
        updated_at=utcnow(),
    )
    return run_id


def test_claim_takes_expired_leases_only_and_counts_attempts(db) -> None:
    company = _company()
    expired = _task(company)
    _task(company, owner="alive", lease_s=60)
    claimed = queue.claim("me", 10, 50)
    assert [c.record.id for c in claimed] == [expired]
    assert claimed[0].record.attempts == 2 and claimed[0].lane == 1
    task = RunTask.get(RunTask.run == expired)
    assert task.owner == "me" and task.lease_until > utcnow()
    assert queue.claim("other", 10, 50) == []  # now leased by "me"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_claim_that_finds_nothing_expired_takes_no_write_lock(db, db_url) -> None:
    _task(_company(), owner="alive", lease_s=60)
    holder = peewee.SqliteDatabase(db_url.removeprefix("sqlite:///"))
    holder.connect()
    holder.execute_sql("BEGIN IMMEDIATE")  # a journal's commit, say
    database.execute_sql("PRAGMA busy_timeout = 100")  # waiting for it would fail the test
    try:
        assert queue.claim("me", 10, 50) == []
    finally:
        database.execute_sql("PRAGMA busy_timeout = 10000")
        holder.execute_sql("ROLLBACK")
        holder.close()


def test_two_runners_never_claim_the_same_run(db) -> None:
    company = _company()
    ids = {_task(company) for _ in range(40)}
    got: dict[str, list[str]] = {}

    def claimer(name: str) -> None:
        database.connect(reuse_if_open=True)
        taken = []
        while batch := queue.claim(name, 30, 3):
            taken += [c.record.id for c in batch]
        got[name] = taken
        database.close()

    threads = [threading.Thread(target=claimer, args=(f"r{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    database.connect(reuse_if_open=True)
    assert sorted(got["r0"] + got["r1"]) == sorted(ids)  # each exactly once
    assert not set(got["r0"]) & set(got["r1"])


def test_renew_and_release(db) -> None:
    company = _company()
    run_id = _task(company, owner="me", lease_s=1)
    assert queue.owned("me", [run_id, "another"]) == {run_id}
    assert queue.renew("me", 60, skip=[run_id]) == 0  # a run the runner gave up on
    assert queue.renew("me", 60) == 1
    assert RunTask.get(RunTask.run == run_id).lease_until > utcnow() + dt.timedelta(seconds=30)
    assert queue.release("me") == 1
    task = RunTask.get(RunTask.run == run_id)
    assert task.owner == "" and task.lease_until < utcnow()
    assert [c.record.id for c in queue.claim("next", 10, 5)] == [run_id]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_renew_skips_a_row_a_flush_holds_instead_of_waiting_for_it(db, db_url) -> None:
    """The runner's journal flush (another database thread) may hold some of its task rows
    while the lease renewal runs. Renewal used to wait for them, and the flush for the rows
    renewal held: a deadlock, which PostgreSQL broke by failing the flush's runs."""
    company = _company()
    held = _task(company, owner="me", lease_s=1)
    other = _task(company, owner="me", lease_s=1)
    flush = peewee.PostgresqlDatabase(None)
    flush.init(**parse(db_url))
    flush.connect()
    flush.execute_sql("BEGIN")
    flush.execute_sql('UPDATE "run_task" SET "state" = %s WHERE "run_id" = %s', ("{}", held))
    renewed: list[int] = []

    def renew() -> None:
        database.connect(reuse_if_open=True)
        renewed.append(queue.renew("me", 60))
        database.close()

    thread = threading.Thread(target=renew, daemon=True)
    thread.start()
    thread.join(5)
    waited = thread.is_alive()
    flush.execute_sql("ROLLBACK")  # lets a renewal that waited finish, so the test ends
    thread.join(5)
    flush.close()
    database.connect(reuse_if_open=True)
    assert not waited, "renew waited for the row the flush holds"
    assert renewed == [1]
    lease = {t.run_id: t.lease_until for t in RunTask.select()}
    assert lease[other] > utcnow() + dt.timedelta(seconds=30)
    assert lease[held] < utcnow() + dt.timedelta(seconds=30)  # left to the flush
    assert queue.renew("me", 60) == 2  # the next pass takes it


def test_retention_prunes_only_ended_runs_past_it(db) -> None:
    company = _company()
    now = utcnow()
    old = insert_run(company, new_id(), ended_at=now - dt.timedelta(days=40))
    recent = insert_run(company, new_id(), ended_at=now - dt.timedelta(days=1))
    running = insert_run(company, new_id(), status="running", ended_at=None)
    assert prune_runs(now - dt.timedelta(days=30), batch=1) == 1
    left = {r.id for r in Run.select(Run.id)}
    assert old not in left and {recent, running} <= left


def test_version_cache_keeps_the_most_recently_used() -> None:
    cache = VersionCache(capacity=2)
    for name in "ab":
        cache.keep(LoadedVersion(name, "f", "c", None, ""))  # type: ignore[arg-type]
    assert cache.get("a") is not None  # used: "b" is now the least recently used
    cache.keep(LoadedVersion("c", "f", "c", None, ""))  # type: ignore[arg-type]
    assert len(cache) == 2 and cache.get("b") is None
    assert cache.get("a") is not None and cache.get("c") is not None
