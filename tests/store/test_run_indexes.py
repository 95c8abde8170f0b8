"""The run table's indexes after every migration, on every backend: the single-column company
index is gone (migration 0009), the (company, started_at) one that replaces it for every lookup
by company is there, and deleting a company still removes its runs through the foreign key."""

from __future__ import annotations

import datetime as dt

import pytest

from control_plane.domain.ids import new_id
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import Company, Run

pytestmark = pytest.mark.usefixtures("db")


def _company() -> str:
    return Company.create(id=new_id(), slug=f"c{new_id()[-8:]}", name="c", created_at=utcnow()).id


def _run(company: str) -> str:
    run_id = new_id()
    Run.create(
        id=run_id,
        company=company,
        flow_id="f",
        version_id="v",
        environment_id="",
        callback_id="cb",
        status="succeeded",
        started_at=dt.datetime(2026, 1, 1),
        response_status=200,
        error="",
        shapes="[]",
    )
    return run_id


def test_runs_are_indexed_by_company_once() -> None:
    names = {index.name for index in database.get_indexes("run")}
    assert "run_company_id" not in names
    assert "run_company_id_started_at" in names


def test_deleting_a_company_still_deletes_its_runs() -> None:
    gone, kept = _company(), _company()
    gone_run, kept_run = _run(gone), _run(kept)
    Company.delete_by_id(gone)
    assert Run.get_or_none(Run.id == gone_run) is None
    assert Run.get_or_none(Run.id == kept_run) is not None
