"""How many of one company's outbound calls are in flight at once on a runner.

The runner's outbound pool (BOOMERANG_OUTBOUND_MAX_CONNECTIONS, 32 calls in flight) is shared
by every company's connector shapes. Unbounded, one company whose upstream answers slowly (up to
a minute an attempt) could hold every slot with its runs, and every other company's calls would
wait behind them. So a call first takes one of its company's slots
(BOOMERANG_OUTBOUND_COMPANY_CALLS, 16), then one of the pool's: a company that has used its own
waits for them, in arrival order, without holding any of the pool's (docs/connector.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class CompanySlots:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        #: A semaphore per company with calls in flight or waiting; dropped when it has none,
        #: so the map holds only active companies.
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._users: dict[str, int] = {}

    def in_flight(self, company: str) -> int:
        """Calls of `company` holding a slot now (for tests)."""
        slots = self._slots.get(company)
        return 0 if slots is None else self.limit - slots._value

    @asynccontextmanager
    async def hold(self, company: str) -> AsyncIterator[None]:
        slots = self._slots.get(company)
        if slots is None:
            slots = self._slots[company] = asyncio.Semaphore(self.limit)
        self._users[company] = self._users.get(company, 0) + 1
        try:
            async with slots:
                yield
        finally:
            users = self._users[company] - 1
            if users:
                self._users[company] = users
            else:
                del self._users[company], self._slots[company]
