"""Connections through the SDK and the `boomerang` command (a real process) against the real
control plane: secrets go in from files or stdin, never from argv, and never come back out."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from boomerang.sdk import (
    NO_AUTH,
    AlreadyExists,
    Client,
    InvalidArgument,
    api_key_auth,
    basic_auth,
    bearer_auth,
    oauth2_client_credentials,
)
from boomerang.v1 import connection_service_pb2 as cs
from control_plane.domain.connections import resolve_connection
from control_plane.outbound.credentials import (
    ApiKeyCredentials,
    BasicCredentials,
    BearerCredentials,
    OAuth2ClientCredentials,
)
from control_plane.store.db import database
from tests.conftest import ADMIN_KEY

BOOMERANG = Path(sys.executable).with_name("boomerang")
TOKEN = "cli-token-3e9d1f-never-shown"
PASSWORD = "cli-password-8a2b7c-never-shown"


def resolve(name: str):
    database.connect(reuse_if_open=True)
    return resolve_connection("acme", name)


def sdk_walkthrough(c: Client) -> None:
    c.create_company(name="Acme", slug="acme")
    made = c.create_connection(
        "acme",
        "erp",
        "https://erp.example.com",
        default_headers={"Accept": "application/json"},
        timeout_s=2.5,
        rate_limit_per_minute=10,
        auth=basic_auth("svc", PASSWORD),
    )
    assert made.secret_set and made.auth.basic.username == "svc" and not made.auth.basic.password
    assert made.timeout.ToMilliseconds() == 2500
    assert c.get_connection(made.id) == made
    for auth in (
        bearer_auth(TOKEN),
        api_key_auth("key", TOKEN, "query"),
        oauth2_client_credentials("https://a.example.com/t", "id", TOKEN, ["read"], "aud"),
    ):
        kind = auth.WhichOneof("kind").replace("_", "-")
        assert c.create_connection("acme", kind, "https://x.example.com", auth=auth).secret_set
    assert [x.name for x in c.list_connections("acme", page_size=2)] == [
        "erp",
        "bearer",
        "api-key",
        "oauth2-client-credentials",
    ]
    with pytest.raises(AlreadyExists) as taken:
        c.create_connection("acme", "erp", "https://erp.example.com")
    assert taken.value.reason == "ERROR_REASON_CONNECTION_NAME_TAKEN"
    with pytest.raises(InvalidArgument) as bad:
        c.create_connection("acme", "new", "ftp://x", timeout_s=61)
    assert [f for f, _ in bad.value.field_violations] == ["base_url", "timeout"]
    with pytest.raises(ValueError):
        api_key_auth("key", "v", "cookie")

    updated = c.update_connection(made.id, base_url="https://erp2.example.com", timeout_s=0)
    assert updated.base_url == "https://erp2.example.com" and updated.timeout.seconds == 30
    assert updated.secret_set and dict(updated.default_headers) == {"Accept": "application/json"}
    assert c.update_connection(made.id, default_headers={}).default_headers == {}
    cleared = c.update_connection(made.id, auth=NO_AUTH)
    assert not cleared.secret_set and cleared.auth == cs.ConnectionAuth()
    c.delete_connection(made.id)
    assert "erp" not in [x.name for x in c.list_connections("acme")]


async def test_sdk(client):
    await asyncio.to_thread(sdk_walkthrough, client)
    assert resolve("bearer").credentials == BearerCredentials(TOKEN)
    assert resolve("api-key").credentials == ApiKeyCredentials("key", "query", TOKEN)
    assert resolve("oauth2-client-credentials").credentials == OAuth2ClientCredentials(
        "https://a.example.com/t", "id", TOKEN, ("read",), "aud"
    )


@pytest.fixture
def cli(plane):
    """Runs `boomerang ARGS` (with `stdin`) without blocking the plane's event loop; returns
    (exit code, stdout, stderr)."""

    async def run(*args: str, stdin: str = "") -> tuple[int, str, str]:
        env = {**os.environ, "BOOMERANG_TARGET": plane.target, "BOOMERANG_API_KEY": ADMIN_KEY}
        proc = await asyncio.create_subprocess_exec(
            str(BOOMERANG),
            *args,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(stdin.encode()), timeout=30)
        text = out.decode() + err.decode()
        assert TOKEN not in text and PASSWORD not in text
        return proc.returncode or 0, out.decode(), err.decode()

    return run


async def test_cli(cli, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    await cli("companies", "create", "--slug", "acme", "--name", "Acme")
    code, out, err = await cli(
        "connections",
        "create",
        "--company",
        "acme",
        "--name",
        "erp",
        "--base-url",
        "https://erp.example.com/api",
        "--header",
        "Accept: application/json",
        "--header",
        "X-Tenant:acme",
        "--timeout",
        "1500ms",
        "--rate-limit-per-minute",
        "60",
        "--auth",
        "bearer",
        "--token-file",
        str(token_file),
    )
    assert code == 0, err
    made = json.loads(out)
    assert made["secret_set"] is True and made["auth"]["bearer"] == {"token": ""}
    assert made["default_headers"] == {"Accept": "application/json", "X-Tenant": "acme"}
    assert made["timeout"] == "1.500s" and made["rate_limit_per_minute"] == 60
    assert resolve("erp").credentials == BearerCredentials(TOKEN)  # the final newline dropped

    code, out, _ = await cli("connections", "get", made["id"])
    assert code == 0 and json.loads(out) == made
    code, out, _ = await cli("connections", "list", "--company", "acme")
    assert [c["name"] for c in json.loads(out)] == ["erp"]

    # Not naming --auth keeps the secret; --auth with a secret from stdin replaces it.
    code, out, _ = await cli("connections", "update", made["id"], "--base-url", "https://b.test")
    assert code == 0 and json.loads(out)["secret_set"] is True
    assert resolve("erp").credentials == BearerCredentials(TOKEN)
    code, out, err = await cli(
        "connections",
        "update",
        made["id"],
        "--auth",
        "basic",
        "--username",
        "svc",
        "--password-file",
        "-",
        "--no-headers",
        stdin=PASSWORD + "\n",
    )
    assert code == 0, err
    assert json.loads(out)["auth"]["basic"] == {"username": "svc", "password": ""}
    assert resolve("erp").credentials == BasicCredentials("svc", PASSWORD)
    assert resolve("erp").default_headers == ()
    code, out, _ = await cli("connections", "update", made["id"], "--auth", "none")
    assert code == 0 and json.loads(out)["secret_set"] is False

    # A server-side refusal: one error line, then the field.
    code, out, err = await cli(
        "connections", "create", "--company", "acme", "--name", "x", "--base-url", "ftp://x"
    )
    assert code == 1 and out == ""
    assert err.splitlines()[0].startswith("error: INVALID_ARGUMENT")
    assert err.splitlines()[1].strip().startswith("base_url:")

    code, out, err = await cli("connections", "delete", made["id"])
    assert (code, out, err) == (0, "", "")


@pytest.mark.parametrize(
    "args",
    [
        ("--auth", "basic", "--username", "u"),  # no --password-file
        ("--password-file", "/dev/null"),  # no --auth
        ("--auth", "basic", "--username", "u", "--password-file", "-", "--token-file", "f"),
        ("--auth", "oauth2", "--token-url", "https://t", "--client-id", "c"),
        ("--auth", "bearer", "--token-file", "/nonexistent/token"),
        ("--auth", "bearer", "--token", "t"),  # no such option: secrets never in argv
        ("--header", "no colon"),
    ],
)
async def test_cli_usage_errors(cli, args):
    base = ("connections", "create", "--company", "acme", "--name", "n", "--base-url", "http://x")
    code, out, err = await cli(*base, *args)
    assert code == 2 and out == "" and "Traceback" not in err
