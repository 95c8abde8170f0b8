"""ListRuns pages by (started_at, id), newest first, on both backends: every run once across
pages, ties on the start time included; the order is read from an index rather than sorting all
of a company's runs for each page; a status filter looks at a bounded number of runs per page;
tokens of the earlier form (the id alone) still page on; and a flow filter naming another
company's flow finds nothing."""

from __future__ import annotations

import base64
import datetime as dt

import pytest

from control_plane.domain import runs
from control_plane.domain.errors import DomainError
from control_plane.domain.ids import new_id
from control_plane.domain.tenancy import Principal
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import Company, Run

pytestmark = pytest.mark.usefixtures("db")

ADMIN = Principal(key_id="k", company_id=None)
T0 = dt.datetime(2026, 1, 1, 12, 0, 0)


def _company(slug: str) -> Company:
    return Company.create(id=new_id(), slug=slug, name=slug, created_at=utcnow())


def _run(company: Company, started_at: dt.datetime, flow_id: str = "0" * 26, **fields) -> str:
    row = {
        "id": new_id(),
        "company": company,
        "flow_id": flow_id,
        "version_id": "v",
        "environment_id": "",
        "callback_id": "cb",
        "status": "succeeded",
        "started_at": started_at,
        "response_status": 200,
        "error": "",
        "shapes": "[]",
        **fields,
    }
    Run.create(**row)
    return row["id"]


def _walk(slug: str, page_size: int, **filters) -> list[str]:
    seen, token = [], ""
    while True:
        rows, token = runs.list_runs(ADMIN, slug, page_size=page_size, page_token=token, **filters)
        seen += [row.id for row in rows]
        if not token:
            return seen


def test_pages_walk_every_run_once_newest_first_with_ties_on_the_start_time() -> None:
    acme = _company("acme")
    # Ids in the reverse of start order (as a child run's id can be), and four runs sharing one
    # start time (to the microsecond), which only the id can order.
    ids = sorted((new_id() for _ in range(9)), reverse=True)
    starts = [T0 + dt.timedelta(microseconds=i) for i in (0, 1, 2, 2, 2, 2, 3, 4, 5)]
    for run_id, started_at in zip(ids, starts, strict=True):
        _run(acme, started_at, id=run_id)
    expected = [
        run_id
        for _, run_id in sorted(zip(starts, ids, strict=True), reverse=True)  # start, then id
    ]
    for size in (1, 2, 3, 4, 9, 100):
        assert _walk("acme", size) == expected, size


def test_filters_page_the_same_way() -> None:
    acme = _company("acme")
    flow, other_flow = new_id(), new_id()
    mine = [_run(acme, T0 + dt.timedelta(seconds=i), flow) for i in range(7)]
    for i in range(5):
        _run(acme, T0 + dt.timedelta(seconds=i, microseconds=1), other_flow)
    _run(acme, T0 + dt.timedelta(seconds=3), flow, status="failed")
    assert _walk("acme", 2, flow_id=flow, status="succeeded") == mine[::-1]
    window = {"start_from": T0 + dt.timedelta(seconds=2), "start_to": T0 + dt.timedelta(seconds=5)}
    assert _walk("acme", 2, flow_id=flow, status="succeeded", **window) == mine[2:5][::-1]


def test_a_token_of_the_earlier_form_pages_on_from_its_run() -> None:
    acme, other = _company("acme"), _company("other")
    ids = [_run(acme, T0 + dt.timedelta(seconds=i)) for i in range(5)]
    theirs = _run(other, T0)
    old_form = base64.urlsafe_b64encode(ids[3].encode()).decode()
    rows, token = runs.list_runs(ADMIN, "acme", page_size=2, page_token=old_form)
    assert [row.id for row in rows] == [ids[2], ids[1]]
    assert token
    # Another company's run, or one gone since: refused like any token not of this list.
    for run_id in (theirs, new_id()):
        stale = base64.urlsafe_b64encode(run_id.encode()).decode()
        with pytest.raises(DomainError) as caught:
            runs.list_runs(ADMIN, "acme", page_token=stale)
        assert [field for field, _ in caught.value.violations] == ["page_token"]


# Any well-formed run id: the tokens below are refused for what follows it.
_ID = b"01m8y0qt4pq1xk9r70c4zkv589"


@pytest.mark.parametrize(
    "raw",
    [
        b"not base64 at all!",
        b"01jbadid.5",
        _ID + b".999999999999999999",  # past year 9999
        _ID + b".-99999999999999999",  # before year 1
        _ID + b".12x",
        _ID + b".",
        b".",
        b"..5",
    ],
    ids=[
        "not-base64",
        "bad-id",
        "past-9999",
        "before-1",
        "not-a-number",
        "no-number",
        "nothing",
        "two-dots",
    ],
)
def test_a_token_this_list_did_not_give_is_invalid_argument(raw: bytes) -> None:
    _company("acme")
    token = base64.urlsafe_b64encode(raw).decode() if b"!" not in raw else raw.decode()
    with pytest.raises(DomainError) as caught:
        runs.list_runs(ADMIN, "acme", page_token=token)
    assert caught.value.kind == "invalid_argument"
    assert [field for field, _ in caught.value.violations] == ["page_token"]


