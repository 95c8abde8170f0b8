"""Child runs: what a run_flow shape starts (engine/run_flow.py), queued durably for any runner.

A child is a tail from its start, like a webhook-mode run: nobody waits for it. Its run row and
its run_task row (lane 1, unowned, lease already expired) are written in one transaction, so
the next runner that polls the queue (queue.claim) takes it up and runs it from its checkpoint.
That checkpoint starts after the child's trigger: the child's bucket is the parent's bucket and
its variables are the shape's, so the trigger, which would read a request, is passed over (the
child's shape log starts after it).

Refused (the shape fails, and a try path may catch it): a flow that is not the parent's
company's, or not deployed and enabled in the parent's environment; a chain deeper than
MAX_DEPTH; a company with MAX_PENDING_CHILDREN children not yet finished. The child's id is
derived from the parent's and the shape's, so a resumed parent that runs the shape again finds
its child instead of starting another.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ulid import ULID

from control_plane.engine import Progress, RunInput
from control_plane.engine.run_flow import MAX_DEPTH, MAX_PENDING_CHILDREN, RunFlowRefused
from control_plane.runs import checkpoint
from control_plane.runs.journal import write_rows
from control_plane.runs.lifecycle import LANE_TAIL, RunRecord
from control_plane.store.clock import epoch_seconds, utcnow
from control_plane.store.db import write_transaction
from control_plane.store.models import Deployment, Flow, Run, RunTask


def child_id(parent: RunRecord, shape_id: str) -> str:
    """The same for every attempt at one shape of one run: a ULID with the parent's start
    time (children sort with their parent) and randomness from the parent's and shape's ids."""
    millis = int(epoch_seconds(parent.started_at) * 1000)
    digest = hashlib.sha256(f"{parent.id}.{shape_id}".encode()).digest()
    return str(ULID.from_bytes(millis.to_bytes(6, "big") + digest[:10])).lower()


def start(
    parent: RunRecord,
    parent_input: RunInput,
    shape_id: str,
    flow_id: str,
    bucket: list[Any],
    variables: dict[str, Any],
) -> str:
    """Queues the child run (blocking: on a database thread); returns its id. Raises
    RunFlowRefused with a message for the flow's author."""
    depth = parent.depth + 1
    if depth > MAX_DEPTH:
        raise RunFlowRefused(f"run_flow chains are at most {MAX_DEPTH} runs deep")
    run_id = child_id(parent, shape_id)
    now = utcnow()
    with write_transaction():
        if Run.select(Run.id).where(Run.id == run_id).exists():
            return run_id  # started by an earlier attempt at this shape
        deployment = (
            Deployment.select(Deployment.version, Deployment.enabled)
            .join(Flow)
            .where(
                Deployment.flow == flow_id,
                Flow.company == parent.company_id,
                Deployment.environment_id == parent.environment_id,
            )
            .get_or_none()
        )
        if deployment is None or not deployment.enabled:
            # One message for "no such flow", "another company's" and "not deployed": none of
            # them may tell a tenant anything about flows that are not its own.
            raise RunFlowRefused(
                f"flow {flow_id} is not a deployed and enabled flow of this company in this "
                "environment"
            )
        pending = (
            RunTask.select()
            .join(Run)
            .where(RunTask.company_id == parent.company_id, Run.parent_run_id != "")
            .count()
        )
        if pending >= MAX_PENDING_CHILDREN:
            raise RunFlowRefused(
                f"the company has {MAX_PENDING_CHILDREN} runs started by run_flow not yet "
                "finished; try again later"
            )
        record = RunRecord(
            id=run_id,
            company_id=parent.company_id,
            flow_id=flow_id,
            version_id=deployment.version_id,
            environment_id=parent.environment_id,
            callback_id="",
            started_at=now,
            parent_run_id=parent.id,
            depth=depth,
        )
        run_input = RunInput(
            run_id=run_id,
            company=parent_input.company,
            flow_id=flow_id,
            callback_id="",
            environment_id=parent.environment_id,
            method="POST",
            headers=(),
            query=(),
            body=b"",
        )
        # Past the trigger, which a valid definition always has first.
        progress = Progress(position=1, bucket=bucket, vars=variables)
        state = checkpoint.dump(run_input, progress)
        # Unowned, its lease already over: the next runner polling the queue claims it.
        task = (run_id, parent.company_id, LANE_TAIL, state, "", now, 0, now)
        write_rows(Run._meta.database, [record.row()], [task], [])
    return run_id
