"""Connections (docs/connections.md): the connection table, one row per named upstream system of
a company, unique by (company, name).

The credentials' kind and non-secret fields are JSON in `auth`; the one secret of a kind
(password, token, key value or client secret) is in `secret_sealed`, sealed with the
installation's secret key and bound to the row (control_plane/store/models.py). `version` counts
updates: the runner's caches of a connection (OAuth2 tokens, rate limiters) key on it.
"""

from __future__ import annotations

import peewee


class _Base(peewee.Model):
    class Meta:
        legacy_table_names = False


class Company(_Base):  # only what the foreign key needs
    id = peewee.CharField(max_length=26, primary_key=True)


class Connection(_Base):
    id = peewee.CharField(max_length=26, primary_key=True)
    company = peewee.ForeignKeyField(Company, on_delete="CASCADE")
    name = peewee.CharField(max_length=63)
    base_url = peewee.TextField()
    default_headers = peewee.TextField()
    timeout_ms = peewee.IntegerField()
    rate_limit_per_minute = peewee.IntegerField()
    auth_kind = peewee.CharField(max_length=32)
    auth = peewee.TextField()
    secret_sealed = peewee.BlobField(null=True)
    version = peewee.IntegerField()
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("company", "name"), True),)


def apply(db: peewee.Database) -> None:
    with db.bind_ctx([Company, Connection]):
        db.create_tables([Connection])
