"""Per-callback rate limits (docs/design.md §5): a token bucket per callback, in this edge's memory.

A callback's `rate_limit_per_minute` refills its bucket continuously; the bucket holds one
second's worth (at least one request), so short bursts pass and sustained excess gets 429 with
the seconds until the next request would pass. Limits are per edge: behind a load balancer over
N edges a callback admits up to N times its limit (a shared counter would put a network round
trip on every request).
"""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 0) -> None:
        self._clock = clock
        # callback id -> [tokens, time of last update]
        self._buckets: dict[str, list[float]] = {}
        #: > 0: forget every bucket when a new key would pass this many. For keys a caller
        #: chooses without authenticating (edge/status_urls.py); forgetting refills buckets,
        #: which a limit behind this one must bound.
        self._max_keys = max_keys

    def take(self, callback_id: str, per_minute: int) -> float:
        """Takes one request's token: 0.0 if it may pass, else seconds until one would."""
        if per_minute <= 0:
            return 0.0
        rate = per_minute / 60.0
        burst = max(1.0, rate)
        now = self._clock()
        bucket = self._buckets.get(callback_id)
        if bucket is None:
            if self._max_keys and len(self._buckets) >= self._max_keys:
                self._buckets.clear()
            bucket = self._buckets[callback_id] = [burst, now]
        tokens = min(burst, bucket[0] + (now - bucket[1]) * rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / rate
