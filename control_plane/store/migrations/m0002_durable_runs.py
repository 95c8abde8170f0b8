"""Durable runs: the run's reason and attempts, the run_task table (checkpoints and leases), and
an index for retention.

Runs that a runner before this version left running or responded had no checkpoint and can never
end; they are closed here as lost, so nothing stays stuck.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from control_plane.store.clock import utcnow

RUN_REASON_RUN_LOST = 5  # boomerang.v1.RunReason


class _Base(peewee.Model):
    class Meta:
        legacy_table_names = False


class Run(_Base):  # only what the foreign key needs
    id = peewee.CharField(max_length=26, primary_key=True)


class RunTask(_Base):
    run = peewee.ForeignKeyField(Run, primary_key=True, on_delete="CASCADE")
    company_id = peewee.CharField(max_length=26)
    lane = peewee.SmallIntegerField()
    state = peewee.TextField()
    owner = peewee.CharField(max_length=64)
    lease_until = peewee.DateTimeField()
    attempts = peewee.IntegerField()
    updated_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("lease_until",), False), (("owner",), False))


def apply(db: peewee.Database) -> None:
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("run", "reason", peewee.IntegerField(default=0)),
        migrator.add_column("run", "attempts", peewee.IntegerField(default=1)),
        migrator.add_index("run", ("ended_at",), False),
    )
    with db.bind_ctx([Run, RunTask]):
        db.create_tables([RunTask])
    db.execute_sql(
        "UPDATE run SET status = 'failed', reason = %s, ended_at = %s, "
        "error = 'the run was lost by a runner without checkpoints (before migration 0002)', "
        "response_status = CASE WHEN response_status = 0 THEN 502 ELSE response_status END "
        "WHERE status IN ('running', 'responded')".replace("%s", db.param),
        (RUN_REASON_RUN_LOST, utcnow()),
    )
