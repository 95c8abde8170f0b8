"""Builds and runs the control-plane gRPC server: API, change stream and/or runner by role."""

from __future__ import annotations

import asyncio
import logging
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from boomerang import heap
from boomerang.v1 import (
    api_key_service_pb2,
    api_key_service_pb2_grpc,
    callback_service_pb2,
    callback_service_pb2_grpc,
    callback_sync_service_pb2,
    callback_sync_service_pb2_grpc,
    company_service_pb2,
    company_service_pb2_grpc,
    connection_service_pb2,
    connection_service_pb2_grpc,
    environment_service_pb2,
    environment_service_pb2_grpc,
    flow_service_pb2,
    flow_service_pb2_grpc,
    run_service_pb2,
    run_service_pb2_grpc,
    runner_service_pb2,
    runner_service_pb2_grpc,
)
from control_plane import secrets
from control_plane.api.api_keys import ApiKeyServicer
from control_plane.api.callbacks import CallbackServicer
from control_plane.api.companies import CompanyServicer, EnvironmentServicer
from control_plane.api.connections import ConnectionServicer
from control_plane.api.flows import FlowServicer
from control_plane.api.runs import RunServicer
from control_plane.config import Settings
from control_plane.domain import quotas
from control_plane.domain.ids import new_id
from control_plane.grpckit.company_calls import CompanyCalls
from control_plane.grpckit.decode import DecodeErrors
from control_plane.grpckit.servicer import Runtime
from control_plane.outbound.client import Outbound
from control_plane.outbound.resolver import store_resolver
from control_plane.runner.service import RunnerServicer
from control_plane.runs.driver import RunDriver
from control_plane.runs.journal import Journal
from control_plane.runs.retention import RunRetention
from control_plane.sync.feed import ChangeFeed
from control_plane.sync.service import CallbackSyncServicer

log = logging.getLogger(__name__)

