"""Callback settings of issue 8 over gRPC, both backends: grace periods on RegenerateSignature,
HMAC (write-only secret), allowed origins, mode and async_after_ms (docs/callback-security.md).

Every bad value is refused INVALID_ARGUMENT with a BadRequest field and changes nothing.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt

import grpc
import pytest
from google.protobuf import duration_pb2

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as res
from control_plane.domain.ids import digest
from control_plane.store import models
from control_plane.store.db import database
from tests.api.helpers import Stubs, database_state, failure

WHSEC = "whsec_" + base64.b64encode(bytes(range(32))).decode()
PATCHWORKS_SECRET = "s3cret-patchworks-0123456789"


async def _callback(s: Stubs, md) -> res.Callback:
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="A", slug="a"), metadata=md)
    flow = (await s.flows.CreateFlow(fs.CreateFlowRequest(company="a", name="f"), metadata=md)).flow
    return (
        await s.callbacks.CreateCallback(
            cbs.CreateCallbackRequest(flow_id=flow.id, timeout_ms=10_000), metadata=md
        )
    ).callback


async def _update(s: Stubs, md, **fields) -> res.Callback:
    return (
        await s.callbacks.UpdateCallback(cbs.UpdateCallbackRequest(**fields), metadata=md)
    ).callback


async def _refused(call, *fields: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    f = failure(err.value)
    assert (f.code, f.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "ERROR_REASON_INVALID_ARGUMENT")
    assert f.fields == list(fields)
    return err.value


def _ms(ms: int) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMilliseconds(ms)
    return d


async def test_defaults(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    assert cb.hmac_scheme == res.HMAC_SCHEME_UNSPECIFIED
    assert list(cb.allowed_origins) == []
    assert (cb.mode, cb.async_after_ms) == (res.CALLBACK_MODE_UNSPECIFIED, 0)
    assert not cb.HasField("previous_signature_expire_time")


async def test_round_trip_of_every_setting(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    origins = ["https://app.example.com", "http://localhost:8080", "https://[::1]:9000"]
    updated = await _update(
        s,
        md,
        id=cb.id,
        update_mask=["hmac", "allowed_origins", "mode", "async_after_ms"],
        hmac_scheme=res.HMAC_SCHEME_STANDARD_WEBHOOKS,
        hmac_secret=WHSEC,
        allowed_origins=origins,
        mode=res.CALLBACK_MODE_WEBHOOK,
        async_after_ms=2_000,
    )
    got = (await s.callbacks.GetCallback(cbs.GetCallbackRequest(id=cb.id), metadata=md)).callback
    listed = (
        await s.callbacks.ListCallbacks(cbs.ListCallbacksRequest(flow_id=cb.flow_id), metadata=md)
    ).callbacks[0]
    for view in (updated, got, listed):
        assert view.hmac_scheme == res.HMAC_SCHEME_STANDARD_WEBHOOKS
        assert list(view.allowed_origins) == origins
        assert (view.mode, view.async_after_ms) == (res.CALLBACK_MODE_WEBHOOK, 2_000)
        # Write-only: the secret is in no field of any answer.
        assert WHSEC.encode() not in view.SerializeToString()
    # Other settings untouched; the secret is stored sealed, never in clear.
    assert (got.timeout_ms, got.content_type) == (10_000, "application/json")
    database.connect(reuse_if_open=True)
    row = models.Callback.get_by_id(cb.id)
    assert WHSEC.encode() not in bytes(row.hmac_secret_sealed)
    assert row.hmac_secret == WHSEC
    # A mask that does not name a setting leaves it alone.
    renamed = await _update(s, md, id=cb.id, update_mask=["name"], name="n")
    assert renamed.hmac_scheme == res.HMAC_SCHEME_STANDARD_WEBHOOKS
    assert list(renamed.allowed_origins) == origins
    # UNSPECIFIED turns the check off and forgets the secret.
    off = await _update(s, md, id=cb.id, update_mask=["hmac", "allowed_origins"])
    assert (off.hmac_scheme, list(off.allowed_origins)) == (res.HMAC_SCHEME_UNSPECIFIED, [])
    assert models.Callback.get_by_id(cb.id).hmac_secret_sealed is None


async def test_patchworks_secret_and_any_origin(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    updated = await _update(
        s,
        md,
        id=cb.id,
        update_mask=["hmac", "allowed_origins"],
        hmac_scheme=res.HMAC_SCHEME_PATCHWORKS,
        hmac_secret="é" * 8,  # 16 bytes of UTF-8
        allowed_origins=["*"],
    )
    assert (updated.hmac_scheme, list(updated.allowed_origins)) == (
        res.HMAC_SCHEME_PATCHWORKS,
        ["*"],
    )


BAD_HMAC = [
    (res.HMAC_SCHEME_PATCHWORKS, "x" * 15),
    (res.HMAC_SCHEME_PATCHWORKS, "x" * 257),
    (res.HMAC_SCHEME_PATCHWORKS, ""),
    (res.HMAC_SCHEME_STANDARD_WEBHOOKS, PATCHWORKS_SECRET),
    (res.HMAC_SCHEME_STANDARD_WEBHOOKS, "whsec_" + base64.b64encode(bytes(23)).decode()),
    (res.HMAC_SCHEME_STANDARD_WEBHOOKS, "whsec_" + base64.b64encode(bytes(65)).decode()),
    (res.HMAC_SCHEME_STANDARD_WEBHOOKS, "whsec_not base64!"),
    (res.HMAC_SCHEME_UNSPECIFIED, PATCHWORKS_SECRET),
]


@pytest.mark.parametrize(("scheme", "secret"), BAD_HMAC)
async def test_bad_hmac_secrets_are_refused_without_echo(plane, scheme, secret):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    before = database_state()
    err = await _refused(
        s.callbacks.UpdateCallback(
            cbs.UpdateCallbackRequest(
                id=cb.id, update_mask=["hmac"], hmac_scheme=scheme, hmac_secret=secret
            ),
            metadata=md,
        ),
        "hmac_secret",
    )
    assert database_state() == before
    if secret:  # never quoted back, not even in part
        assert secret[6:] not in f"{err.details()} {err.trailing_metadata()}"


async def test_unknown_scheme_and_mode_are_refused(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    await _refused(
        s.callbacks.UpdateCallback(
            cbs.UpdateCallbackRequest(id=cb.id, update_mask=["hmac"], hmac_scheme=7), metadata=md
        ),
        "hmac_scheme",
    )
    await _refused(
        s.callbacks.UpdateCallback(
            cbs.UpdateCallbackRequest(id=cb.id, update_mask=["mode"], mode=9), metadata=md
        ),
        "mode",
    )


BAD_ORIGINS = [
    (["https://Example.com"], ["allowed_origins[0]"]),
    (["https://example.com/"], ["allowed_origins[0]"]),
    (["https://example.com/path"], ["allowed_origins[0]"]),
    (["ftp://example.com"], ["allowed_origins[0]"]),
    (["example.com"], ["allowed_origins[0]"]),
    (["https://example.com:443"], ["allowed_origins[0]"]),
    (["https://example.com:70000"], ["allowed_origins[0]"]),
    (["https://a.com", "https://a.com"], ["allowed_origins[1]"]),
    (["*", "https://a.com"], ["allowed_origins"]),
    (["null"], ["allowed_origins[0]"]),
    ([f"https://h{i}.com" for i in range(21)], ["allowed_origins"]),
]


@pytest.mark.parametrize(("origins", "fields"), BAD_ORIGINS)
async def test_bad_origins_are_refused(plane, origins, fields):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    before = database_state()
    await _refused(
        s.callbacks.UpdateCallback(
            cbs.UpdateCallbackRequest(
                id=cb.id, update_mask=["allowed_origins"], allowed_origins=origins
            ),
            metadata=md,
        ),
        *fields,
    )
    assert database_state() == before


async def test_async_after_ms_bounds(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)  # timeout_ms 10000
    for value in (-1, 300_001, 10_000, 20_000):
        await _refused(
            s.callbacks.UpdateCallback(
                cbs.UpdateCallbackRequest(
                    id=cb.id, update_mask=["async_after_ms"], async_after_ms=value
                ),
                metadata=md,
            ),
            "async_after_ms",
        )
    # Raising the timeout with it in one update is fine; lowering the timeout to it is not.
    both = await _update(
        s,
        md,
        id=cb.id,
        update_mask=["timeout_ms", "async_after_ms"],
        timeout_ms=60_000,
        async_after_ms=30_000,
    )
    assert (both.timeout_ms, both.async_after_ms) == (60_000, 30_000)
    await _refused(
        s.callbacks.UpdateCallback(
            cbs.UpdateCallbackRequest(id=cb.id, update_mask=["timeout_ms"], timeout_ms=30_000),
            metadata=md,
        ),
        "timeout_ms",
    )
    zero = await _update(s, md, id=cb.id, update_mask=["async_after_ms"], async_after_ms=0)
    assert zero.async_after_ms == 0


async def test_regenerate_with_grace(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    before = dt.datetime.now(dt.UTC)
    again = (
        await s.callbacks.RegenerateSignature(
            cbs.RegenerateSignatureRequest(id=cb.id, grace_period=_ms(3_600_000)), metadata=md
        )
    ).callback
    assert again.signature != cb.signature
    expires = again.previous_signature_expire_time.ToDatetime(dt.UTC)
    assert before + dt.timedelta(hours=1) <= expires <= before + dt.timedelta(hours=1, seconds=5)
    got = (await s.callbacks.GetCallback(cbs.GetCallbackRequest(id=cb.id), metadata=md)).callback
    assert got.previous_signature_expire_time == again.previous_signature_expire_time
    row = models.Callback.get_by_id(cb.id)
    assert bytes(row.previous_signature_digest) == digest(cb.signature)
    # A second regeneration during the grace keeps only the signature it replaces.
    third = (
        await s.callbacks.RegenerateSignature(
            cbs.RegenerateSignatureRequest(id=cb.id, grace_period=_ms(60_000)), metadata=md
        )
    ).callback
    row = models.Callback.get_by_id(cb.id)
    assert bytes(row.previous_signature_digest) == digest(again.signature)
    assert third.previous_signature_expire_time.ToDatetime(dt.UTC) < expires
    # Without a grace, the previous signature ends at once.
    plain = (
        await s.callbacks.RegenerateSignature(cbs.RegenerateSignatureRequest(id=cb.id), metadata=md)
    ).callback
    assert not plain.HasField("previous_signature_expire_time")
    assert models.Callback.get_by_id(cb.id).previous_signature_digest is None


async def test_expire_time_is_unset_once_the_grace_is_over(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    shown = (
        await s.callbacks.RegenerateSignature(
            cbs.RegenerateSignatureRequest(id=cb.id, grace_period=_ms(300)), metadata=md
        )
    ).callback
    assert shown.HasField("previous_signature_expire_time")
    await asyncio.sleep(0.4)
    got = (await s.callbacks.GetCallback(cbs.GetCallbackRequest(id=cb.id), metadata=md)).callback
    assert not got.HasField("previous_signature_expire_time")


@pytest.mark.parametrize(
    "grace",
    [
        duration_pb2.Duration(seconds=-1),
        duration_pb2.Duration(seconds=30 * 86400 + 1),
        duration_pb2.Duration(seconds=1, nanos=500),
        duration_pb2.Duration(seconds=1, nanos=-1_000_000),
    ],
)
async def test_bad_grace_periods_are_refused(plane, grace):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    before = database_state()
    await _refused(
        s.callbacks.RegenerateSignature(
            cbs.RegenerateSignatureRequest(id=cb.id, grace_period=grace), metadata=md
        ),
        "grace_period",
    )
    assert database_state() == before


async def test_thirty_days_is_allowed(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    cb = await _callback(s, md)
    again = (
        await s.callbacks.RegenerateSignature(
            cbs.RegenerateSignatureRequest(
                id=cb.id, grace_period=duration_pb2.Duration(seconds=30 * 86400)
            ),
            metadata=md,
        )
    ).callback
    assert again.HasField("previous_signature_expire_time")


def test_hmac_secrets_are_bound_to_their_row_and_resealed_on_key_rotation(db):
    """The secret is sealed like the signature: bound to its row and column, and re-sealed by
    `rotate-secret-key` (docs/security.md)."""
    from control_plane import secrets
    from control_plane.domain import callbacks
    from control_plane.domain.tenancy import Principal
    from control_plane.secrets.box import SealError, SecretBox, decode_key
    from control_plane.store.clock import utcnow
    from tests.conftest import SECRET_KEY

    admin = Principal(key_id="k", company_id=None)
    company = models.Company.create(id="c" * 26, slug="acme", name="A", created_at=utcnow())
    flow = models.Flow.create(
        id="f" * 26, company=company, name="f", draft_number=1, created_at=utcnow()
    )
    cb = callbacks.create_callback(admin, flow.id, callbacks.Settings())
    with_hmac = callbacks.Settings(hmac_scheme=1, hmac_secret=PATCHWORKS_SECRET)
    callbacks.update_callback(admin, cb.id, with_hmac, ["hmac"])
    row = models.Callback.get_by_id(cb.id)
    with pytest.raises(SealError):  # not interchangeable with the signature's sealed value
        secrets.box().open(bytes(row.hmac_secret_sealed), models.signature_aad(cb.id))
    assert callbacks.check_secret_key() == ""
    # A sealed value that does not open here (another row's) is found at start, not in a sync.
    good = row.hmac_secret_sealed
    foreign = secrets.box().seal(PATCHWORKS_SECRET, models.hmac_secret_aad("x" * 26))
    models.Callback.update(hmac_secret_sealed=foreign).execute()
    assert "cannot open the stored callback HMAC secrets" in callbacks.check_secret_key()
    models.Callback.update(hmac_secret_sealed=good).execute()

    old = decode_key(SECRET_KEY)
    new = b"another-installation-key-32bytes"
    secrets.install(SecretBox(new, previous=[old]))
    try:
        # The new key alone opens neither: start refuses, naming what it cannot open.
        secrets.install(SecretBox(new))
        assert "cannot open the stored callback signatures" in callbacks.check_secret_key()
        secrets.install(SecretBox(new, previous=[old]))
        assert callbacks.reseal_signatures() == 2  # the signature and the HMAC secret
        secrets.install(SecretBox(new))
        assert models.Callback.get_by_id(cb.id).hmac_secret == PATCHWORKS_SECRET
    finally:
        secrets.install(SecretBox(old))
