"""Identifiers and secrets."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import threading
import time

# Crockford's base 32 (the ULID alphabet), lowercase; and every pair of its characters, so one
# lookup encodes 10 bits.
_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"
_PAIRS = tuple(a + b for a in _CROCKFORD for b in _CROCKFORD)
_RANDOM_BITS = 80

_lock = threading.Lock()  # ids are made on the event loop and on database threads
_last_ms = 0
_last_random = 0


def _forget_last() -> None:
    """In a forked child: draw fresh randomness, so parent and child never continue the same
    sequence (and make the same id) within one millisecond."""
    global _lock, _last_ms, _last_random
    _lock, _last_ms, _last_random = threading.Lock(), 0, 0


os.register_at_fork(after_in_child=_forget_last)


def new_id() -> str:
    """A lowercase ULID (48-bit millisecond time, 80 random bits, 26 characters of Crockford's
    base 32): sortable by creation time, never reused. Within one millisecond (or if the clock
    steps back) the last id's random part is incremented, so a process's ids strictly increase,
    as python-ulid's StrictMonotonicPolicy makes them.

    By hand rather than with python-ulid: its generator cost ~6 µs an id, a run's largest single
    cost on the runner's loop besides the flow (bench/hotspots.py); this costs ~1.5 µs."""
    global _last_ms, _last_random
    ms = time.time_ns() // 1_000_000
    with _lock:
        if ms > _last_ms:
            random = int.from_bytes(os.urandom(10))
        else:
            ms, random = _last_ms, _last_random + 1
            if random >> _RANDOM_BITS:  # 2^80 ids in one millisecond: borrow the next one
                ms, random = ms + 1, int.from_bytes(os.urandom(10))
        _last_ms, _last_random = ms, random
    value = ms << _RANDOM_BITS | random
    p = _PAIRS
    # 130 bits as 13 pairs of characters; the top 2 bits are 0 (a ULID starts with 0-7).
    return (
        p[value >> 120]
        + p[value >> 110 & 1023]
        + p[value >> 100 & 1023]
        + p[value >> 90 & 1023]
        + p[value >> 80 & 1023]
        + p[value >> 70 & 1023]
        + p[value >> 60 & 1023]
        + p[value >> 50 & 1023]
        + p[value >> 40 & 1023]
        + p[value >> 30 & 1023]
        + p[value >> 20 & 1023]
        + p[value >> 10 & 1023]
        + p[value & 1023]
    )


def new_signature() -> str:
    """52 lowercase base-32 characters: 260 bits from the OS CSPRNG (docs/design.md §1)."""
    # 33 random bytes = 264 bits -> 53 base-32 characters (no padding); keep 52 = 260 bits.
    return base64.b32encode(secrets.token_bytes(33)).decode().lower()[:52]


def digest(secret: str) -> bytes:
    """SHA-256 of a secret: what edges (signatures) and the key table (API keys) keep."""
    return hashlib.sha256(secret.encode()).digest()
