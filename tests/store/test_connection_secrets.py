"""Connection secrets at rest (docs/connections.md), both backends: sealed, bound to their row and
kind, never in the stored text, checked at start, re-sealed by a key rotation (the domain call
and the `rotate-secret-key` command), and opened for the runner by `resolve_connection`."""

from __future__ import annotations

import base64
import os
import subprocess
import sys

import pytest

from control_plane import secrets
from control_plane.domain import connections
from control_plane.domain.connections import Settings, resolve_connection
from control_plane.domain.ids import new_id
from control_plane.domain.tenancy import Principal
from control_plane.outbound.credentials import (
    ApiKeyCredentials,
    BasicCredentials,
    BearerCredentials,
)
from control_plane.secrets.box import SealError, SecretBox, decode_key
from control_plane.store import models
from control_plane.store.clock import utcnow
from control_plane.store.db import database, is_sqlite
from tests.conftest import SECRET_KEY

OTHER_KEY = base64.b64encode(b"another-installation-key-32bytes").decode()
ADMIN = Principal(key_id="k", company_id=None)
TOKEN = "token-5c0ffee-never-stored-in-clear"


def company(slug: str = "acme") -> models.Company:
    return models.Company.create(id=new_id(), slug=slug, name=slug, created_at=utcnow())


def create(name: str, credentials, slug: str = "acme") -> models.Connection:
    settings = Settings(name=name, base_url="https://api.example.com", credentials=credentials)
    return connections.create_connection(ADMIN, slug, settings)


def stored_text() -> bytes:
    """The connection rows as the database holds them (after the WAL on SQLite)."""
    if is_sqlite():
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        path = database.obj.database
        with open(path, "rb") as f:
            return f.read()
    rows = database.execute_sql("SELECT t::text FROM connection t").fetchall()
    return " ".join(row[0] for row in rows).encode()


def test_the_secret_is_sealed_and_bound_to_its_row_and_kind(db):
    company()
    bearer = create("bearer", BearerCredentials(TOKEN))
    other = create("other", ApiKeyCredentials("X-Key", "header", "another-secret"))
    assert TOKEN.encode() not in stored_text()
    assert b"another-secret" not in stored_text()
    assert resolve_connection("acme", "bearer").credentials == BearerCredentials(TOKEN)

    # Copied onto another row, the sealed value does not open there.
    models.Connection.update(secret_sealed=bearer.secret_sealed).where(
        models.Connection.id == other.id
    ).execute()
    with pytest.raises(SealError):
        resolve_connection("acme", "other")
    # Read as another kind's secret (a token as a password), it does not open either.
    models.Connection.update(auth_kind="basic", auth='{"username": "u"}').where(
        models.Connection.id == bearer.id
    ).execute()
    with pytest.raises(SealError):
        resolve_connection("acme", "bearer")


def test_another_key_is_refused_and_rotation_reseals(db):
    company()
    made = {f"c{i}": create(f"c{i}", BasicCredentials("user", f"password-{i}")) for i in range(3)}
    create("none", None)
    assert connections.check_secret_key() == ""

    old, new = decode_key(SECRET_KEY), decode_key(OTHER_KEY)
    secrets.install(SecretBox(new))  # a replica configured with another key
    assert "cannot open the stored connection secrets" in connections.check_secret_key()

    secrets.install(SecretBox(new, previous=[old]))  # the rotation: new key, old one kept
    assert connections.reseal_secrets(batch=2) == 3
    assert connections.reseal_secrets() == 0

    secrets.install(SecretBox(new))  # the old key gone: every secret still opens
    assert connections.check_secret_key() == ""
    for i, name in enumerate(made):
        assert resolve_connection("acme", name).credentials == BasicCredentials(
            "user", f"password-{i}"
        )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_the_commands_check_and_reseal_connection_secrets(db, db_url):
    company()
    create("erp", BearerCredentials(TOKEN))
    db.close()
    env = {**os.environ, "DATABASE_URL": db_url, "BOOMERANG_SECRET_KEY": OTHER_KEY}
    # A runner with a key that cannot open the stored secrets refuses to start.
    serve = [sys.executable, "-m", "control_plane", "serve", "--role", "runner"]
    refused = subprocess.run(
        serve,
        env={**env, "BOOMERANG_LISTEN": "127.0.0.1:0"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2
    assert "cannot open the stored connection secrets" in refused.stderr
    assert TOKEN not in refused.stderr + refused.stdout

    env["BOOMERANG_SECRET_KEY_PREVIOUS"] = SECRET_KEY
    rotate = [sys.executable, "-m", "control_plane", "rotate-secret-key"]
    done = subprocess.run(rotate, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "1 connection secret(s)" in done.stdout
    assert TOKEN not in done.stdout + done.stderr

    secrets.install(SecretBox(decode_key(OTHER_KEY)))  # the new key alone now opens it
    db.connect(reuse_if_open=True)
    assert resolve_connection("acme", "erp").credentials == BearerCredentials(TOKEN)
