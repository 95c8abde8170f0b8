"""When an outbound call is tried again, and after how long.

Only what a repeat can fix is retried: the connection failing (refused, reset, timed out
connecting), 429 and 5xx. An answer that came back (4xx) and a timeout waiting for the answer
are not: the upstream may have acted on the request (the Idempotency-Key lets it tell a repeat,
but the connector does not count on every upstream honouring it). Waits are exponential with
full jitter (0.5 s, 1 s … capped), or the upstream's `Retry-After` when it gives one, up to
`MAX_RETRY_AFTER_S`; a wait that would end past the call's deadline is not waited: the call
fails with what it last got.
"""

from __future__ import annotations

import email.utils
import random
import time

BASE_DELAY_S = 0.5
MAX_DELAY_S = 8.0
#: A longer Retry-After is not waited for: the call fails with the 429/503 it got.
MAX_RETRY_AFTER_S = 60.0


def retryable_status(status: int) -> bool:
    return status == 429 or 500 <= status <= 599


def backoff(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before retry number `attempt` (1, 2): full jitter over an exponential cap."""
    cap = min(MAX_DELAY_S, BASE_DELAY_S * (2 ** (attempt - 1)))
    return (rng or random).uniform(0.0, cap)


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """A Retry-After header (delay-seconds or an HTTP date) in seconds; None when absent or
    unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
