"""The status URL of an async run: `GET|HEAD /api/v1/{company}/runs/{status_token}`.

A caller answered 202 (`Prefer: respond-async`, or a callback's async_after_ms) polls it: 202
(with `Location` and `Retry-After`) while the run has not answered, then the answer it would
have waited for, rendered by the same functions as a live answer (edge/answers.py), and 404
`run_not_found` once its retention ends. Any edge answers it: the answer is kept by the control
plane and read with RunnerService.GetRunAnswer on a runner's channel.

No signature: the token is the capability. It is the run id (26 characters) and 52 base-32
characters (260 random bits), so it cannot be guessed; anyone holding it may read the answer,
and it is never logged (logs show the run id part only: errors.loggable_path).

Polling needs no authentication, so what it can cost the control plane is bounded at each edge
by two token buckets: LOOKUPS_PER_COMPANY_PER_S per company slug in the URL (one tenant's
pollers do not starve another's) and LOOKUPS_PER_EDGE_PER_S in all (slugs are the caller's to
choose, so the per-company buckets alone bound nothing). Past either: 429 `rate_limited` with
Retry-After. A token (or company slug) of the wrong shape is refused (404) before either,
without a lookup.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable

from sanic import Request
from sanic.response import HTTPResponse

from edge import answers, errors
from edge.rate_limits import RateLimiter
from edge.runflow_client import RunnerUnavailable

METHODS = ("GET", "HEAD")
PATH = "/api/v1/<company>/runs/<status_token>"

#: Status lookups an edge passes to the control plane per second, per company and in all.
#: Bursts of one second's worth pass at once.
LOOKUPS_PER_COMPANY_PER_S = 20
LOOKUPS_PER_EDGE_PER_S = 200
#: Companies with a bucket of their own before all are forgotten (a flood of made-up slugs
#: can only refill buckets, and LOOKUPS_PER_EDGE_PER_S still holds).
MAX_COMPANY_BUCKETS = 10_000

# A run id (a lowercase ULID) then 52 lowercase base-32 characters.
_TOKEN = re.compile(r"[0-9a-z]{26}[a-z2-7]{52}")
# A company slug, as the control plane allows them (control_plane/domain/validation.py): also
# what keeps the per-company buckets' keys short.
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")


class StatusLimiter:
    """The two token buckets in front of GetRunAnswer."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._companies = RateLimiter(clock, max_keys=MAX_COMPANY_BUCKETS)
        self._edge = RateLimiter(clock)

    def take(self, company: str) -> float:
        """0.0 if a lookup for `company` may go now, else seconds until one would."""
        wait_s = self._companies.take(company, LOOKUPS_PER_COMPANY_PER_S * 60)
        return wait_s or self._edge.take("", LOOKUPS_PER_EDGE_PER_S * 60)


async def handle(request: Request, company: str, status_token: str) -> HTTPResponse:
    if not _TOKEN.fullmatch(status_token) or not _SLUG.fullmatch(company):
        raise errors.RunNotFound
    ctx = request.app.ctx
    wait_s = ctx.status_limiter.take(company)
    if wait_s:
        raise errors.StatusRateLimited(headers={"retry-after": str(math.ceil(wait_s))})
    runners = ctx.runners
    if runners is None:
        raise errors.StatusUnavailable
    try:
        found = await runners.run_answer(company, status_token)
    except RunnerUnavailable:
        raise errors.StatusUnavailable from None
    if found is None:
        raise errors.RunNotFound
    if not found.HasField("answer"):
        return answers.queued_response(
            company, status_token, found.run_id, preference_applied=False
        )
    return answers.stored_response(found.answer, company, found.run_id, preference_applied=False)
