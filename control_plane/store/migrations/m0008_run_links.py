"""Runs started by runs, and notices (issue 10): the run table gets

- `parent_run_id`: the run whose run_flow shape started this one ("" for a run started by a
  request), indexed to list a parent's children; `depth`: the length of that chain (0 for a run
  started by a request), which bounds it;
- `notices`: a JSON list of what the run's notify shapes wrote ("[]": none).

Existing runs had no parent and wrote no notices.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate


def apply(db: peewee.Database) -> None:
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("run", "parent_run_id", peewee.CharField(max_length=26, default="")),
        migrator.add_column("run", "depth", peewee.SmallIntegerField(default=0)),
        migrator.add_column("run", "notices", peewee.TextField(default="[]")),
        migrator.add_index("run", ("parent_run_id",), False),
    )
