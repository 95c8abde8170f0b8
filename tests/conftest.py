"""Shared fixtures: the database backends and an in-process control plane on port 0.

Store and API tests run once per backend. PostgreSQL comes from BOOMERANG_TEST_POSTGRES_URL
(default postgres://postgres@127.0.0.1:5432/test); each test session works in a schema of its
own (dropped at the end), so two suites running at once never see each other's rows. Where
PostgreSQL is unreachable its variants skip with the reason, except under CI (CI=true) or
BOOMERANG_REQUIRE_POSTGRES=1, where they fail: CI must prove both backends.
"""

from __future__ import annotations

# isort: off
# Before grpc: the tests' in-process servers and channels use gRPC's I/O as the services do.
from boomerang import grpc_io  # noqa: F401
# isort: on

import base64
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import grpc
import peewee
import pytest
from playhouse.db_url import parse

from control_plane import secrets
from control_plane.config import Settings
from control_plane.domain.api_keys import ensure_admin_key
from control_plane.secrets.box import SecretBox, decode_key
from control_plane.store import models
from control_plane.store.db import database, open_database
from control_plane.store.migrate import SchemaMigration, migrate

POSTGRES_URL = os.environ.get(
    "BOOMERANG_TEST_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test"
)
REQUIRE_POSTGRES = (
    os.environ.get("CI") == "true" or os.environ.get("BOOMERANG_REQUIRE_POSTGRES") == "1"
)
ADMIN_KEY = "bmk_test-admin-key-0123456789abcdefghijklmnopqrstu"
# Seals callback signatures in tests (base64 of 32 bytes; control_plane/secrets).
SECRET_KEY = base64.b64encode(b"boomerang-tests-secret-key-32byt").decode()
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


SCHEMA = f"boomerang_test_{os.getpid()}"
_schema_ready: list[str] = []  # "" once created; the reason when PostgreSQL is unreachable


def _postgres(statement: str) -> str:
    """Runs one statement on the PostgreSQL server; returns "" or why it could not."""
    try:
        db = peewee.PostgresqlDatabase(None)
        db.init(**parse(POSTGRES_URL))
        with db.connection_context():
            db.execute_sql(statement)
        return ""
    except Exception as e:  # any failure to connect is reported as the reason
        return f"PostgreSQL at {POSTGRES_URL} is unreachable: {e}"


def database_url(backend: str, tmp_path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path}/boomerang.db"
    if not _schema_ready:
        _schema_ready.append(_postgres(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}"))
    reason = _schema_ready[0]
    if reason:
        if REQUIRE_POSTGRES:
            pytest.fail(reason + " (required under CI)")
        pytest.skip(reason)
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}options=-csearch_path%3D{SCHEMA}"


def pytest_sessionfinish(session, exitstatus) -> None:
    if _schema_ready == [""]:
        _postgres(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE")


def fresh_schema(url: str) -> peewee.Database:
    """Opens `url` with an empty schema, migrated from zero: every test starts clean."""
    db = open_database(url)
    secrets.install(SecretBox(decode_key(SECRET_KEY)))
    with db.connection_context():
        db.drop_tables([*models.ALL_MODELS, SchemaMigration], cascade=not url.startswith("sqlite"))
        migrate()
        ensure_admin_key(ADMIN_KEY)
    return db


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def db_url(backend, tmp_path) -> str:
    return database_url(backend, tmp_path)


@pytest.fixture
def db(db_url) -> Iterator[peewee.Database]:
    handle = fresh_schema(db_url)
    handle.connect(reuse_if_open=True)
    yield handle
    handle.close()
    database.obj.close()


@dataclass
class Plane:
    """A running in-process control plane and a channel to it."""

    target: str
    channel: grpc.aio.Channel
    plane: object

    def metadata(self, key: str = ADMIN_KEY) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {key}"),)


@pytest.fixture
def plane_settings() -> dict[str, object]:
    """Settings the `plane` fixture overrides; a test parametrizes this name to change them."""
    return {}


@pytest.fixture
async def plane(db_url, plane_settings) -> AsyncIterator[Plane]:
    from control_plane.server import ControlPlane

    fresh_schema(db_url)
    settings = Settings(
        database_url=db_url,
        listen="127.0.0.1:0",
        public_base_url="http://edge.test",
        feed_poll_s=0.05,
        secret_key=SECRET_KEY,
        **plane_settings,
    )
    cp = ControlPlane(settings)
    port = await cp.start()
    target = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(target)
    yield Plane(target, channel, cp)
    await channel.close()
    await cp.stop(grace=0.5)
    database.obj.close()
