"""What every servicer shares: authenticate, run the domain call on a database thread, map errors.

Database work is blocking (peewee), so a whole call — key check, domain logic, conversion to
messages — runs as one job on the database thread pool, never on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

import grpc

from control_plane.config import Settings
from control_plane.domain.errors import DomainError
from control_plane.domain.tenancy import ONLY_FULL, Principal, authenticate
from control_plane.grpckit.company_calls import CompanyCalls
from control_plane.grpckit.revocation import KeySessions
from control_plane.grpckit.status import internal_status, to_status
from control_plane.store.db import database

log = logging.getLogger(__name__)
T = TypeVar("T")
_WAIT = object()  # the job's answer when the company's slots were all taken


@dataclass
class Runtime:
    """Process-wide resources handed to every servicer."""

    settings: Settings
    executor: ThreadPoolExecutor
    # Called after every successful write, so this process's change feed wakes at once.
    on_write: Callable[[], None] = lambda: None
    # Open-ended calls by API key: revoking a key ends them (grpckit/revocation.py).
    sessions: KeySessions = field(default_factory=KeySessions)

    # A call made with a company's key holds one of its slots while its job runs (grpckit/
    # company_calls.py). None: not counted (tests of single servicers).
    company_calls: CompanyCalls | None = None

    async def db(self, fn: Callable[[], T], on_done: Callable[[Future], None] | None = None) -> T:
        """Runs blocking database work on the pool, with a connection (re)opened if needed.
        `on_done` is called when the job ends on its thread, or is dropped before it started
        (the caller cancelled): a cancelled caller does not end a job already running."""

        def job() -> T:
            database.connect(reuse_if_open=True)
            return fn()

        future = self.executor.submit(job)
        if on_done is not None:
            future.add_done_callback(on_done)
        return await asyncio.wrap_future(future)


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
        calls, loop = self.rt.company_calls, asyncio.get_running_loop()
        held: list[str] = []  # the company whose slot the job took

        def job() -> tuple[Principal, T]:
            principal = authenticate(token)
            principal.require_scope(scopes)
            if admin:
                principal.require_admin()
            company = principal.company_id
            if calls is not None and company is not None:
                if not calls.try_enter(company):
                    return principal, _WAIT  # the thread goes back; the call waits on the loop
                held.append(company)
            return principal, fn(principal)

        def done(_: Future) -> None:
            if held:
                calls.leave_soon(held[0], loop)

        try:
            principal, result = await self.rt.db(job, done)
            if result is _WAIT:
                company = principal.company_id
                await calls.enter(company)
                result = await self.rt.db(
                    lambda: fn(principal), lambda _: calls.leave_soon(company, loop)
                )
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
