"""The run table loses `run_company_id`, the index peewee made for the company foreign key.

`run_company_id_started_at` begins with the same column, so it serves every lookup by company
(ListRuns, the foreign key's cascade when a company is deleted) on both backends; SQLite's planner
already chose it over the single-column one (EXPLAIN QUERY PLAN). The single-column index only
cost every run's commits: one more b-tree to update, and on SQLite
one more page in the WAL per commit (9.1 → 7.9 frames for a one-run commit, ~15% of the commit's
time; docs/design.md §3, "The run record's commit").
"""

from __future__ import annotations

import peewee


def apply(db: peewee.Database) -> None:
    db.execute_sql("DROP INDEX IF EXISTS run_company_id")
