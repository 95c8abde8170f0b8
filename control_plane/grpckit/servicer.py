"""What every servicer shares: authenticate, run the domain call on a database thread, map errors.

Database work is blocking (peewee), so a whole call — key check, domain logic, conversion to
messages — runs as one job on the database thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from control_plane.config import Settings
from control_plane.domain.errors import DomainError
from control_plane.domain.tenancy import ONLY_FULL, Principal, authenticate
from control_plane.grpckit.revocation import KeySessions
from control_plane.grpckit.status import internal_status, to_status
from control_plane.store.db import database

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class Runtime:
    """Process-wide resources handed to every servicer."""

    settings: Settings
    executor: ThreadPoolExecutor
    # Called after every successful write, so this process's change feed wakes at once.
    on_write: Callable[[], None] = lambda: None
    # Open-ended calls by API key: revoking a key ends them (grpckit/revocation.py).
    sessions: KeySessions = field(default_factory=KeySessions)

    async def db(self, fn: Callable[[], T]) -> T:
        """Runs blocking database work on the pool, with a connection (re)opened if needed."""

        def job() -> T:
            database.connect(reuse_if_open=True)
            return fn()

        return await asyncio.get_running_loop().run_in_executor(self.executor, job)


def bearer(context: grpc.aio.ServicerContext) -> str:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            scheme, _, token = value.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return ""


class Servicer:
    def __init__(self, runtime: Runtime) -> None:
        self.rt = runtime

    async def call(
        self,
        context: grpc.aio.ServicerContext,
        fn: Callable[[Principal], T],
        *,
        writes: bool = False,
        admin: bool = False,
        scopes: frozenset[str] = ONLY_FULL,
        open_ended: bool = False,
    ) -> T:
        """Authenticates, runs `fn(principal)` on a database thread, maps failures to status.

        `scopes`: the key scopes this RPC takes (FULL only, unless it is a machine RPC).
        `open_ended`: the RPC goes on after this (a stream, a wait), so it is registered under
        its key until it ends: revoking the key ends it (grpckit/revocation.py).
        """
        token = bearer(context)

        def job() -> tuple[Principal, T]:
            principal = authenticate(token)
            principal.require_scope(scopes)
            if admin:
                principal.require_admin()
            return principal, fn(principal)

        try:
            principal, result = await self.rt.db(job)
        except DomainError as err:
            await context.abort_with_status(to_status(err))
        except Exception:
            log.exception("unexpected error in %s", type(self).__name__)
            await context.abort_with_status(internal_status())
        if writes:
            self.rt.on_write()
        if open_ended:
            self.rt.sessions.open(principal.key_id, context)
        return result
