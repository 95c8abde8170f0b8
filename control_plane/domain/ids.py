"""Identifiers and secrets."""

from __future__ import annotations

import base64
import hashlib
import secrets

from ulid import ULID


def new_id() -> str:
    """A lowercase ULID: sortable by creation time, never reused."""
    return str(ULID()).lower()


def new_signature() -> str:
    """52 lowercase base-32 characters: 260 bits from the OS CSPRNG (docs/design.md §1)."""
    # 33 random bytes = 264 bits -> 53 base-32 characters (no padding); keep 52 = 260 bits.
    return base64.b32encode(secrets.token_bytes(33)).decode().lower()[:52]


def digest(secret: str) -> bytes:
    """SHA-256 of a secret: what edges (signatures) and the key table (API keys) keep."""
    return hashlib.sha256(secret.encode()).digest()
