"""Quotas: the quota_setting table of per-company and installation quota settings.

Nothing is set in it at first: every company follows the defaults (docs/quotas.md).
"""

from __future__ import annotations

import peewee


class _Base(peewee.Model):
    class Meta:
        legacy_table_names = False


class QuotaSetting(_Base):
    scope = peewee.CharField(max_length=26)
    name = peewee.CharField(max_length=32)
    value = peewee.IntegerField()

    class Meta:
        primary_key = peewee.CompositeKey("scope", "name")


def apply(db: peewee.Database) -> None:
    with db.bind_ctx([QuotaSetting]):
        db.create_tables([QuotaSetting])
