"""Concurrent creates never overshoot a quota, on every backend.

Eight threads create at once against a quota of three. The window between counting and inserting
is widened on purpose (a pause after the count), so that without the company lock every thread
would count the same rows and all of them would insert.
"""

from __future__ import annotations

import dataclasses
import threading
import time

import pytest

from control_plane.domain import (
    api_keys,
    callbacks,
    companies,
    connections,
    environments,
    flows,
    quotas,
)
from control_plane.domain.errors import DomainError
from control_plane.domain.tenancy import Principal
from control_plane.store.db import database
from control_plane.store.models import ApiKey, Callback, Connection, Environment, Flow

ADMIN = Principal(key_id="k", company_id=None)
THREADS, LIMIT = 8, 3


def _create(kind: str, flow_id: str):
    if kind == "environments":
        return lambda i: environments.create_environment(ADMIN, "acme", f"e{i}", f"e{i}")
    if kind == "flows":
        return lambda i: flows.create_flow(ADMIN, "acme", f"f{i}", None)
    if kind == "api_keys":
        return lambda i: api_keys.create_api_key(ADMIN, "acme", f"k{i}")
    if kind == "connections":
        settings = connections.Settings(base_url="https://api.example.com")
        return lambda i: connections.create_connection(
            ADMIN, "acme", dataclasses.replace(settings, name=f"c{i}")
        )
    return lambda i: callbacks.create_callback(ADMIN, flow_id, callbacks.Settings())


COUNTS = {
    "environments": lambda: Environment.select().count(),
    "flows": lambda: Flow.select().count(),
    "callbacks": lambda: Callback.select().count(),
    "connections": lambda: Connection.select().count(),
    "api_keys": lambda: ApiKey.select().where(ApiKey.company.is_null(False)).count(),
}


@pytest.mark.parametrize("kind", sorted(COUNTS))
def test_concurrent_creates_stop_at_the_quota(db, monkeypatch, kind):
    companies.create_company(ADMIN, "Acme", "acme")
    flow_id = flows.create_flow(ADMIN, "acme", "holder", None)[0].id
    used_before = COUNTS[kind]()
    quotas.set_quotas(ADMIN, "acme", quotas.Quotas(**{kind: LIMIT + used_before}), [kind])
    real = quotas.require_room

    def slow(name, limit, used):
        real(name, limit, used)
        time.sleep(0.05)  # the race window: counted, not yet inserted

    monkeypatch.setattr(quotas, "require_room", slow)
    create, start = _create(kind, flow_id), threading.Barrier(THREADS)
    outcomes: list[object] = [None] * THREADS

    def worker(i: int) -> None:
        database.connect(reuse_if_open=True)
        start.wait()
        try:
            outcomes[i] = create(i)
        except DomainError as e:
            outcomes[i] = e
        finally:
            database.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    refused = [o for o in outcomes if isinstance(o, DomainError)]
    assert len(refused) == THREADS - LIMIT
    assert {(e.reason, e.metadata["quota"]) for e in refused} == {("QUOTA_EXCEEDED", kind)}
    database.connect(reuse_if_open=True)
    assert COUNTS[kind]() == used_before + LIMIT
