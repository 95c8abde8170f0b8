"""Applies pending migrations from `control_plane.store.migrations` in number order."""

from __future__ import annotations

import importlib
import pkgutil

import peewee

from control_plane.store import migrations
from control_plane.store.clock import utcnow
from control_plane.store.db import checkpoint, database, write_transaction


class SchemaMigration(peewee.Model):
    number = peewee.IntegerField(primary_key=True)
    name = peewee.CharField(max_length=100)
    applied_at = peewee.DateTimeField()

    class Meta:
        database = database
        legacy_table_names = False


def _available() -> list[tuple[int, str]]:
    found = []
    for info in pkgutil.iter_modules(migrations.__path__):
        if info.name.startswith("m") and info.name[1:5].isdigit():
            found.append((int(info.name[1:5]), info.name))
    return sorted(found)


def migrate() -> list[str]:
    """Applies what is pending, each in its own transaction; returns the names applied."""
    database.create_tables([SchemaMigration])
    done = {m.number for m in SchemaMigration.select(SchemaMigration.number)}
    applied = []
    for number, name in _available():
        if number in done:
            continue
        module = importlib.import_module(f"{migrations.__name__}.{name}")
        with write_transaction():
            module.apply(database.obj)
            SchemaMigration.create(number=number, name=name, applied_at=utcnow())
        applied.append(name)
    if applied:
        checkpoint()
    return applied


def pending() -> list[str]:
    if not database.table_exists(SchemaMigration._meta.table_name):
        return [name for _, name in _available()]
    done = {m.number for m in SchemaMigration.select(SchemaMigration.number)}
    return [name for number, name in _available() if number not in done]
