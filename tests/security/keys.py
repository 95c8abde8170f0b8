"""Helpers for the key tests: keys of each scope, and the sessions a plane holds open."""

from __future__ import annotations

import asyncio

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_sync_service_pb2 as sync
from boomerang.v1 import resources_pb2 as r
from tests.api.helpers import Stubs

SCOPES = {
    "full": r.API_KEY_SCOPE_FULL,
    "edge": r.API_KEY_SCOPE_EDGE,
    "runner": r.API_KEY_SCOPE_RUNNER,
}


async def new_key(stubs: Stubs, md, scope: str = "full", company: str = "") -> tuple[str, str]:
    """(id, metadata-ready secret) of a new key made with `md`."""
    made = await stubs.keys.CreateApiKey(
        aks.CreateApiKeyRequest(name=f"{scope} key", company=company, scope=SCOPES[scope]),
        metadata=md,
    )
    return made.api_key.id, made.secret


def bearer(secret: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {secret}"),)


async def registered(plane, key_id: str) -> None:
    """Waits (at most 5 s) until `plane` holds an open-ended call of `key_id`: the server
    authenticated it."""
    for _ in range(500):
        if key_id in plane.runtime.sessions._calls:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"no open call of key {key_id} registered within 5 s")


class Requests:
    """A request stream the test feeds by hand; it stays open until `close`."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    async def __aiter__(self):
        while (item := await self.queue.get()) is not None:
            yield item

    def send(self, message) -> None:
        self.queue.put_nowait(message)

    def close(self) -> None:
        self.queue.put_nowait(None)


def hello(edge_id: str = "edge-1") -> sync.SyncCallbacksRequest:
    return sync.SyncCallbacksRequest(hello=sync.SyncHello(edge_id=edge_id))
