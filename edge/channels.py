"""The edge's gRPC channels (to the control plane and to each runner): every one is made here,
so all of them use the same transport security.

With BOOMERANG_TLS_CA (trust roots) or a client certificate configured, channels use TLS, and
present the client certificate to control planes that require mutual TLS; otherwise plaintext,
for loopback and private networks (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from edge.config import EdgeSettings


def credentials(settings: EdgeSettings) -> grpc.ChannelCredentials | None:
    """TLS credentials from the settings' PEM files, or None for plaintext."""
    if not settings.tls:
        return None

    def read(path) -> bytes | None:
        return None if path is None else path.read_bytes()

    return grpc.ssl_channel_credentials(
        root_certificates=read(settings.tls_ca),  # None: the system's roots
        private_key=read(settings.tls_client_key),
        certificate_chain=read(settings.tls_client_cert),
    )


def open_channel(
    target: str,
    options: Sequence[tuple[str, Any]],
    creds: grpc.ChannelCredentials | None,
) -> grpc.aio.Channel:
    if creds is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, creds, options=options)
