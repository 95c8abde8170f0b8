"""ListRuns with many runs: what a page costs for a company with N runs and for one with 10.

`python bench/list_runs.py [--runs 300000] [--postgres URL]` fills a new store (SQLite in a
temporary directory, or a new schema on --postgres) with N runs of company `big` (two flows, one
run a millisecond; one in ten failed, and only the oldest running) and 10 of company `small`,
then times ListRuns's page query (`control_plane.domain.runs.list_runs`, page size 50): the first
page and the 20 after it, with no filter, a start-time window, a status (failed), a status no
recent run has (running), and a flow. Beside it, in the same run, two earlier forms of the query:
paged by (started_at, id) with no bound on the runs a status filter scans, and, before that,
ordered by id, which the (company, started_at) index cannot give, so each page sorted every run
of the company. Figures are medians of 3.

On PostgreSQL the table is ANALYZEd after the load, as autovacuum would: without statistics
its planner may pick a plan that walks the whole index for a status or flow filter.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

from stores import postgres_schema, store_url

from control_plane.domain import runs
from control_plane.domain.ids import new_id
from control_plane.domain.tenancy import Principal
from control_plane.store.db import database, open_database
from control_plane.store.migrate import migrate
from control_plane.store.models import Company, Run

ADMIN = Principal(key_id="bench", company_id=None)
T0 = dt.datetime(2026, 1, 1)
PAGE = 50
NEXT_PAGES = 20
BATCH = 5_000


def fill(count: int) -> dict[str, str]:
    """Company `big` with `count` runs over two flows, `small` with 10; returns their flow ids."""
    flows = {"big": new_id(), "big-2": new_id(), "small": new_id()}
    for slug, n in (("big", count), ("small", 10)):
        company = Company.create(id=new_id(), slug=slug, name=slug, created_at=T0)
        for start in range(0, n, BATCH):
            rows = [
                {
                    "id": new_id(),
                    "company": company.id,
                    "flow_id": flows[slug] if i % 2 == 0 else flows.get(f"{slug}-2", flows[slug]),
                    "version_id": "",
                    "environment_id": "",
                    "callback_id": "",
                    "status": "running" if i == 0 else "succeeded" if i % 10 else "failed",
                    "started_at": T0 + dt.timedelta(milliseconds=i),
                    "response_status": 200,
                    "error": "",
                    "shapes": "[]",
                }
                for i in range(start, min(n, start + BATCH))
            ]
            with database.atomic():
                Run.insert_many(rows).execute()
    return flows


def by_id(slug: str, limit: int, token: str, **filters) -> tuple[list, str]:
    """The page query before this change: ordered by id, the token the last id."""
    company = Company.get(Company.slug == slug)
    q = Run.select().where(Run.company == company)
    if "flow_id" in filters:
        q = q.where(Run.flow_id == filters["flow_id"])
    if "status" in filters:
        q = q.where(Run.status == filters["status"])
    if "start_from" in filters:
        q = q.where(Run.started_at >= filters["start_from"])
    if token:
        q = q.where(Run.id < token)
    rows = list(q.order_by(Run.id.desc()).limit(limit + 1))
    return rows[:limit], rows[limit - 1].id if len(rows) > limit else ""


def keyset(slug: str, limit: int, token: str, **filters) -> tuple[list, str]:
    return runs.list_runs(ADMIN, slug, page_size=limit, page_token=token, **filters)


def unbounded(slug: str, limit: int, token: str, **filters) -> tuple[list, str]:
    """The keyset page query before a status filter's scan was bounded (SCAN_ROWS): it walks
    the company's runs until the page is full."""
    company = Company.get(Company.slug == slug)
    q = Run.select().where(Run.company == company)
    for name, condition in (
        ("flow_id", lambda v: Run.flow_id == v),
        ("status", lambda v: Run.status == v),
        ("start_from", lambda v: Run.started_at >= v),
    ):
        if name in filters:
            q = q.where(condition(filters[name]))
    if token:
        at, last_id = token
        q = q.where(Run.started_at <= at, (Run.started_at < at) | (Run.id < last_id))
    rows = list(q.order_by(Run.started_at.desc(), Run.id.desc()).limit(limit + 1))
    last = rows[limit - 1] if len(rows) > limit else None
    return rows[:limit], (last.started_at, last.id) if last else ""


def timed(lister, slug: str, filters: dict) -> tuple[float, float]:
    """Milliseconds: the first page, and the median of the next NEXT_PAGES."""
    firsts, nexts = [], []
    for _ in range(3):
        started = time.perf_counter()
        _, token = lister(slug, PAGE, "", **filters)
        firsts.append(time.perf_counter() - started)
        for _ in range(NEXT_PAGES):
            if not token:
                break
            started = time.perf_counter()
            _, token = lister(slug, PAGE, token, **filters)
            nexts.append(time.perf_counter() - started)
    median = statistics.median
    return median(firsts) * 1000, (median(nexts) * 1000 if nexts else float("nan"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=300_000)
    parser.add_argument("--postgres", metavar="URL", help="PostgreSQL server (a new schema)")
    args = parser.parse_args()
    schema = f"boomerang_list_runs_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix="boomerang-list-runs-") as tmp:
        url = store_url(args, Path(tmp), schema)
        try:
            open_database(url)
            with database.connection_context():
                migrate()
                started = time.perf_counter()
                flows = fill(args.runs)
                backend = "PostgreSQL" if args.postgres else "SQLite"
                print(
                    f"{args.runs:,} runs in `big`, 10 in `small`, on {backend}, loaded in "
                    f"{time.perf_counter() - started:.1f} s"
                )
                if args.postgres:
                    database.execute_sql("ANALYZE run")
                print(
                    f"page of {PAGE}, ms (median of 3): first page / each of the next {NEXT_PAGES}"
                )
                print(
                    f"  {'company':8} {'filter':8} {'bounded (now)':>22} "
                    f"{'unbounded (2a27658)':>22} {'by id (before c83950c)':>22}"
                )
                for slug in ("big", "small"):
                    cases = {
                        "none": {},
                        "window": {"start_from": T0 + dt.timedelta(milliseconds=args.runs // 2)},
                        "status": {"status": "failed"},
                        "rare": {"status": "running"},
                        "flow": {"flow_id": flows[slug]},
                    }
                    for name, filters in cases.items():
                        cells = [timed(f, slug, filters) for f in (keyset, unbounded, by_id)]
                        print(
                            f"  {slug:8} {name:8} "
                            + "  ".join(f"{a:10.2f} / {b:8.2f}" for a, b in cells)
                        )
        finally:
            database.close()
            if args.postgres:
                postgres_schema(args.postgres, f"DROP SCHEMA IF EXISTS {schema} CASCADE")


if __name__ == "__main__":
    main()
