"""The admin-key bootstrap of `python -m control_plane`, run as a real process."""

from __future__ import annotations

import os
import subprocess
import sys

from control_plane.domain.tenancy import authenticate
from control_plane.store.db import open_database


def _run(args: list[str], url: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "control_plane", *args],
        env={**os.environ, "DATABASE_URL": url, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_serve_refuses_pending_migrations_and_create_admin_key_lets_an_operator_back_in(tmp_path):
    url = f"sqlite:///{tmp_path}/cp.db"
    refused = _run(["serve"], url, BOOMERANG_LISTEN="127.0.0.1:0")
    assert refused.returncode == 2 and "pending migrations" in refused.stderr

    assert _run(["migrate"], url).returncode == 0
    made = _run(["create-admin-key"], url)
    assert made.returncode == 0
    secret = made.stdout.strip()
    assert secret.startswith("bmk_")
    with open_database(url).connection_context():
        assert authenticate(secret).is_admin
