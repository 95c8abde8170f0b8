"""Secrets at rest and key scopes (docs/security.md).

Callback signatures move from plaintext (`callback.signature`) to `callback.signature_sealed`,
sealed with the installation's secret key and bound to the row's id; the plaintext column is
dropped. On SQLite `secure_delete` is on while it runs, so the freed plaintext is overwritten
rather than left in free pages. (PostgreSQL keeps dead row versions until VACUUM: run
`VACUUM FULL callback` after migrating to erase them at once.) `signature_sealed` is nullable in
the schema only because a column cannot be added NOT NULL without a default; every row has one.

API keys get a `scope` (full | edge | runner); existing keys are full, as they were.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate

from control_plane import secrets


class _Callback(peewee.Model):
    id = peewee.CharField(max_length=26, primary_key=True)
    signature = peewee.CharField(max_length=52)
    signature_sealed = peewee.BlobField(null=True)

    class Meta:
        table_name = "callback"


def _aad(callback_id: str) -> str:
    # Frozen copy of control_plane.store.models.signature_aad as of this migration.
    return f"callback/{callback_id}/signature"


def apply(db: peewee.Database) -> None:
    sqlite = isinstance(db, peewee.SqliteDatabase)
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("api_key", "scope", peewee.CharField(max_length=8, default="full")),
        migrator.add_column("callback", "signature_sealed", peewee.BlobField(null=True)),
    )
    if sqlite:
        db.execute_sql("PRAGMA secure_delete = ON")
    with db.bind_ctx([_Callback]):
        # Plain tuples: a few hundred bytes per callback, even for large installations.
        rows = list(_Callback.select(_Callback.id, _Callback.signature).tuples())
        # Only needed when there is something to seal: a new database migrates without a key.
        box = secrets.box() if rows else None
        for callback_id, signature in rows:
            sealed = box.seal(signature, _aad(callback_id))
            _Callback.update(signature_sealed=sealed).where(_Callback.id == callback_id).execute()
    migrate(migrator.drop_column("callback", "signature"))
    if sqlite:
        db.execute_sql("PRAGMA secure_delete = OFF")
