"""Secret-holding files are this user's only: 0600 files in 0700 directories (docs/security.md).

The SQLite database (with its -wal and -shm), the control plane's key file, and the edge's
state (last-known-good copy, edge id).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from control_plane.secrets.box import KEY_BYTES
from control_plane.secrets.keys import KEY_FILE, load_box
from control_plane.store.db import database, open_database
from edge import lkg
from edge.cache import EMPTY
from edge.config import EDGE_ID_FILE, stored_edge_id


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask():
    """The common default umask: files 0644 and directories 0755 unless the code says otherwise."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_migrate_makes_the_database_its_wal_shm_and_the_key_file_private(tmp_path, loose_umask):
    state = tmp_path / "state" / "deep"  # parents are created too
    url = f"sqlite:///{state}/boomerang.db"
    done = subprocess.run(
        [sys.executable, "-m", "control_plane", "migrate"],
        env={**os.environ, "DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert mode(tmp_path / "state") == 0o700
    assert mode(state) == 0o700
    assert mode(state / "boomerang.db") == 0o600
    assert mode(state / KEY_FILE) == 0o600

    # -wal and -shm exist while a connection is open in WAL mode: check them then.
    db = open_database(url)
    try:
        db.connect()
        db.execute_sql("CREATE TABLE t (x)")
        db.execute_sql("INSERT INTO t VALUES (1)")
        for suffix in ("-wal", "-shm"):
            assert mode(Path(f"{state}/boomerang.db{suffix}")) == 0o600, suffix
    finally:
        db.close()
        database.obj.close()


def test_an_existing_database_left_readable_by_others_is_tightened(tmp_path, loose_umask):
    path = tmp_path / "old.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").write_bytes(b"")
        os.chmod(f"{path}{suffix}", 0o644)
    open_database(f"sqlite:///{path}")
    for suffix in ("", "-wal", "-shm"):
        assert mode(Path(f"{path}{suffix}")) == 0o600, suffix


def test_the_key_file_is_made_once_and_reused(tmp_path, loose_umask):
    url = f"sqlite:///{tmp_path}/db/boomerang.db"
    first = load_box(url, "", "", "")
    again = load_box(url, "", "", "")
    key_file = tmp_path / "db" / KEY_FILE
    assert mode(key_file) == 0o600 and mode(tmp_path / "db") == 0o700
    assert first.key_id == again.key_id
    sealed = first.seal("sig", "aad")
    assert again.open(sealed, "aad") == "sig"


def test_a_configured_key_writes_no_file_and_a_bad_one_is_refused(tmp_path):
    import base64

    url = f"sqlite:///{tmp_path}/boomerang.db"
    load_box(url, base64.b64encode(b"k" * KEY_BYTES).decode(), "", "")
    assert not (tmp_path / KEY_FILE).exists()
    with pytest.raises(ValueError, match="BOOMERANG_SECRET_KEY must decode to 32 bytes"):
        load_box(url, base64.b64encode(b"short").decode(), "", "")
    with pytest.raises(ValueError, match="must be base64") as err:
        load_box(url, "not base64 at all!", "", "")
    assert "not base64 at all" not in str(err.value)  # never echo a secret


def test_postgres_key_file_goes_to_the_state_dir(tmp_path, loose_umask):
    load_box("postgres://u@h:5432/db", "", "", str(tmp_path / "cp"))
    assert mode(tmp_path / "cp") == 0o700
    assert mode(tmp_path / "cp" / KEY_FILE) == 0o600


def test_the_edge_state_dir_lkg_and_edge_id_are_private(tmp_path, loose_umask):
    state = tmp_path / "edge" / "state"
    stored_edge_id(state)
    assert mode(state) == 0o700 and mode(state.parent) == 0o700
    assert mode(state / EDGE_ID_FILE) == 0o600

    other = tmp_path / "other"
    lkg.save(other / "lkg.binpb", EMPTY)
    assert mode(other) == 0o700
    assert mode(other / "lkg.binpb") == 0o600
