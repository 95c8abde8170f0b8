from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from control_plane.outbound.client import Outbound
from control_plane.outbound.egress import parse_allow
from control_plane.outbound.settings import OutboundSettings
from tests.outbound.upstream import Upstream


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.close()


def make_outbound(allow: str = "127.0.0.1/32", connections=None, **settings) -> Outbound:
    connections = connections or {}

    async def resolve(company: str, name: str):
        return connections.get((company, name))

    return Outbound(OutboundSettings(egress_allow=parse_allow(allow), **settings), resolve)


@pytest.fixture
async def outbound() -> AsyncIterator[Outbound]:
    client = make_outbound()
    yield client
    await client.aclose()
