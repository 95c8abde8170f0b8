"""The SDK's gRPC channel and its retry policy (gRPC's own, via the service config).

Which calls are retried, and why:

- gRPC retries *transparently*, with or without a policy, an RPC that never left the client or
  that the server refused before looking at it (connection failed before the stream opened,
  REFUSED_STREAM, GOAWAY). Such a request was never processed, so that is safe for every method,
  mutations included.
- The policy below adds retries on UNAVAILABLE for reads only (Get*/List*). An UNAVAILABLE that
  reaches the policy may come after the server committed the request (the connection broke
  before the answer, a proxy gave up after forwarding it), so retrying CreateCallback could
  create two callbacks and retrying a delete would turn success into NOT_FOUND. Mutations
  therefore surface UNAVAILABLE to the caller, who knows whether repeating is safe.
- Any call, mutations included, whose refusal carries `google.rpc.RetryInfo` is sent again by
  the transport (`Transport._call`, `hinted_wait`), up to HINTED_ATTEMPTS in all: the server
  gives RetryInfo only for a refusal made before anything was done (a company's calls at once,
  ERROR_REASON_TOO_MANY_CALLS; docs/errors.md), so repeating it cannot do anything twice. gRPC's
  policy cannot tell such a RESOURCE_EXHAUSTED from a quota's, which must not be retried.

The per-call deadline (the client's `timeout`) spans every attempt, backoff included.
See https://github.com/grpc/proposal/blob/master/A6-client-retries.md.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
from google.protobuf.descriptor import ServiceDescriptor

from boomerang.v1 import (
    api_key_service_pb2,
    callback_service_pb2,
    callback_sync_service_pb2,
    company_service_pb2,
    connection_service_pb2,
    environment_service_pb2,
    flow_service_pb2,
    run_service_pb2,
)

SERVICES: tuple[ServiceDescriptor, ...] = (
    company_service_pb2.DESCRIPTOR.services_by_name["CompanyService"],
    environment_service_pb2.DESCRIPTOR.services_by_name["EnvironmentService"],
    flow_service_pb2.DESCRIPTOR.services_by_name["FlowService"],
    callback_service_pb2.DESCRIPTOR.services_by_name["CallbackService"],
    api_key_service_pb2.DESCRIPTOR.services_by_name["ApiKeyService"],
    run_service_pb2.DESCRIPTOR.services_by_name["RunService"],
    callback_sync_service_pb2.DESCRIPTOR.services_by_name["CallbackSyncService"],
    connection_service_pb2.DESCRIPTOR.services_by_name["ConnectionService"],
)

RETRY_POLICY = {
    "maxAttempts": 4,
    "initialBackoff": "0.2s",
    "maxBackoff": "3s",
    "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}


#: Attempts in all of a call refused with RetryInfo.
HINTED_ATTEMPTS = 5
#: The longest wait before one of them, however long the server asks for.
HINTED_MAX_WAIT_S = 3.0


def hinted_wait(attempt: int, retry_delay: float) -> float:
    """Seconds to wait after the `attempt`-th refusal (1, 2, ...) that asked for `retry_delay`:
    never less than asked (up to HINTED_MAX_WAIT_S), doubling with each refusal, with up to half
    again of jitter so callers refused together do not come back together."""
    wait = min(retry_delay * 2 ** (attempt - 1), HINTED_MAX_WAIT_S)
    return max(wait, min(retry_delay, HINTED_MAX_WAIT_S)) * random.uniform(1.0, 1.5)


def read_methods() -> list[dict[str, str]]:
    """Service-config names of every unary read (Get*/List*) of the services the SDK wraps."""
    return [
        {"service": service.full_name, "method": method.name}
        for service in SERVICES
        for method in service.methods
        if method.name.startswith(("Get", "List"))
        and not (method.client_streaming or method.server_streaming)
    ]


def service_config() -> dict[str, Any]:
    return {"methodConfig": [{"name": read_methods(), "retryPolicy": RETRY_POLICY}]}


def open_channel(
    target: str,
    *,
    credentials: grpc.ChannelCredentials | None = None,
    options: Sequence[tuple[str, Any]] = (),
) -> grpc.Channel:
    """A channel to `target`, over TLS when `credentials` are given."""
    all_options = [
        ("grpc.enable_retries", 1),
        ("grpc.service_config", json.dumps(service_config())),
        *options,
    ]
    if credentials is not None:
        return grpc.secure_channel(target, credentials, all_options)
    return grpc.insecure_channel(target, all_options)


def tls_credentials(
    ca: str | Path | None = None, cert: str | Path | None = None, key: str | Path | None = None
) -> grpc.ChannelCredentials:
    """TLS credentials from PEM files: `ca` the roots to trust (None: the system's), `cert` and
    `key` a client certificate for servers that require mutual TLS."""
    if (cert is None) != (key is None):
        raise ValueError("a client certificate needs its key, and a key its certificate")

    def read(path: str | Path | None) -> bytes | None:
        return None if path is None else Path(path).read_bytes()

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca), private_key=read(key), certificate_chain=read(cert)
    )
