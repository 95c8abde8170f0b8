"""Callback signatures are sealed at rest, yet handed back to those allowed to see them
(docs/security.md). Both backends: the raw SQLite files, or the PostgreSQL rows as text."""

from __future__ import annotations

import base64
import importlib
from pathlib import Path

import pytest

from boomerang.v1 import callback_service_pb2 as cbs
from control_plane import secrets
from control_plane.domain import callbacks
from control_plane.domain.ids import digest, new_id
from control_plane.secrets.box import SealError, SecretBox, decode_key
from control_plane.store import migrate as migrations
from control_plane.store import models
from control_plane.store.clock import utcnow
from control_plane.store.db import database, is_sqlite
from control_plane.store.migrations import m0001_initial as m1
from tests.api.helpers import Stubs, new_callback
from tests.conftest import SECRET_KEY, fresh_schema

OTHER_KEY = base64.b64encode(b"another-installation-key-32bytes").decode()


def stored_text(url: str) -> bytes:
    """Everything the database holds where a reader of its storage could see it."""
    if is_sqlite():
        database.execute_sql("PRAGMA wal_checkpoint(PASSIVE)")
        path = url.removeprefix("sqlite:///")
        return b"".join(
            Path(f"{path}{suffix}").read_bytes()
            for suffix in ("", "-wal")
            if Path(f"{path}{suffix}").exists()
        )
    rows = database.execute_sql("SELECT t::text FROM callback t").fetchall()
    return " ".join(row[0] for row in rows).encode()


async def _callback(stubs: Stubs, md):
    return await new_callback(stubs, md)


async def test_the_database_never_holds_a_signature_the_api_hands_back(plane, db_url):
    stubs, md = Stubs.on(plane.channel), plane.metadata()
    created = await _callback(stubs, md)
    regenerated = (
        await stubs.callbacks.RegenerateSignature(
            cbs.RegenerateSignatureRequest(id=created.id), metadata=md
        )
    ).callback
    url = await stubs.callbacks.GetCallbackUrl(
        cbs.GetCallbackUrlRequest(id=created.id), metadata=md
    )
    assert url.url.endswith(f"?patchworks_signature={regenerated.signature}")
    got = await stubs.callbacks.GetCallback(cbs.GetCallbackRequest(id=created.id), metadata=md)
    assert got.callback.signature == regenerated.signature

    stored = await plane.plane.runtime.db(lambda: stored_text(db_url))
    for signature in (created.signature, regenerated.signature):
        assert len(signature) == 52
        assert signature.encode() not in stored
    assert created.id.encode() in stored  # the scan does see the rows


def test_a_sealed_signature_opens_only_on_its_own_row(db):
    from control_plane.domain.callbacks import Settings
    from control_plane.domain.tenancy import Principal

    admin = Principal(key_id="k", company_id=None)
    company = models.Company.create(id=new_id(), slug="acme", name="A", created_at=utcnow())
    flow = models.Flow.create(
        id=new_id(), company=company, name="f", draft_number=1, created_at=utcnow()
    )
    one = callbacks.create_callback(admin, flow.id, Settings())
    two = callbacks.create_callback(admin, flow.id, Settings())
    # Copying one row's sealed signature onto another does not give that row a valid one.
    with pytest.raises(SealError, match="not its row"):
        secrets.box().open(one.signature_sealed, models.signature_aad(two.id))
    assert bytes(one.signature_digest) == digest(one.signature)


def _apply_until(number: int) -> None:
    """Applies the migrations numbered below `number`, as an older release would have."""
    database.create_tables([migrations.SchemaMigration])
    for n, name in migrations._available():
        if n < number:
            module = importlib.import_module(f"control_plane.store.migrations.{name}")
            module.apply(database.obj)
            migrations.SchemaMigration.create(number=n, name=name, applied_at=utcnow())


def _old_callbacks(count: int) -> dict[str, str]:
    """Callbacks as releases before m0004 stored them: the signature in plaintext."""
    now = utcnow()
    rows = {}
    with database.bind_ctx([m1.Company, m1.Flow, m1.Callback]):
        company = m1.Company.create(id=new_id(), slug="old", name="Old", created_at=now)
        flow = m1.Flow.create(
            id=new_id(), company=company, name="f", draft_number=1, created_at=now
        )
        for i in range(count):
            signature = f"{i:02d}" + "plaintextsignature" * 2 + "abcdefghijklmnop"
            cb = m1.Callback.create(
                id=new_id(),
                flow=flow,
                name="",
                signature=signature[:52],
                signature_digest=digest(signature[:52]),
                content_type="application/json",
                timeout_ms=30_000,
                created_at=now,
                updated_at=now,
            )
            rows[cb.id] = signature[:52]
    return rows


