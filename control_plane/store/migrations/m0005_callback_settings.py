"""Callback settings of issue 8: signature rotation with grace, HMAC, CORS, mode, async_after_ms.

- `previous_signature_digest` / `previous_signature_expires_at`: the replaced signature's digest
  and when it stops being accepted (RegenerateSignature with a grace period); NULL when none.
- `hmac_scheme` (a HmacScheme value, 0: none) and `hmac_secret_sealed`: the write-only secret,
  sealed with the installation's secret key and bound to the row like the signature.
- `allowed_origins`: a JSON list of CORS origins ("[]": none).
- `mode` (a CallbackMode value) and `async_after_ms` (0: never answer 202 on a long wait).

Existing callbacks keep their behaviour: no grace, no HMAC, no origins, sync, no async answer.
"""

from __future__ import annotations

import peewee
from playhouse.migrate import SchemaMigrator, migrate


def apply(db: peewee.Database) -> None:
    migrator = SchemaMigrator.from_database(db)
    migrate(
        migrator.add_column("callback", "previous_signature_digest", peewee.BlobField(null=True)),
        migrator.add_column(
            "callback", "previous_signature_expires_at", peewee.DateTimeField(null=True)
        ),
        migrator.add_column("callback", "hmac_scheme", peewee.SmallIntegerField(default=0)),
        migrator.add_column("callback", "hmac_secret_sealed", peewee.BlobField(null=True)),
        migrator.add_column("callback", "allowed_origins", peewee.TextField(default="[]")),
        migrator.add_column("callback", "mode", peewee.SmallIntegerField(default=0)),
        migrator.add_column("callback", "async_after_ms", peewee.IntegerField(default=0)),
    )
