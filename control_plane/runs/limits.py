"""The runs_in_flight quota of each company, as the runner reads it: cached for TTL_S.

Starting a run must not cost a database query, so a company's quota is read at most once per
TTL_S seconds per runner; a change made with SetQuotas applies within that time.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from control_plane.domain import quotas

#: How long a quota read from the database is used before it is read again.
TTL_S = 5.0
#: Past this many cached companies, expired entries are dropped when a new one is read.
_PRUNE_AT = 10_000


class RunLimits:
    def __init__(self, ttl_s: float = TTL_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s, self.clock = ttl_s, clock
        self._cache: dict[str, tuple[float, int]] = {}

    def get(self, company_id: str) -> int | None:
        """The cached limit, or None when it must be loaded (`load`, on a database thread)."""
        entry = self._cache.get(company_id)
        if entry is None or entry[0] < self.clock():
            return None
        return entry[1]

    def load(self, company_id: str) -> int:
        """Reads the company's quota (blocking) and caches it."""
        value = quotas.for_company(company_id).runs_in_flight
        now = self.clock()
        if len(self._cache) >= _PRUNE_AT:
            self._cache = {k: e for k, e in self._cache.items() if e[0] >= now}
        self._cache[company_id] = (now + self.ttl_s, value)
        return value
