"""Fills a store with many callbacks fast, as the API would have written them, for the sync
scale benchmark (bench/sync_scale.py) and tests (tests/edge/test_edge_sync_scale.py).

Per company: `flows` flows, each created then deployed once to the default environment (version
1 deployed, version 2 the draft, as CreateFlow + DeployVersion leave them), and callbacks spread
evenly over the flows (CreateCallback's columns, JSON content type, default timeout). Rows go in
with multi-row INSERTs in one transaction per batch: a million callbacks take a minute, not the
hours the API would.

Signatures are sealed with the process's secret key, as the API seals them: the caller installs
the same key the control plane will load (control_plane.secrets).

No change-log rows are written: edges that connect afterwards take a snapshot (an unknown
epoch), which is what is being measured. Do not run it under edges already in sync.
"""

from __future__ import annotations

from dataclasses import dataclass

from control_plane import secrets
from control_plane.domain.callbacks import CONTENT_TYPES, DEFAULT_TIMEOUT_MS
from control_plane.domain.flows import _checked_definition
from control_plane.domain.ids import digest, new_id, new_signature
from control_plane.domain.quotas import Quotas
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import (
    Callback,
    Company,
    Deployment,
    Flow,
    FlowVersion,
    signature_aad,
)

DEFINITION = {
    "shapes": [
        {"id": "trigger", "type": "trigger"},
        {"id": "shape", "type": "map", "expression": "{sku: payload.sku, stock: `7`}"},
        {"id": "reply", "type": "callback"},
    ]
}
#: Rows per INSERT: under SQLite's 32,766 bound parameters with ten columns.
ROWS = 1_000


@dataclass(frozen=True)
class Sample:
    """One callback created, to request through an edge."""

    company: str
    callback_id: str
    signature: str


def _insert(model, rows: list[dict]) -> None:
    for i in range(0, len(rows), ROWS):
        model.insert_many(rows[i : i + ROWS]).execute()


def populate(
    callbacks: int, companies: int, flows_per_company: int = 10, prefix: str = "bulk"
) -> Sample:
    """Creates `companies` companies (slugs f"{prefix}-{n}") holding `callbacks` callbacks in
    all; returns the last callback made. Needs an open connection to the store."""
    text, has_callback = _checked_definition(DEFINITION, Quotas())
    box = secrets.box()
    per_company = max(1, callbacks // companies)
    made = 0
    sample: Sample | None = None
    for n in range(companies):
        count = per_company if n < companies - 1 else callbacks - made
        if count <= 0:
            break
        now = utcnow()
        company_id, slug = new_id(), f"{prefix}-{n}"
        flows, versions, deployments, rows = [], [], [], []
        flow_ids = []
        for _ in range(min(flows_per_company, count)):
            flow_id, deployed, draft = new_id(), new_id(), new_id()
            flow_ids.append(flow_id)
            flows.append(
                dict(id=flow_id, company=company_id, name="f", draft_number=2, created_at=now)
            )
            for version_id, number in ((deployed, 1), (draft, 2)):
                versions.append(
                    dict(
                        id=version_id,
                        flow=flow_id,
                        number=number,
                        definition=text,
                        has_callback=has_callback,
                        created_at=now,
                        updated_at=now,
                    )
                )
            deployments.append(
                dict(
                    flow=flow_id, environment_id="", version=deployed, enabled=True, deployed_at=now
                )
            )
        for i in range(count):
            signature = new_signature()
            callback_id = new_id()
            rows.append(
                dict(
                    id=callback_id,
                    flow=flow_ids[i % len(flow_ids)],
                    name="",
                    signature_sealed=box.seal(signature, signature_aad(callback_id)),
                    signature_digest=digest(signature),
                    content_type=CONTENT_TYPES["json"],
                    timeout_ms=DEFAULT_TIMEOUT_MS,
                    rate_limit_per_minute=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            sample = Sample(slug, callback_id, signature)
        with database.atomic():
            Company.insert(id=company_id, slug=slug, name=slug, created_at=now).execute()
            _insert(Flow, flows)
            _insert(FlowVersion, versions)
            _insert(Deployment, deployments)
            _insert(Callback, rows)
        made += count
    assert sample is not None
    return sample
