"""Where the secret key comes from: BOOMERANG_SECRET_KEY, else a key file made once.

The key file is `<state dir>/secret-key` (base64), 0600 in a 0700 directory. The state dir is
BOOMERANG_STATE_DIR, else the SQLite database's directory, else (PostgreSQL) `.boomerang`.
Replicas sharing a PostgreSQL database must share the key: give each the same
BOOMERANG_SECRET_KEY (docs/security.md).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from urllib.parse import urlparse

from control_plane.secrets.box import SecretBox, decode_key, encode_key
from control_plane.secrets.files import create_private, private_dir, tighten

log = logging.getLogger(__name__)

KEY_FILE = "secret-key"
DEFAULT_STATE_DIR = ".boomerang"


def state_dir(database_url: str, configured: str = "") -> Path:
    if configured:
        return Path(configured)
    if urlparse(database_url).scheme == "sqlite":
        path = database_url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            return Path(os.path.dirname(os.path.abspath(path)))
    return Path(DEFAULT_STATE_DIR)


def load_box(database_url: str, secret_key: str, previous: str, configured_dir: str) -> SecretBox:
    """The box for this process: the configured key, or the state dir's key file (made now if
    there is none), opening values sealed by the `previous` keys too (comma-separated base64)."""
    old = [
        decode_key(text, "BOOMERANG_SECRET_KEY_PREVIOUS") for text in previous.split(",") if text
    ]
    if secret_key:
        return SecretBox(decode_key(secret_key), old)
    return SecretBox(_key_file(state_dir(database_url, configured_dir), database_url), old)


def _key_file(directory: Path, database_url: str) -> bytes:
    path = directory / KEY_FILE
    private_dir(directory)
    if create_private(path, (encode_key(os.urandom(32)) + "\n").encode()):
        log.info(
            "generated the secret key that seals callback signatures and connection secrets: %s",
            path,
        )
        if urlparse(database_url).scheme != "sqlite":
            log.warning(
                "every control-plane replica on this database must use this same key: copy it "
                "into BOOMERANG_SECRET_KEY on each (docs/security.md)"
            )
    tighten(path)
    return decode_key(path.read_text(encoding="utf-8"), f"the key file {path}")
