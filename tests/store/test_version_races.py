"""Deploys and draft edits of one flow racing each other, on every backend.

Runners cache deployed versions by id forever (docs/design.md §2), so a version must never change
once deployed — even when a draft edit was already under way as the deploy froze that draft. The
races are made deterministic by pausing the first writer inside its transaction (after it has
read the flow) until the second writer has committed, or for at most PAUSE_S when the backend
makes the second writer wait for the first (which is the correct outcome).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from control_plane.domain import companies, environments, flows
from control_plane.domain.errors import DomainError
from control_plane.domain.tenancy import Principal
from control_plane.store.db import database
from control_plane.store.models import FlowVersion
from tests.api.helpers import CALLBACK_FLOW

ADMIN = Principal(key_id="k", company_id=None)
PAUSE_S = 0.5
EDITED = {"shapes": [{"id": "trigger", "type": "trigger"}, {"id": "reply", "type": "callback"}]}


def _race(monkeypatch, first: Callable[[], object], second: Callable[[], object]) -> list:
    """Runs `first` until it looks up a version inside its transaction, then `second`
    to completion, then lets `first` go on. Returns what each returned (or raised)."""
    first_inside, second_done = threading.Event(), threading.Event()
    results: list = [None, None]
    real = flows._version

    def pausing(flow, number):
        row = real(flow, number)
        if threading.current_thread().name == "first" and not first_inside.is_set():
            first_inside.set()
            second_done.wait(PAUSE_S)
        return row

    monkeypatch.setattr(flows, "_version", pausing)

    def run(i: int, fn: Callable[[], object], done: threading.Event | None) -> None:
        database.connect(reuse_if_open=True)
        try:
            results[i] = fn()
        except Exception as e:  # compared by the test
            results[i] = e
        finally:
            database.close()
            if done is not None:
                done.set()

    a = threading.Thread(target=run, args=(0, first, None), name="first")
    a.start()
    assert first_inside.wait(10)
    b = threading.Thread(target=run, args=(1, second, second_done), name="second")
    b.start()
    for t in (a, b):
        t.join(30)
    return results


@pytest.fixture
def flow_id(db) -> str:
    companies.create_company(ADMIN, "Acme", "acme")
    return flows.create_flow(ADMIN, "acme", "f", CALLBACK_FLOW)[0].id


def _definitions(flow_id: str) -> dict[int, dict]:
    return {
        v.number: json.loads(v.definition)
        for v in FlowVersion.select().where(FlowVersion.flow == flow_id)
    }


def test_a_draft_edit_racing_a_deploy_never_changes_the_deployed_version(monkeypatch, flow_id):
    edited, deployed = _race(
        monkeypatch,
        lambda: flows.update_draft(ADMIN, flow_id, EDITED, 0),
        lambda: flows.deploy_version(ADMIN, flow_id, 0, "", False),
    )

    assert not isinstance(edited, Exception) and not isinstance(deployed, Exception)
    _, version, draft = deployed
    frozen = json.loads(version.version.definition)  # what a runner may have cached
    stored = _definitions(flow_id)
    assert stored[version.version.number] == frozen  # never changed after the deploy
    assert stored[draft.version.number] == EDITED  # and the edit was not lost
    assert flows.get_flow(ADMIN, flow_id).draft_number == draft.version.number == 2


def test_two_deploys_of_one_draft_racing_both_succeed(monkeypatch, flow_id):
    ve = environments.create_environment(ADMIN, "acme", "VE", "ve").id
    first, second = _race(
        monkeypatch,
        lambda: flows.deploy_version(ADMIN, flow_id, 0, "", False),
        lambda: flows.deploy_version(ADMIN, flow_id, 0, ve, False),
    )

    assert not isinstance(first, Exception) and not isinstance(second, Exception)
    assert sorted([first[1].version.number, second[1].version.number]) == [1, 2]
    assert [(v.version.number, v.state) for v in flows.list_versions(ADMIN, flow_id)[0]] == [
        (3, flows.DRAFT),
        (2, flows.DEPLOYED),
        (1, flows.DEPLOYED),
    ]


def test_a_deploy_racing_the_deletion_of_its_environment_leaves_no_dangling_deployment(
    monkeypatch, flow_id
):
    ve = environments.create_environment(ADMIN, "acme", "VE", "ve").id
    deployed, deleted = _race(
        monkeypatch,
        lambda: flows.deploy_version(ADMIN, flow_id, 0, ve, False),
        lambda: environments.delete_environment(ADMIN, ve),
    )

    assert not isinstance(deployed, Exception)
    assert isinstance(deleted, DomainError) and deleted.reason == "ENVIRONMENT_IN_USE"
    assert [e.id for e in environments.list_environments(ADMIN, "acme", 0, "")[0]] == [ve]
    assert [d.environment_id for d in flows.list_deployments(ADMIN, flow_id)] == [ve]
