from __future__ import annotations

import contextlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest
from edge_fakes import API_KEY, FakeRunner, FakeSync, LoopbackServer, grpc_server, wait_for

from edge.app import EdgeApp, create_app
from edge.config import EdgeSettings
from edge.server import EdgeServer

_names = itertools.count()


@dataclass
class Edge:
    app: EdgeApp
    server: EdgeServer
    client: httpx.AsyncClient
    settings: EdgeSettings
    stopped: bool = False

    async def stop(self) -> None:
        if self.stopped:
            return
        self.stopped = True
        await self.client.aclose()
        await self.server.stop(grace_s=1.0)


@pytest.fixture
async def sync() -> AsyncIterator[tuple[FakeSync, str]]:
    servicer = FakeSync()
    async with grpc_server(sync=servicer) as target:
        yield servicer, target


@pytest.fixture
async def runner() -> AsyncIterator[tuple[FakeRunner, str]]:
    servicer = FakeRunner()
    async with grpc_server(runner=servicer) as target:
        yield servicer, target


@dataclass
class FakeRunnerServer:
    fake: FakeRunner
    server: LoopbackServer


@pytest.fixture
async def two_runners() -> AsyncIterator[tuple[FakeRunnerServer, FakeRunnerServer]]:
    """Two fake runners ("a-run-1", "b-run-1"), each on a server a test may stop and restart."""
    pair = tuple(
        FakeRunnerServer(fake, LoopbackServer(runner=fake))
        for fake in (FakeRunner(prefix="a-"), FakeRunner(prefix="b-"))
    )
    for runner in pair:
        await runner.server.start()
    yield pair
    for runner in pair:
        await runner.server.stop()


@pytest.fixture
async def start_edge(tmp_path: Path):
    """Starts edges (stopped at the end of the test); by default waits until in sync."""
    edges: list[Edge] = []

    async def start(
        *,
        sync_target: str,
        runner_target: str | tuple[str, ...],
        state_dir: Path | None = None,
        wait: bool = True,
        **overrides,
    ) -> Edge:
        settings = EdgeSettings(
            api_key=API_KEY,
            edge_id="edge-test",
            control_plane_target=sync_target,
            runner_targets=(runner_target,) if isinstance(runner_target, str) else runner_target,
            state_dir=state_dir or tmp_path / "state",
            max_body_bytes=1024,
        )
        settings = replace(settings, **overrides)
        app = create_app(settings, name=f"edge-test-{next(_names)}")
        server = await EdgeServer.start(app, "127.0.0.1", 0)
        edge = Edge(app, server, httpx.AsyncClient(base_url=server.url, timeout=10), settings)
        edges.append(edge)
        if wait:
            await wait_for(lambda: app.ctx.cache.live and app.ctx.runners.connected)
        return edge

    yield start
    for edge in reversed(edges):
        with contextlib.suppress(Exception):
            await edge.stop()


@pytest.fixture
async def edge(start_edge, sync, runner) -> AsyncIterator[Edge]:
    """An edge in sync with a fake control plane (FakeSync) and a fake runner (FakeRunner)."""
    edge = await start_edge(sync_target=sync[1], runner_target=runner[1])
    yield edge
    await edge.stop()  # before the fake servers go away