def test_migration_0004_seals_the_signatures_already_stored(db_url):
    db = fresh_schema(db_url)  # every table dropped and made again: start over from nothing
    with db.connection_context():
        db.drop_tables([*models.ALL_MODELS, migrations.SchemaMigration], cascade=not is_sqlite())
        _apply_until(4)
        old = _old_callbacks(3)
        assert all(s.encode() in stored_text(db_url) for s in old.values())

        assert "m0004_sealed_signatures_key_scopes" in migrations.migrate()

        columns = {c.name for c in db.get_columns("callback")}
        assert "signature" not in columns and "signature_sealed" in columns
        stored = stored_text(db_url)
        for callback_id, signature in old.items():
            assert signature.encode() not in stored
            row = models.Callback.get_by_id(callback_id)
            assert row.signature == signature
            assert bytes(row.signature_digest) == digest(signature)  # edges see no change
    database.obj.close()


def test_a_process_with_another_key_refuses_and_rotation_reseals(db):
    from control_plane.domain.callbacks import Settings
    from control_plane.domain.tenancy import Principal

    admin = Principal(key_id="k", company_id=None)
    company = models.Company.create(id=new_id(), slug="acme", name="A", created_at=utcnow())
    flow = models.Flow.create(
        id=new_id(), company=company, name="f", draft_number=1, created_at=utcnow()
    )
    made = [callbacks.create_callback(admin, flow.id, Settings()) for _ in range(3)]
    signatures = {cb.id: cb.signature for cb in made}
    assert callbacks.check_secret_key() == ""

    old, new = decode_key(SECRET_KEY), decode_key(OTHER_KEY)
    secrets.install(SecretBox(new))  # a replica configured with another key
    assert "cannot open the stored callback signatures" in callbacks.check_secret_key()

    secrets.install(SecretBox(new, previous=[old]))  # the rotation: new key, old one kept
    assert callbacks.reseal_signatures(batch=2) == 3
    assert callbacks.reseal_signatures() == 0

    secrets.install(SecretBox(new))  # the old key is gone: everything still opens
    assert callbacks.check_secret_key() == ""
    for callback_id, signature in signatures.items():
        assert models.Callback.get_by_id(callback_id).signature == signature


def test_box_refuses_tampered_or_foreign_values():
    box = SecretBox(decode_key(SECRET_KEY))
    sealed = bytearray(box.seal("signature", "aad"))
    sealed[-1] ^= 1
    with pytest.raises(SealError):
        box.open(bytes(sealed), "aad")
    with pytest.raises(SealError, match="does not have"):
        SecretBox(decode_key(OTHER_KEY)).open(box.seal("s", "aad"), "aad")
    with pytest.raises(SealError, match="not a sealed value"):
        box.open(b"plaintext", "aad")


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_serve_refuses_to_start_with_a_key_that_cannot_open_the_signatures(db, db_url, tmp_path):
    import os
    import subprocess
    import sys

    from control_plane.domain.callbacks import Settings
    from control_plane.domain.tenancy import Principal

    company = models.Company.create(id=new_id(), slug="acme", name="A", created_at=utcnow())
    flow = models.Flow.create(
        id=new_id(), company=company, name="f", draft_number=1, created_at=utcnow()
    )
    callbacks.create_callback(Principal("k", None), flow.id, Settings())
    db.close()
    done = subprocess.run(
        [sys.executable, "-m", "control_plane", "serve"],
        env={
            **os.environ,
            "DATABASE_URL": db_url,
            "BOOMERANG_LISTEN": "127.0.0.1:0",
            "BOOMERANG_SECRET_KEY": OTHER_KEY,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot open the stored callback signatures" in done.stderr
    assert OTHER_KEY not in done.stderr + done.stdout


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_rotate_secret_key_command_reseals_with_the_new_key(db, db_url):
    import os
    import subprocess
    import sys

    from control_plane.domain.callbacks import Settings
    from control_plane.domain.tenancy import Principal

    company = models.Company.create(id=new_id(), slug="acme", name="A", created_at=utcnow())
    flow = models.Flow.create(
        id=new_id(), company=company, name="f", draft_number=1, created_at=utcnow()
    )
    cb = callbacks.create_callback(Principal("k", None), flow.id, Settings())
    signature = cb.signature
    db.close()
    env = {**os.environ, "DATABASE_URL": db_url, "BOOMERANG_SECRET_KEY": OTHER_KEY}
    command = [sys.executable, "-m", "control_plane", "rotate-secret-key"]
    without_old = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert without_old.returncode == 2  # the old key is needed to open what it sealed
    env["BOOMERANG_SECRET_KEY_PREVIOUS"] = SECRET_KEY
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "re-sealed 1 callback signature(s)" in done.stdout

    secrets.install(SecretBox(decode_key(OTHER_KEY)))  # the new key alone now opens it
    db.connect(reuse_if_open=True)
    assert models.Callback.get_by_id(cb.id).signature == signature
