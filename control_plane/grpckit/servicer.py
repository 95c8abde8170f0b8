"""What every servicer shares: authenticate, run the domain call on a database thread, map errors.

Database work is blocking (peewee), so a whole call — key check, domain logic, conversion to
messages — runs as one job on the database thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import grpc

from control_plane.config import Settings
from control_plane.domain.errors import DomainError
from control_plane.domain.tenancy import Principal, authenticate
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
    ) -> T:
        """Authenticates, runs `fn(principal)` on a database thread, maps failures to status."""
        token = bearer(context)

        def job() -> T:
            principal = authenticate(token)
            if admin:
                principal.require_admin()
            return fn(principal)

        try:
            result = await self.rt.db(job)
        except DomainError as err:
            await context.abort_with_status(to_status(err))
        except Exception:
            log.exception("unexpected error in %s", type(self).__name__)
            await context.abort_with_status(internal_status())
        if writes:
            self.rt.on_write()
        return result