def test_another_companys_flow_filters_to_nothing() -> None:
    acme, other = _company("acme"), _company("other")
    theirs = new_id()
    for i in range(3):
        _run(other, T0 + dt.timedelta(seconds=i), theirs)
    _run(acme, T0, new_id())
    assert runs.list_runs(ADMIN, "acme", flow_id=theirs) == ([], "")
    assert len(runs.list_runs(ADMIN, "other", flow_id=theirs)[0]) == 3


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("filters", [{}, {"flow_id": "0" * 26}, {"status": "succeeded"}])
def test_a_page_is_read_in_index_order_not_sorted_whole(filters, monkeypatch) -> None:
    """SQLite's plan for the page query (its planner has no statistics here, so the plan is the
    same on every machine): no temporary B-tree for the whole ORDER BY, which is what sorted
    every run of the company for each page. Ties on the start time may still be sorted among
    themselves ("RIGHT PART OF ORDER BY"). PostgreSQL's plan depends on its statistics; bench/
    list_runs.py measures both."""
    acme = _company("acme")
    for i in range(3):
        _run(acme, T0 + dt.timedelta(seconds=i))
    statements: list[tuple[str, tuple]] = []
    execute = database.obj.execute_sql

    def recording(sql, params=None):
        statements.append((sql, tuple(params or ())))
        return execute(sql, params)

    monkeypatch.setattr(database.obj, "execute_sql", recording)
    _, token = runs.list_runs(ADMIN, "acme", page_size=1, **filters)
    runs.list_runs(ADMIN, "acme", page_size=1, page_token=token, **filters)
    queries = [s for s in statements if 'FROM "run"' in s[0] and "ORDER BY" in s[0]]
    # A status filter's scan bound is found by a walk that reads the index alone.
    walks = [q for q in queries if q[0].startswith('SELECT "t1"."started_at" FROM')]
    assert len(walks) == (2 if "status" in filters else 0)
    assert len(queries) - len(walks) == 2
    for sql, params in queries:
        plan = " / ".join(row[3] for row in execute(f"EXPLAIN QUERY PLAN {sql}", params))
        index = "USING COVERING INDEX run_" if (sql, params) in walks else "INDEX run_"
        assert index in plan, plan
        assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan


@pytest.mark.parametrize("flow", [False, True], ids=["company", "flow"])
def test_a_status_filter_scans_a_bounded_number_of_runs_per_page(flow, monkeypatch) -> None:
    """A status no recent run has: each page looks at SCAN_ROWS runs at most, so the first pages
    come back empty with a token, and walking on finds the run, and every matching run once."""
    monkeypatch.setattr(runs, "SCAN_ROWS", 4)
    acme, other = _company("acme"), _company("other")
    flow_id = new_id()
    # 21 runs, the start times tied in threes (so the scan's end falls among ties), newest
    # running twice, the oldest running, the rest succeeded; another company's running runs.
    starts = [T0 + dt.timedelta(seconds=i // 3) for i in range(21)]
    ids = [
        _run(acme, at, flow_id, status="running" if i in (0, 10, 11) else "succeeded")
        for i, at in enumerate(starts)
    ]
    for i in range(5):
        _run(other, T0 + dt.timedelta(seconds=i), flow_id if flow else new_id(), status="running")
    running = sorted(((starts[i], ids[i]) for i in (0, 10, 11)), reverse=True)
    filters = {"status": "running", **({"flow_id": flow_id} if flow else {})}
    first, token = runs.list_runs(ADMIN, "acme", page_size=10, **filters)
    assert [row.id for row in first] == [] and token  # 4 newest (and their ties) scanned
    for size in (1, 2, 10):
        assert _walk("acme", size, **filters) == [run_id for _, run_id in running], size
    succeeded = sorted((starts[i], ids[i]) for i in range(21) if i not in (0, 10, 11))
    for size in (1, 5, 100):
        got = _walk("acme", size, status="succeeded")
        assert got == [run_id for _, run_id in reversed(succeeded)], size


def test_a_short_pages_token_goes_on_strictly_before_its_time() -> None:
    acme = _company("acme")
    ids = [_run(acme, T0 + dt.timedelta(seconds=i)) for i in range(4)]
    micros = (T0 + dt.timedelta(seconds=2) - dt.datetime(1970, 1, 1)) // dt.timedelta(
        microseconds=1
    )
    token = base64.urlsafe_b64encode(f".{micros}".encode()).decode()
    rows, more = runs.list_runs(ADMIN, "acme", page_token=token, status="succeeded")
    assert ([row.id for row in rows], more) == ([ids[1], ids[0]], "")
