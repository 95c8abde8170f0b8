"""Initial schema and the revision counter with this database's epoch.

It creates the tables from the current models; the first change to any of them must freeze a copy
of the definitions used here before altering the models.
"""

from __future__ import annotations

import secrets

import peewee

from control_plane.store import models


def apply(db: peewee.Database) -> None:
    db.create_tables(models.ALL_MODELS)
    # The epoch tells edges that this database is not the one their revisions came from.
    models.RevisionCounter.create(id=1, epoch=secrets.token_hex(8), revision=0)
