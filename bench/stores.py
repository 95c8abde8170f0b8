"""The store a benchmark runs on: a new SQLite file, or a new schema on a PostgreSQL server
(`--postgres URL`), and read-only queries of it from the benchmark's side."""

from __future__ import annotations

import argparse
import sqlite3
from pathlib import Path

import peewee
from playhouse.db_url import parse


def postgres_schema(url: str, statement: str) -> None:
    db = peewee.PostgresqlDatabase(None)
    db.init(**parse(url))
    with db.connection_context():
        db.execute_sql(statement)


def store_url(args: argparse.Namespace, root: Path, schema: str) -> str:
    """A new, empty store: a SQLite file under `root`, or a new schema on --postgres."""
    if not args.postgres:
        return f"sqlite:///{root / 'boomerang.db'}"
    postgres_schema(args.postgres, f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in args.postgres else "?"
    return f"{args.postgres}{sep}options=-csearch_path%3D{schema}"


def query(url: str, sql: str) -> list[tuple]:
    """The rows of `sql` on the store at `url`, read from outside the service: SQLite opened
    read-only (a reader never holds the WAL's write lock), PostgreSQL on a connection of its own."""
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
            return db.execute(sql).fetchall()
    db = peewee.PostgresqlDatabase(None)
    db.init(**parse(url))
    with db.connection_context():
        return list(db.execute_sql(sql).fetchall())