SERVER_OPTIONS = [
    # Two processes on one port would split edges between them unnoticed.
    ("grpc.so_reuseport", 0),
    ("grpc.max_receive_message_length", 16 << 20),
    # Sync sets travel in ~1 MiB chunks (control_plane/sync/chunks.py): no message needs more.
    ("grpc.max_send_message_length", 8 << 20),
    # Edges ping every 20 s on idle streams (edge/app.py); accept that instead of GOAWAY
    # `too_many_pings`. This is grpc core's GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS
    # (grpc_types.h); a misspelt name is ignored without a word, and once cut idle callbacks off
    # after about a minute.
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.keepalive_permit_without_calls", 1),
    # And notice a vanished edge so its stream (and ListEdges) reflect it.
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 10_000),
]


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS for the listener when a certificate is configured; with a client CA, mutual TLS:
    a client without a certificate that CA signed cannot connect (docs/security.md)."""
    if not settings.tls_cert:
        return None
    client_ca = Path(settings.tls_client_ca).read_bytes() if settings.tls_client_ca else None
    return grpc.ssl_server_credentials(
        [(Path(settings.tls_key).read_bytes(), Path(settings.tls_cert).read_bytes())],
        root_certificates=client_ca,
        require_client_auth=client_ca is not None,
    )


def _name(module, service: str) -> str:
    return module.DESCRIPTOR.services_by_name[service].full_name


class ControlPlane:
    """One process's gRPC server and the background work it owns (change feed, runs)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        quotas.configure(settings.quotas)
        self.executor = ThreadPoolExecutor(settings.db_threads, thread_name_prefix="db")
        self.feed = ChangeFeed(settings.feed_poll_s, settings.change_retention_s)
        self.runtime = Runtime(
            settings,
            self.executor,
            on_write=self.feed.notify,
            company_calls=CompanyCalls(settings.company_api_calls, settings.company_api_waiting),
        )
        #: This process's identity in the run queue: a new one each start, so runs a previous
        #: incarnation held are recognised as abandoned once their lease expires.
        self.runner_id = f"runner-{new_id()}"
        self.journal = Journal(self.runtime, self.runner_id, settings.run_lease_s)
        self.runs_role = settings.role in ("all", "runner")
        #: The runner's outbound HTTP client for connector shapes: one pool for all its runs.
        self.outbound = (
            Outbound(settings.outbound, store_resolver(self.runtime.db)) if self.runs_role else None
        )
        self.driver = RunDriver(self.runtime, self.journal, self.runner_id, self.outbound)
        self.retention = RunRetention(self.runtime)
        # Every role: runners open connection secrets just before a connector's call.
        secrets.configure(settings)
        self.server = grpc.aio.server(options=SERVER_OPTIONS, interceptors=[DecodeErrors()])
        self.health = health.aio.HealthServicer()
        self.port = 0

    def _register(self) -> list[str]:
        s, rt = self.server, self.runtime
        names = []
        if self.settings.role in ("all", "control"):
            company_service_pb2_grpc.add_CompanyServiceServicer_to_server(CompanyServicer(rt), s)
            environment_service_pb2_grpc.add_EnvironmentServiceServicer_to_server(
                EnvironmentServicer(rt), s
            )
            flow_service_pb2_grpc.add_FlowServiceServicer_to_server(FlowServicer(rt), s)
            callback_service_pb2_grpc.add_CallbackServiceServicer_to_server(CallbackServicer(rt), s)
            api_key_service_pb2_grpc.add_ApiKeyServiceServicer_to_server(ApiKeyServicer(rt), s)
            connection_service_pb2_grpc.add_ConnectionServiceServicer_to_server(
                ConnectionServicer(rt), s
            )
            run_service_pb2_grpc.add_RunServiceServicer_to_server(RunServicer(rt), s)
            callback_sync_service_pb2_grpc.add_CallbackSyncServiceServicer_to_server(
                CallbackSyncServicer(rt, self.feed), s
            )
            names += [
                _name(company_service_pb2, "CompanyService"),
                _name(environment_service_pb2, "EnvironmentService"),
                _name(flow_service_pb2, "FlowService"),
                _name(callback_service_pb2, "CallbackService"),
                _name(api_key_service_pb2, "ApiKeyService"),
                _name(connection_service_pb2, "ConnectionService"),
                _name(run_service_pb2, "RunService"),
                _name(callback_sync_service_pb2, "CallbackSyncService"),
            ]
        if self.settings.role in ("all", "runner"):
            runner_service_pb2_grpc.add_RunnerServiceServicer_to_server(
                RunnerServicer(rt, self.driver), s
            )
            names.append(_name(runner_service_pb2, "RunnerService"))
        return names

    async def start(self) -> int:
        names = self._register()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*names, health.SERVICE_NAME, reflection.SERVICE_NAME], self.server
        )
        credentials = server_credentials(self.settings)
        if credentials is None:
            self.port = self.server.add_insecure_port(self.settings.listen)
        else:
            self.port = self.server.add_secure_port(self.settings.listen, credentials)
        if self.port == 0:
            raise RuntimeError(f"cannot listen on {self.settings.listen}")
        await self.server.start()
        self.runtime.sessions.start(self.runtime.db)
        if self.settings.role in ("all", "control"):
            self.feed.start(self.runtime)
        if self.runs_role:
            self.journal.start()
            self.driver.start()
            self.retention.start()
        for name in ["", *names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        return self.port

    async def stop(self, grace: float = 5.0) -> None:
        """Graceful: report NOT_SERVING, drain the runs (new ones go to other runners, those
        before their callback get `drain_grace_s` to finish, the rest is handed back to the
        queue), finish in-flight calls, then stop."""
        await self.health.enter_graceful_shutdown()
        if self.runs_role:
            await self.driver.drain()
            await self.retention.stop()
            await self.journal.stop()
            if self.outbound is not None:
                await self.outbound.aclose()
        await self.server.stop(grace)
        await self.runtime.sessions.stop()
        await self.feed.stop()
        self.executor.shutdown(wait=True)


async def serve(settings: Settings, on_started=None) -> None:
    plane = ControlPlane(settings)
    port = await plane.start()
    heap.freeze_startup()  # full GC collections skip what start-up built (boomerang/heap.py)
    if on_started is not None:
        on_started(plane, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    # Whatever is left runs out within 10 s of SIGTERM: the drain grace, then 2 s for calls.
    await plane.stop(grace=2.0)
