"""HTTPS through the pinned transport: the connection goes to the checked address, and TLS still
verifies the certificate against (and sends SNI for) the URL's host name."""

from __future__ import annotations

import ssl
import time

import pytest
import trustme

from control_plane.outbound.client import Call, CallFailed
from tests.outbound.conftest import make_outbound
from tests.outbound.upstream import Reply, Upstream


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_upstream(ca):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)  # valid for the name only, not the IP
    server = Upstream(tls=context)
    server.route("/x", Reply(200, {"tls": True}))
    yield server
    server.close()


def call(url: str) -> Call:
    return Call(method="GET", url=url, idempotency_key="k", timeout_s=5.0)


async def test_https_by_name_to_the_pinned_address(ca, tls_upstream, tmp_path):
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    client = make_outbound(ca_file=str(ca_file))
    try:
        url = f"https://localhost:{tls_upstream.port}/x"
        answer = await client.call(call(url), time.monotonic() + 30)
        assert answer.status == 200 and answer.body == b'{"tls": true}'
        assert tls_upstream.requests("/x")[0].headers["host"] == f"localhost:{tls_upstream.port}"
        # The certificate names localhost, not 127.0.0.1: by address, verification fails.
        with pytest.raises(CallFailed) as caught:
            await client.call(
                call(f"https://127.0.0.1:{tls_upstream.port}/x"), time.monotonic() + 30
            )
        assert caught.value.type == "connection"
        assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value)
    finally:
        await client.aclose()


async def test_an_untrusted_certificate_is_refused(tls_upstream):
    client = make_outbound()  # the public CAs only
    try:
        with pytest.raises(CallFailed, match="CERTIFICATE_VERIFY_FAILED"):
            await client.call(
                call(f"https://localhost:{tls_upstream.port}/x"), time.monotonic() + 30
            )
    finally:
        await client.aclose()
    assert tls_upstream.requests("/x") == []
