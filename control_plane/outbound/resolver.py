"""The runner's connection resolver: connection names looked up in the store.

`control_plane.domain.connections.resolve_connection` (company slug, name) is blocking database
work, so it runs on the runtime's database pool. It is imported when first needed: a build
without the connections store treats every name as unknown (the connector then fails with
"unknown connection"), rather than failing to start.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from control_plane.outbound.client import Resolver
from control_plane.outbound.credentials import ResolvedConnection


def store_resolver(db: Callable[[Callable[[], Any]], Awaitable[Any]]) -> Resolver:
    """A resolver running the store's lookup through `db` (Runtime.db)."""

    async def resolve(company: str, name: str) -> ResolvedConnection | None:
        try:
            from control_plane.domain.connections import resolve_connection
        except ImportError:
            return None
        return await db(lambda: resolve_connection(company, name))

    return resolve
