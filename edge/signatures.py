"""Signature checks against the SHA-256 digests in the cache (docs/design.md §3, §5;
docs/callback-security.md for the grace period).

The edge never holds a signature, only digests, compared in constant time. Every check compares
the same number of digests (COMPARED): the current one, the previous one while its grace lasts
and dummies for the rest; an unknown callback compares only dummies. So neither the answer (403
either way) nor its timing tells whether a callback exists or has a signature in grace.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edge.cache import CallbackRecord

#: Query parameter and header that carry the signature (names kept from the hosted product).
QUERY_PARAM = "patchworks_signature"
HEADER = "patchworks-signature"

#: Digests compared per check: the current signature and one previous one in grace.
COMPARED = 2
_DUMMY_DIGESTS = tuple(hashlib.sha256(b"no such callback %d" % i).digest() for i in range(COMPARED))


def digest(signature: str) -> bytes:
    return hashlib.sha256(signature.encode("utf-8", "surrogateescape")).digest()


def matches(signature: str, digests: Sequence[bytes] | None) -> bool:
    """Whether `signature` is one of `digests`; None (unknown callback) never matches."""
    candidate = digest(signature)
    known = tuple(digests) if digests is not None else ()
    ok = False
    # No short-circuit, and never fewer than COMPARED comparisons, whatever the outcome.
    for d in _padded(known):
        ok |= hmac.compare_digest(candidate, d)
    return ok and digests is not None


def _padded(digests: tuple[bytes, ...]) -> Iterable[bytes]:
    return digests + _DUMMY_DIGESTS[len(digests) :]


def accepted_digests(
    record: CallbackRecord | None, now_ms: int | None = None
) -> list[bytes] | None:
    """The digests `record` accepts at `now_ms` (the edge's own clock): the current ones and the
    previous one until its grace ends, so it ends on time even with the control plane down."""
    if record is None:
        return None
    digests = list(record.signature_digests)
    if record.previous_signature_digest:
        now_ms = int(time.time() * 1000) if now_ms is None else now_ms
        if now_ms < record.previous_signature_expires_ms:
            digests.append(record.previous_signature_digest)
    return digests
