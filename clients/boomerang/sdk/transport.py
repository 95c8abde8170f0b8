"""What every SDK method shares: the channel, the stubs, the API key, and `_call`.

`_call` is the one place where a call is made and an `grpc.RpcError` becomes a typed error, and
where a refusal the server says may be sent again (RetryInfo) is sent again (channel.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import Any, Self

import grpc

from boomerang.sdk.channel import HINTED_ATTEMPTS, hinted_wait, open_channel
from boomerang.sdk.errors import from_rpc_error
from boomerang.v1 import (
    api_key_service_pb2_grpc,
    callback_service_pb2_grpc,
    callback_sync_service_pb2_grpc,
    company_service_pb2_grpc,
    connection_service_pb2_grpc,
    environment_service_pb2_grpc,
    flow_service_pb2_grpc,
    run_service_pb2_grpc,
)


class Transport:
    """Connection state; `Client` adds one method per RPC on top of it."""

    def __init__(
        self,
        target: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        secure: bool = False,
        credentials: grpc.ChannelCredentials | None = None,
        wait_for_ready: bool = False,
        options: Sequence[tuple[str, Any]] = (),
        channel: grpc.Channel | None = None,
    ) -> None:
        """Opens a channel to `target` ("host:port"); nothing is sent until the first call.

        `timeout` is each call's deadline in seconds, retries included. `secure` uses TLS with
        the system's root certificates; `credentials` gives other TLS settings (and implies TLS).
        `wait_for_ready` makes calls wait, within their deadline, for an unreachable server to
        come up instead of failing at once with UNAVAILABLE. `options` are extra channel options.
        `channel` replaces the channel the client would open (one with interceptors, or
        grpc_testing's fake in tests); the retry policy is then the channel's own business.
        """
        if credentials is None and secure:
            credentials = grpc.ssl_channel_credentials()
        self.target = target
        self._channel = channel or open_channel(target, credentials=credentials, options=options)
        # Without a key, send nothing: the server then says MISSING_API_KEY, not INVALID_API_KEY.
        self._metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        self.timeout = timeout
        self.wait_for_ready = wait_for_ready
        self._companies = company_service_pb2_grpc.CompanyServiceStub(self._channel)
        self._environments = environment_service_pb2_grpc.EnvironmentServiceStub(self._channel)
        self._flows = flow_service_pb2_grpc.FlowServiceStub(self._channel)
        self._callbacks = callback_service_pb2_grpc.CallbackServiceStub(self._channel)
        self._api_keys = api_key_service_pb2_grpc.ApiKeyServiceStub(self._channel)
        self._runs = run_service_pb2_grpc.RunServiceStub(self._channel)
        self._sync = callback_sync_service_pb2_grpc.CallbackSyncServiceStub(self._channel)
        self._connections = connection_service_pb2_grpc.ConnectionServiceStub(self._channel)

    def _call(self, rpc: grpc.UnaryUnaryMultiCallable, request: Any) -> Any:
        # wait_for_ready only when asked: channels that are not grpc's own (grpc_testing's
        # fake) take no such argument.
        extra = {"wait_for_ready": True} if self.wait_for_ready else {}
        deadline = time.monotonic() + self.timeout  # one deadline for every attempt
        for attempt in range(1, HINTED_ATTEMPTS + 1):
            try:
                left = deadline - time.monotonic()
                return rpc(request, metadata=self._metadata, timeout=left, **extra)
            except grpc.RpcError as err:
                error = from_rpc_error(err)
                if error.retry_delay is None or attempt == HINTED_ATTEMPTS:
                    raise error from err
                wait = hinted_wait(attempt, error.retry_delay)
                if time.monotonic() + wait >= deadline:
                    raise error from err  # no time left for another attempt
                time.sleep(wait)
        raise AssertionError("not reached: the last attempt returns or raises")

    def _pages(self, rpc: grpc.UnaryUnaryMultiCallable, request: Any, field: str) -> Iterator[Any]:
        """Yields the items of every page, fetching the next page only when it is reached."""
        while True:
            response = self._call(rpc, request)
            yield from getattr(response, field)
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
