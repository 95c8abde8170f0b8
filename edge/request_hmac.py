"""HMAC-verified requests (docs/callback-security.md): a callback with an HMAC scheme only runs
for requests that prove they come from the holder of its secret.

Checked after the signature (so unknown callbacks and wrong signatures still get the plain 403)
and before anything else that could start a run:

- PATCHWORKS: `X-HMAC-HASH` is the hex SHA-256 HMAC of the raw body with the secret's UTF-8
  bytes. Lowercase is what senders send; uppercase is accepted too. Compared in constant time.
- STANDARD_WEBHOOKS: `webhook-id`, `webhook-timestamp`, `webhook-signature`, verified by the
  `standardwebhooks` package (timestamp within its 5-minute tolerance of this edge's clock). A
  webhook-id this edge has already accepted for the callback is a replay (`ReplayMemory`).

Missing headers: 401 `hmac_missing`. A wrong value, a bad or out-of-tolerance timestamp, a body
that is not UTF-8 (the package signs text): 403 `hmac_invalid`. A replay: 409 `hmac_replayed`.
Nothing about the secret or the expected value is ever logged or answered.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections import OrderedDict

from sanic import Request
from standardwebhooks.webhooks import (
    EmptyWebhookSecretError,
    Webhook,
    WebhookVerificationError,
)

from edge import errors
from edge.cache import CallbackRecord

PATCHWORKS, STANDARD_WEBHOOKS = 1, 2  # HmacScheme values (resources.proto)
PATCHWORKS_HEADER = "x-hmac-hash"
SW_HEADERS = ("webhook-id", "webhook-timestamp", "webhook-signature")
#: The standardwebhooks package's own timestamp tolerance (it is not configurable there).
SW_TOLERANCE_S = 300

#: Webhook ids remembered per callback, and in total, by one edge. Within the tolerance window a
#: sender needing more than this is answered 429 `rate_limited` until the oldest id expires.
MAX_IDS_PER_CALLBACK = 10_000
MAX_IDS_TOTAL = 100_000


class ReplayMemory:
    """Webhook ids this edge accepted, per callback, each until its timestamp leaves the
    tolerance window (after that the timestamp check refuses the replay anyway).

    Bounded per callback and in total, so a tenant cannot grow an edge's memory without limit.
    Ids are kept as 16-byte digests: a webhook-id may be as long as a header allows. An id is
    released again when its request ends without starting a run (`release`), so a sender's
    retry after, say, a 429 or 503 is not taken for a replay.
    """

    def __init__(self) -> None:
        # callback id -> (id digest -> expiry, epoch seconds), in insertion order.
        self._seen: dict[str, OrderedDict[bytes, float]] = {}
        self._total = 0

    def __len__(self) -> int:
        return self._total

    def claim(self, callback_id: str, webhook_id: str, timestamp_s: float, now: float) -> bytes:
        """Records `webhook_id`; raises HmacReplayed if held, RateLimited at a bound."""
        key = hashlib.sha256(webhook_id.encode("utf-8", "surrogateescape")).digest()[:16]
        self._prune(callback_id, now)
        seen = self._seen.setdefault(callback_id, OrderedDict())
        expires = seen.get(key)
        if expires is not None and expires > now:
            raise errors.HmacReplayed
        if len(seen) >= MAX_IDS_PER_CALLBACK:
            raise _full(min(seen.values()) - now)
        if self._total >= MAX_IDS_TOTAL:
            for other in list(self._seen):
                self._prune(other, now)
            if self._total >= MAX_IDS_TOTAL:
                raise _full(min(min(s.values()) for s in self._seen.values() if s) - now)
        if expires is not None:  # expired but not yet pruned: replaced below
            del seen[key]
            self._total -= 1
        seen[key] = timestamp_s + SW_TOLERANCE_S
        self._total += 1
        return key

    def release(self, callback_id: str, key: bytes) -> None:
        seen = self._seen.get(callback_id)
        if seen is not None and seen.pop(key, None) is not None:
            self._total -= 1
            if not seen:
                del self._seen[callback_id]

    def _prune(self, callback_id: str, now: float) -> None:
        """Drops expired ids from the front (insertion order): an id still valid there may keep
        later expired ones a little longer, never forgets one still needed."""
        seen = self._seen.get(callback_id)
        if seen is None:
            return
        while seen:
            key, expires = next(iter(seen.items()))
            if expires > now:
                break
            del seen[key]
            self._total -= 1
        if not seen:
            del self._seen[callback_id]


def _full(wait_s: float) -> errors.RateLimited:
    return errors.RateLimited(headers={"retry-after": str(max(1, math.ceil(wait_s)))})


def verify(request: Request, record: CallbackRecord, memory: ReplayMemory) -> bytes | None:
    """Raises the request's HMAC failure, if any; returns the claimed webhook-id digest (None
    for other schemes), to release if the request ends without a run."""
    if record.hmac_scheme == PATCHWORKS:
        _patchworks(request, record.hmac_secret)
        return None
    if record.hmac_scheme == STANDARD_WEBHOOKS:
        return _standard_webhooks(request, record, memory)
    if record.hmac_scheme:
        # A scheme from a newer control plane that this edge cannot check: fail closed.
        raise errors.HmacInvalid
    return None


def _patchworks(request: Request, secret: bytes) -> None:
    given = request.headers.get(PATCHWORKS_HEADER, "").strip(" \t")
    if not given:
        raise errors.HmacMissing
    expected = hmac.new(secret, request.body, hashlib.sha256).hexdigest().encode()
    # Bytes, not str: compare_digest refuses non-ASCII str, and a caller controls this value.
    if not hmac.compare_digest(expected, given.encode("utf-8", "surrogateescape").lower()):
        raise errors.HmacInvalid


def _standard_webhooks(request: Request, record: CallbackRecord, memory: ReplayMemory) -> bytes:
    headers = {name: request.headers.get(name, "").strip(" \t") for name in SW_HEADERS}
    if not all(headers.values()):
        raise errors.HmacMissing
    try:
        Webhook(record.hmac_secret.decode()).verify(request.body, headers, json_parse=False)
        timestamp = float(headers["webhook-timestamp"])
    except (WebhookVerificationError, EmptyWebhookSecretError, ValueError, UnicodeError):
        # ValueError: a malformed signature list or base64; UnicodeError: a body that is not
        # UTF-8, which the package cannot verify.
        raise errors.HmacInvalid from None
    return memory.claim(record.id, headers["webhook-id"], timestamp, time.time())
