"""Signature checks against the SHA-256 digests in the cache (docs/design.md §3, §5).

The edge never holds a signature, only digests, compared in constant time. An unknown callback
costs the same hash and one comparison against a dummy digest, so the answer (403 either way) and
its timing do not tell whether a callback exists.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

#: Query parameter and header that carry the signature (names kept from the hosted product).
QUERY_PARAM = "patchworks_signature"
HEADER = "patchworks-signature"

_DUMMY_DIGESTS = (hashlib.sha256(b"no such callback").digest(),)


def digest(signature: str) -> bytes:
    return hashlib.sha256(signature.encode("utf-8", "surrogateescape")).digest()


def matches(signature: str, digests: Iterable[bytes] | None) -> bool:
    """Whether `signature` is one of `digests`; None (unknown callback) never matches."""
    candidate = digest(signature)
    ok = False
    # No short-circuit: every digest is compared, whatever the outcome.
    for d in _DUMMY_DIGESTS if digests is None else digests:
        ok |= hmac.compare_digest(candidate, d)
    return ok and digests is not None
