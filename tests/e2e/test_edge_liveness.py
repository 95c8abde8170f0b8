"""ListEdges tells a dead edge from a live one with real processes killed (SIGKILL), including
when the control plane is killed at the same moment and never sees the stream end."""

from __future__ import annotations

import pytest

from boomerang.sdk import Client
from tests.e2e.conftest import ADMIN_KEY, eventually, start_stack

pytestmark = pytest.mark.e2e

# The liveness window (10 s, docs/sync.md) plus the heartbeat period and a margin.
DEAD_WITHIN_S = 20


def _connected(client: Client) -> dict[str, bool]:
    return {e.edge_id: e.connected for e in client.list_edges()}


def test_a_killed_edge_is_shown_disconnected(tmp_path):
    stack = start_stack(tmp_path)
    try:
        with Client(stack.control_target, ADMIN_KEY) as client:
            eventually(lambda: any(_connected(client).values()), timeout=10)
            [edge_id] = _connected(client)
            stack.stop_edge(kill=True)
            eventually(lambda: _connected(client) == {edge_id: False}, timeout=DEAD_WITHIN_S)
    finally:
        stack.stop()


def test_edges_that_died_with_the_control_plane_are_not_shown_connected_after_restart(tmp_path):
    stack = start_stack(tmp_path)
    try:
        with Client(stack.control_target, ADMIN_KEY) as client:
            eventually(lambda: any(_connected(client).values()), timeout=10)
            [edge_id] = _connected(client)
        # Both at once: the control plane's row still says "connected", nobody will correct it.
        stack.stop_edge(kill=True)
        stack.stop_control_plane(kill=True)
        stack.start_control_plane()
        with Client(stack.control_target, ADMIN_KEY) as client:
            eventually(lambda: _connected(client) == {edge_id: False}, timeout=DEAD_WITHIN_S)
            # And a live edge is told apart: a new one connects and shows connected.
            stack.start_edge()
            eventually(lambda: _connected(client).get(edge_id) is True, timeout=DEAD_WITHIN_S)
    finally:
        stack.stop()
