"""Sealing secrets the control plane must give back later (callback signatures) with AES-GCM.

A sealed value is `version (1 byte) | key id (8) | nonce (12) | ciphertext + tag`. The key id
(the first 8 bytes of SHA-256 of the key) says which key sealed it, so a box holding the current
key and the previous ones opens values sealed before a rotation. The associated data names what
the value is (e.g. "callback/<id>/signature"): a sealed value copied onto another row does not
open there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

VERSION = b"\x01"
KEY_BYTES = 32
_ID_BYTES = 8
_NONCE_BYTES = 12
_HEADER = len(VERSION) + _ID_BYTES


class SealError(Exception):
    """A sealed value that this box cannot open: unknown key, wrong row, or tampered with."""


def key_id(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()[:_ID_BYTES]


def decode_key(text: str, name: str = "BOOMERANG_SECRET_KEY") -> bytes:
    """A key from its base64 text (standard or URL-safe alphabet); ValueError says what is wrong.

    The message never contains the text itself: it is a secret.
    """
    cleaned = text.strip()
    try:
        key = base64.b64decode(cleaned.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{name} must be base64 (e.g. `openssl rand -base64 32`)") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{name} must decode to {KEY_BYTES} bytes, not {len(key)}")
    return key


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode()


class SecretBox:
    """Seals with `key`; opens what `key` or any of `previous` sealed."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        self.key_id = key_id(key)
        self._sealer = AESGCM(key)
        self._openers = {key_id(k): AESGCM(k) for k in (*previous, key)}

    def seal(self, plaintext: str, aad: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)  # random 96-bit nonces: safe far beyond our volume
        sealed = self._sealer.encrypt(nonce, plaintext.encode(), aad.encode())
        return VERSION + self.key_id + nonce + sealed

    def open(self, sealed: bytes, aad: str) -> str:
        sealed = bytes(sealed)
        if sealed[:1] != VERSION or len(sealed) < _HEADER + _NONCE_BYTES:
            raise SealError("not a sealed value")
        opener = self._openers.get(sealed[1:_HEADER])
        if opener is None:
            raise SealError(
                f"sealed with key {sealed[1:_HEADER].hex()}, which this process does not have "
                "(every control-plane replica needs the same BOOMERANG_SECRET_KEY)"
            )
        nonce = sealed[_HEADER : _HEADER + _NONCE_BYTES]
        try:
            return opener.decrypt(nonce, sealed[_HEADER + _NONCE_BYTES :], aad.encode()).decode()
        except InvalidTag:
            raise SealError(f"the value sealed for {aad!r} does not open: not its row") from None

    def is_current(self, sealed: bytes) -> bool:
        """Sealed with this box's (current) key: a rotation need not touch it."""
        return bytes(sealed)[1:_HEADER] == self.key_id
