"""The runner's outbound settings from the environment, and the store resolver's wiring."""

from __future__ import annotations

import sys
import types

import pytest

from control_plane.config import Settings
from control_plane.outbound.resolver import store_resolver


def test_defaults_and_environment():
    default = Settings.from_env({}).outbound
    assert (default.egress_allow, default.max_response_bytes, default.max_connections) == (
        (),
        4 << 20,
        32,
    )
    set_ = Settings.from_env(
        {
            "BOOMERANG_EGRESS_ALLOW": "127.0.0.1/32,10.0.0.0/8",
            "BOOMERANG_OUTBOUND_MAX_RESPONSE_BYTES": "1000",
            "BOOMERANG_OUTBOUND_MAX_CONNECTIONS": "4",
        }
    ).outbound
    assert [str(n) for n in set_.egress_allow] == ["127.0.0.1/32", "10.0.0.0/8"]
    assert (set_.max_response_bytes, set_.max_connections) == (1000, 4)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("BOOMERANG_EGRESS_ALLOW", "everything", "BOOMERANG_EGRESS_ALLOW"),
        ("BOOMERANG_OUTBOUND_MAX_RESPONSE_BYTES", "0", "MAX_RESPONSE_BYTES"),
        ("BOOMERANG_OUTBOUND_MAX_CONNECTIONS", "0", "MAX_CONNECTIONS"),
        ("BOOMERANG_OUTBOUND_CA_FILE", "/nonexistent/ca.pem", "no such file"),
    ],
)
def test_bad_settings_are_refused_naming_them(name, value, message):
    with pytest.raises(ValueError, match=message):
        Settings.from_env({name: value})


async def _db(fn):
    return fn()


async def test_store_resolver_calls_the_store_on_the_db_pool(monkeypatch):
    calls = []
    module = types.ModuleType("control_plane.domain.connections")
    module.resolve_connection = lambda company, name: calls.append((company, name)) or "found"
    monkeypatch.setitem(sys.modules, "control_plane.domain.connections", module)
    assert await store_resolver(_db)("acme", "erp") == "found"
    assert calls == [("acme", "erp")]


async def test_store_resolver_without_the_connections_store_knows_no_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "control_plane.domain.connections", None)  # not importable
    assert await store_resolver(_db)("acme", "erp") is None
