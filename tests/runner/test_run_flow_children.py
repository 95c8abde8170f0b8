"""run_flow's children in the store, on every backend (runs/children.py): a child is queued
unowned for any runner with its parent's bucket and the shape's variables past its trigger;
starting it again finds it; and it is refused for another company's flow, a flow not deployed
or not enabled in the parent's environment, a chain too deep, and too many pending children."""

from __future__ import annotations

import json

import pytest

from control_plane.domain.ids import new_id
from control_plane.engine import RunInput
from control_plane.engine.run_flow import MAX_DEPTH, RunFlowRefused
from control_plane.runs import children, queue
from control_plane.runs.lifecycle import RunRecord
from control_plane.store.clock import utcnow
from control_plane.store.models import Company, Deployment, Flow, FlowVersion, Run, RunTask

DEFINITION = json.dumps({"shapes": [{"id": "t", "type": "trigger"}]})


def _company() -> str:
    return Company.create(id=new_id(), slug=f"c{new_id()[-8:]}", name="c", created_at=utcnow()).id


def _flow(company: str, environment_id: str = "", enabled: bool = True, deployed: bool = True):
    now = utcnow()
    flow = Flow.create(id=new_id(), company=company, name="f", draft_number=2, created_at=now)
    version = FlowVersion.create(
        id=new_id(), flow=flow, number=1, definition=DEFINITION, has_callback=False,
        created_at=now, updated_at=now,
    )  # fmt: skip
    if deployed:
        Deployment.create(
            flow=flow, environment_id=environment_id, version=version, enabled=enabled,
            deployed_at=now,
        )  # fmt: skip
    return flow.id, version.id


def _parent(company: str, depth: int = 0) -> tuple[RunRecord, RunInput]:
    record = RunRecord(
        id=new_id(), company_id=company, flow_id=new_id(), version_id=new_id(),
        environment_id="", callback_id=new_id(), started_at=utcnow(), depth=depth,
    )  # fmt: skip
    run_input = RunInput(record.id, "slug", record.flow_id, "", "", "GET", (), (), b"")
    return record, run_input


def test_a_child_is_queued_for_any_runner_past_its_trigger(db) -> None:
    company = _company()
    flow_id, version_id = _flow(company)
    parent, parent_input = _parent(company)
    child = children.start(parent, parent_input, "go", flow_id, [1, {"a": 2}], {"who": "p"})
    row = Run.get_by_id(child)
    assert (row.parent_run_id, row.depth, row.version_id) == (parent.id, 1, version_id)
    assert row.status == "running" and row.flow_id == flow_id
    # the same shape of the same run again (a resumed parent): the same child, not a second
    assert children.start(parent, parent_input, "go", flow_id, [9], {}) == child
    assert Run.select().where(Run.parent_run_id == parent.id).count() == 1
    [claimed] = queue.claim("runner-2", 10, 50)
    assert claimed.record.id == child and claimed.record.parent_run_id == parent.id
    assert claimed.record.depth == 1
    doc = json.loads(claimed.state)
    assert doc["progress"]["position"] == 1
    assert doc["progress"]["bucket"] == [1, {"a": 2}] and doc["progress"]["vars"] == {"who": "p"}
    assert doc["input"]["run_id"] == child and doc["input"]["company"] == "slug"


@pytest.mark.parametrize("case", ["other company", "not deployed", "disabled", "other environment"])
def test_flows_a_run_may_not_start_are_refused_alike(db, case: str) -> None:
    company = _company()
    if case == "other company":
        flow_id, _ = _flow(_company())
    elif case == "not deployed":
        flow_id, _ = _flow(company, deployed=False)
    elif case == "disabled":
        flow_id, _ = _flow(company, enabled=False)
    else:
        flow_id, _ = _flow(company, environment_id=new_id())
    parent, parent_input = _parent(company)
    with pytest.raises(RunFlowRefused, match="is not a deployed and enabled flow of this company"):
        children.start(parent, parent_input, "go", flow_id, [], {})
    assert RunTask.select().count() == 0


def test_chains_and_pending_children_are_bounded(db, monkeypatch) -> None:
    company = _company()
    flow_id, _ = _flow(company)
    parent, parent_input = _parent(company, depth=MAX_DEPTH)
    with pytest.raises(RunFlowRefused, match=f"at most {MAX_DEPTH} runs deep"):
        children.start(parent, parent_input, "go", flow_id, [], {})
    monkeypatch.setattr(children, "MAX_PENDING_CHILDREN", 2)
    parent, parent_input = _parent(company)
    children.start(parent, parent_input, "a", flow_id, [], {})
    children.start(parent, parent_input, "b", flow_id, [], {})
    with pytest.raises(RunFlowRefused, match="2 runs started by run_flow not yet finished"):
        children.start(parent, parent_input, "c", flow_id, [], {})
