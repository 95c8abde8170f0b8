"""The SDK and the `boomerang` CLI for the callback settings of issue 8 (grace periods, HMAC,
origins, mode, async_after_ms), against the real control plane."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json

import pytest
from client_samples import CALLBACK_FLOW
from test_cli import cli  # noqa: F401 (the fixture)

from boomerang import cli as cli_module
from boomerang.sdk import Client, InvalidArgument
from boomerang.v1 import resources_pb2 as r

WHSEC = "whsec_" + base64.b64encode(bytes(range(40))).decode()


def _callback(c: Client) -> r.Callback:
    c.create_company(name="Acme", slug="acme")
    flow = c.create_flow("acme", "stock", CALLBACK_FLOW).flow
    return c.create_callback(flow.id, timeout_ms=10_000)


def sdk_settings(c: Client) -> None:
    cb = _callback(c)
    updated = c.update_callback(
        cb.id,
        hmac_scheme="standard_webhooks",
        hmac_secret=WHSEC,
        allowed_origins=["https://app.example.com"],
        mode="webhook",
        async_after_ms=2_000,
    )
    assert updated.hmac_scheme == r.HMAC_SCHEME_STANDARD_WEBHOOKS
    assert list(updated.allowed_origins) == ["https://app.example.com"]
    assert (updated.mode, updated.async_after_ms) == (r.CALLBACK_MODE_WEBHOOK, 2_000)
    assert WHSEC.encode() not in updated.SerializeToString()
    off = c.update_callback(cb.id, hmac_scheme="none", allowed_origins=[], mode="sync")
    assert (off.hmac_scheme, list(off.allowed_origins), off.mode) == (0, [], r.CALLBACK_MODE_SYNC)
    with pytest.raises(InvalidArgument) as err:
        c.update_callback(cb.id, hmac_scheme="patchworks", hmac_secret="short")
    assert [f for f, _ in err.value.field_violations] == ["hmac_secret"]
    with pytest.raises(ValueError):
        c.update_callback(cb.id, mode="sometimes")

    again = c.regenerate_signature(cb.id, grace_period=dt.timedelta(hours=2))
    expires = again.previous_signature_expire_time.ToDatetime(dt.UTC)
    assert dt.timedelta(minutes=119) < expires - dt.datetime.now(dt.UTC) <= dt.timedelta(hours=2)
    waited = c.regenerate_signature_and_wait(cb.id, 100, grace_period=dt.timedelta(seconds=30))
    assert waited.callback.previous_signature_expire_time.ToDatetime(dt.UTC) < expires
    with pytest.raises(InvalidArgument):
        c.regenerate_signature(cb.id, grace_period=dt.timedelta(days=31))
    assert not c.regenerate_signature(cb.id).HasField("previous_signature_expire_time")


async def test_sdk(client):
    await asyncio.to_thread(sdk_settings, client)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("90s", 90_000),
        ("30m", 1_800_000),
        ("24h", 86_400_000),
        ("7d", 604_800_000),
        ("500ms", 500),
        ("2", 2_000),
        ("1.5s", 1_500),
    ],
)
def test_cli_durations(text, ms):
    assert cli_module.duration(text) == dt.timedelta(milliseconds=ms)


async def test_cli(cli, tmp_path):  # noqa: F811
    await cli("companies", "create", "--slug", "acme", "--name", "Acme")
    definition = tmp_path / "flow.json"
    definition.write_text(json.dumps(CALLBACK_FLOW))
    flow_id = (
        await cli("flows", "create", "--company", "acme", "--name", "f", "--file", str(definition))
    ).json()["flow"]["id"]
    cb = (await cli("callbacks", "create", "--flow", flow_id)).json()

    secret = tmp_path / "secret"
    secret.write_text("patchworks-secret-0123456789\n")
    updated = (
        await cli(
            "callbacks",
            "update",
            cb["id"],
            "--hmac-scheme",
            "patchworks",
            "--hmac-secret-file",
            str(secret),
            "--allowed-origins",
            "https://a.example.com, http://localhost:3000",
            "--mode",
            "webhook",
            "--async-after-ms",
            "1000",
        )
    ).json()
    assert updated["hmac_scheme"] == "HMAC_SCHEME_PATCHWORKS"
    assert updated["allowed_origins"] == ["https://a.example.com", "http://localhost:3000"]
    assert (updated["mode"], updated["async_after_ms"]) == ("CALLBACK_MODE_WEBHOOK", 1000)
    assert "patchworks-secret" not in json.dumps(updated)

    cleared = (await cli("callbacks", "update", cb["id"], "--allowed-origins", "")).json()
    assert cleared["allowed_origins"] == []

    bad = await cli("callbacks", "update", cb["id"], "--allowed-origins", "https://A.com/")
    assert bad.code == 1 and "allowed_origins[0]" in bad.stderr
    no_scheme = await cli("callbacks", "update", cb["id"], "--hmac-secret-file", str(secret))
    assert no_scheme.code == 2 and "--hmac-scheme" in no_scheme.stderr
    missing = await cli(
        "callbacks",
        "update",
        cb["id"],
        "--hmac-scheme",
        "patchworks",
        "--hmac-secret-file",
        str(tmp_path / "nope"),
    )
    assert missing.code == 2 and "Traceback" not in missing.stderr

    again = (await cli("callbacks", "regenerate", cb["id"], "--grace-period", "1h")).json()
    assert again["previous_signature_expire_time"]
    assert again["signature"] != cb["signature"]
    refused = await cli("callbacks", "regenerate", cb["id"], "--grace-period", "31d")
    assert refused.code == 1 and "grace_period" in refused.stderr
    usage = await cli("callbacks", "regenerate", cb["id"], "--grace-period", "soon")
    assert usage.code == 2
