"""TLS and mutual TLS on every gRPC listener, with certificates made here (trustme): the SDK and
CLI, the edge's sync and runner streams, and a callback run end to end through them
(docs/security.md)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trustme

from boomerang import cli
from boomerang.demo import ensure_demo
from boomerang.local import LocalStack
from boomerang.sdk import Client, Unavailable
from boomerang.sdk.channel import tls_credentials
from control_plane.config import Settings
from control_plane.server import ControlPlane
from control_plane.store.db import database
from tests.conftest import ADMIN_KEY, SECRET_KEY, fresh_schema
from tests.e2e.conftest import eventually


@dataclass
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    # A client certificate from a CA the server does not trust.
    stranger_cert: Path
    stranger_key: Path
    stranger_ca: Path


@pytest.fixture
def certs(tmp_path) -> Certs:
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client, stranger = ca.issue_cert("edge.test"), other.issue_cert("edge.test")
    d = tmp_path / "certs"
    d.mkdir()

    def write(name: str, blob) -> Path:
        blob.write_to_path(str(d / name))
        return d / name

    def chain(name: str, leaf) -> Path:
        (d / name).write_bytes(b"".join(c.bytes() for c in leaf.cert_chain_pems))
        return d / name

    return Certs(
        ca=write("ca.pem", ca.cert_pem),
        server_cert=chain("server.pem", server),
        server_key=write("server.key", server.private_key_pem),
        client_cert=chain("client.pem", client),
        client_key=write("client.key", client.private_key_pem),
        stranger_cert=chain("stranger.pem", stranger),
        stranger_key=write("stranger.key", stranger.private_key_pem),
        stranger_ca=write("stranger-ca.pem", other.cert_pem),
    )


@contextlib.asynccontextmanager
async def tls_plane(tmp_path, certs: Certs, mutual: bool) -> AsyncIterator[str]:
    url = f"sqlite:///{tmp_path}/cp.db"
    fresh_schema(url)
    plane = ControlPlane(
        Settings(
            database_url=url,
            listen="127.0.0.1:0",
            secret_key=SECRET_KEY,
            tls_cert=str(certs.server_cert),
            tls_key=str(certs.server_key),
            tls_client_ca=str(certs.ca) if mutual else "",
        )
    )
    port = await plane.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await plane.stop(grace=0.5)
        database.obj.close()


async def companies(target: str, **client_options) -> list[str]:
    """Lists companies with the synchronous SDK (on a thread: the server runs on this loop)."""

    def call() -> list[str]:
        with Client(target, ADMIN_KEY, timeout=5, **client_options) as client:
            return [c.slug for c in client.list_companies()]

    return await asyncio.to_thread(call)


def tls_args(target: str, ca: Path) -> list[str]:
    return ["--target", target, "--api-key", ADMIN_KEY, "--tls-ca", str(ca)]


async def test_tls_serves_the_sdk_and_cli_and_refuses_plaintext(tmp_path, certs, capsys):
    async with tls_plane(tmp_path, certs, mutual=False) as target:
        assert await companies(target, credentials=tls_credentials(certs.ca)) == []
        code = await asyncio.to_thread(
            cli.main,
            [*tls_args(target, certs.ca), "companies", "create", "--slug", "acme", "--name", "A"],
        )
        assert code == 0 and '"slug": "acme"' in capsys.readouterr().out

        with pytest.raises(Unavailable):
            await companies(target)  # plaintext
        with pytest.raises(Unavailable):
            await companies(target, credentials=tls_credentials(certs.stranger_ca))  # wrong CA


async def test_mutual_tls_needs_a_client_certificate_the_ca_signed(tmp_path, certs, capsys):
    async with tls_plane(tmp_path, certs, mutual=True) as target:
        signed = tls_credentials(certs.ca, certs.client_cert, certs.client_key)
        assert await companies(target, credentials=signed) == []
        with pytest.raises(Unavailable):
            await companies(target, credentials=tls_credentials(certs.ca))  # no certificate
        stranger = tls_credentials(certs.ca, certs.stranger_cert, certs.stranger_key)
        with pytest.raises(Unavailable):
            await companies(target, credentials=stranger)

        code = await asyncio.to_thread(
            cli.main,
            [
                *tls_args(target, certs.ca),
                *("--tls-cert", str(certs.client_cert), "--tls-key", str(certs.client_key)),
                *("companies", "list"),
            ],
        )
        assert code == 0, capsys.readouterr().err


def test_cli_reports_unreadable_tls_files_as_usage_errors(tmp_path, capsys):
    missing = str(tmp_path / "nope.pem")
    assert cli.main(["--tls-ca", missing, "companies", "list"]) == 2
    assert "cannot use the TLS files" in capsys.readouterr().err
    assert cli.main(["--tls-cert", missing, "companies", "list"]) == 2  # a cert needs its key


def test_a_callback_runs_end_to_end_over_mutual_tls(tmp_path, certs):
    """Control plane, a separate runner and the edge, every gRPC hop over mutual TLS: the edge
    syncs (as an EDGE key), and a callback runs on the runner through it."""
    tls_env = {
        # The servers (control plane and runner).
        "BOOMERANG_TLS_CERT": str(certs.server_cert),
        "BOOMERANG_TLS_KEY": str(certs.server_key),
        "BOOMERANG_TLS_CLIENT_CA": str(certs.ca),
        # Their clients (the edge, and the stack's own health checks).
        "BOOMERANG_TLS_CA": str(certs.ca),
        "BOOMERANG_TLS_CLIENT_CERT": str(certs.client_cert),
        "BOOMERANG_TLS_CLIENT_KEY": str(certs.client_key),
    }
    stack = LocalStack(
        state_dir=tmp_path / "state",
        admin_key=ADMIN_KEY,
        log_dir=tmp_path / "logs",
        separate_runner=True,
        extra_env=tls_env,
    )
    try:
        stack.start_control_plane()
        stack.start_runners()
        stack.start_edge()
        credentials = tls_credentials(certs.ca, certs.client_cert, certs.client_key)
        with Client(stack.control_target, ADMIN_KEY, credentials=credentials) as client:
            url = ensure_demo(client)
            keys = {k.name: k for k in client.list_api_keys()}
            assert keys["local edge"].scope == 2  # API_KEY_SCOPE_EDGE: the edge's own key
            eventually(lambda: any(e.connected for e in client.list_edges()), timeout=10)

        def answered() -> bool:
            response = httpx.get(url + "&sku=TLS-1", timeout=5)
            expected = {"sku": "TLS-1", "in_stock": True, "quantity": 42}
            return response.status_code == 200 and response.json() == [expected]

        eventually(answered, timeout=10)
        # The listener took no plaintext meanwhile: a plaintext client is still refused.
        with pytest.raises(Unavailable), Client(stack.control_target, ADMIN_KEY, timeout=3) as c:
            list(c.list_companies())  # a generator: consume it
    finally:
        stack.stop()


def test_tls_settings_are_checked_at_start(tmp_path, certs):
    from edge.config import EdgeSettings

    with pytest.raises(ValueError, match="go together"):
        Settings(tls_cert=str(certs.server_cert))
    with pytest.raises(ValueError, match="needs BOOMERANG_TLS_CERT"):
        Settings(tls_client_ca=str(certs.ca))
    with pytest.raises(ValueError, match="BOOMERANG_TLS_KEY: no such file"):
        Settings(tls_cert=str(certs.server_cert), tls_key=str(tmp_path / "missing.key"))
    env = {"BOOMERANG_API_KEY": "k", "EDGE_STATE_DIR": str(tmp_path / "edge")}
    with pytest.raises(ValueError, match="go together"):
        EdgeSettings.from_env({**env, "BOOMERANG_TLS_CLIENT_CERT": str(certs.client_cert)})
    with pytest.raises(ValueError, match="BOOMERANG_TLS_CA: no such file"):
        EdgeSettings.from_env({**env, "BOOMERANG_TLS_CA": str(tmp_path / "nope.pem")})
    assert EdgeSettings.from_env({**env, "BOOMERANG_TLS_CA": str(certs.ca)}).tls
    assert not EdgeSettings.from_env(env).tls
