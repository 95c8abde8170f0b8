"""SDK and CLI tests run against the real control plane on SQLite only: they test the clients,
not the store (tests/api and tests/store cover both backends)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from boomerang.sdk import Client
from tests.conftest import ADMIN_KEY


@pytest.fixture
def backend() -> str:
    return "sqlite"


@pytest.fixture
def client(plane) -> Iterator[Client]:
    """An SDK client of the in-process plane. The SDK is synchronous and the server runs in the
    test's event loop: call it through `asyncio.to_thread`."""
    with Client(plane.target, ADMIN_KEY) as c:
        yield c
