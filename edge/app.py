"""The edge's Sanic app: `create_app(settings)`.

Resources open in `before_server_start` (last-known-good state, gRPC channels, the sync and
RunFlow background tasks) and close in reverse in `after_server_stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlunparse

import grpc
from sanic import Request, Sanic
from sanic.config import Config
from sanic.response import HTTPResponse, json, raw

from edge import callbacks, channels, cors, lkg, status_urls
from edge.access_log import AccessLog
from edge.cache import CallbackCache
from edge.config import EdgeSettings
from edge.errors import CALLER_LEFT, RUN_ID_HEADER, JsonErrorHandler, loggable_path
from edge.metrics import CONTENT_TYPE_LATEST, EdgeMetrics
from edge.protocol import Limits
from edge.rate_limits import RateLimiter
from edge.request_hmac import ReplayMemory
from edge.runflow_client import RunFlowClient
from edge.runner_pool import RunnerPool
from edge.sync_client import SyncClient

#: One line per request: path only, never the query string (it may hold the signature).
access_log = logging.getLogger("edge.access")

# Both streams are long-lived and may sit idle for hours: keepalive pings notice a dead peer
# (a half-open TCP connection) within ~30 s, so the edge reconnects, and its staleness clock
# starts, instead of trusting a stream that will never deliver again. The control plane allows
# pings this often (control_plane/server.py). Sync sets arrive in ~1 MiB chunks: 8 MiB is ample.
#
# Reconnect backoff: gRPC's default (1 s, x1.6 per failed attempt, up to 120 s) means a peer back
# after a few minutes' outage is noticed up to two minutes late. Capped at 500 ms (+-20% jitter
# by gRPC), the channel is connected again within ~0.6 s and the stream, retried by the edge at
# most every 1 s (edge.backoff), within ~1.6 s. "min_reconnect_backoff_ms" is in fact the
# shortest connect timeout (default 20 s): 1 s abandons a connect that hangs on a host dropping
# packets, so a new attempt, not a late SYN retransmit, finds it when it is back; a plaintext
# connect within the installation takes milliseconds. 100 ms is gRPC's floor for all three.
CHANNEL_OPTIONS = [
    ("grpc.keepalive_time_ms", 20_000),
    ("grpc.keepalive_timeout_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.max_receive_message_length", 8 << 20),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 500),
    ("grpc.min_reconnect_backoff_ms", 1_000),
]
log = logging.getLogger(__name__)

SYNC_TASK = "edge-sync"
RUNFLOW_TASK = "edge-runflow"
_OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.yaml"})


@dataclass
class EdgeContext:
    settings: EdgeSettings
    cache: CallbackCache
    metrics: EdgeMetrics
    access_log: AccessLog
    limits: Limits
    rate_limiter: RateLimiter = field(default_factory=RateLimiter)
    status_limiter: status_urls.StatusLimiter = field(default_factory=status_urls.StatusLimiter)
    #: Standard Webhooks ids seen by this edge (edge/request_hmac.py).
    replays: ReplayMemory = field(default_factory=ReplayMemory)
    sync: SyncClient | None = None
    runners: RunnerPool | None = None
    control_plane_channel: grpc.aio.Channel | None = None
    # Background tasks, named (SYNC_TASK, RUNFLOW_TASK). Plain asyncio tasks rather than
    # app.add_task: Sanic refuses named tasks when served through create_server (edge.server).
    sync_task: asyncio.Task[None] | None = None
    runflow_task: asyncio.Task[None] | None = None
    access_log_task: asyncio.Task[None] | None = None


EdgeApp = Sanic[Config, EdgeContext]

#: The OpenAPI 3.1 description of the edge's HTTP surface, shipped inside the package
#: (pyproject's package-data) so an installed edge serves it too.
OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


class EdgeRequest(Request[EdgeApp, SimpleNamespace]):
    """A request stamped with its arrival time (cheaper than a request middleware)."""

    __slots__ = ("started",)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.started = time.perf_counter()

    @property
    def url(self) -> str:
        """The URL without its query string, which may hold the signature: Sanic puts
        `request.url` in log lines of its own (a request cut short by shutdown, access logs)."""
        return urlunparse((self.scheme, self.host, self.path, None, None, None))


def create_app(
    settings: EdgeSettings, *, name: str = "boomerang-edge", touchup: bool = False
) -> EdgeApp:
    """A new edge app; `name` must be unique among the process's Sanic apps.

    `touchup`: let Sanic strip unused code paths from its classes (about 100 µs less per
    request). It rewrites those classes process-wide, so only a process serving a single app
    (`python -m edge`) turns it on; tests build many apps in one process and leave it off.
    """
    metrics_ = EdgeMetrics()
    limits = Limits(
        settings.header_timeout_s,
        settings.body_timeout_s,
        settings.keep_alive_timeout_s,
        settings.max_connections,
    )
    limits.refused = metrics_.refused_connection
    app: EdgeApp = Sanic(
        name,
        ctx=EdgeContext(
            settings=settings,
            cache=CallbackCache(),
            metrics=metrics_,
            access_log=AccessLog(access_log),
            limits=limits,
        ),
        error_handler=JsonErrorHandler(),
        request_class=EdgeRequest,
        configure_logging=False,
    )
    # Sanic derives its (process-wide) header size limit from REQUEST_MAX_SIZE too, so it may not
    # go below the header limit; the exact body limit is checked by the callback route.
    app.config.REQUEST_MAX_SIZE = max(settings.max_body_bytes, app.config.REQUEST_MAX_HEADER_SIZE)
    # Sanic's RESPONSE_TIMEOUT (503) covers reading the body too: it must never fire before our
    # body deadline (408) or the callback's timeout (504).
    app.config.RESPONSE_TIMEOUT = callbacks.MAX_TIMEOUT_MS / 1000 + settings.body_timeout_s + 5
    # Sanic's REQUEST_TIMEOUT counts from the last byte received (a trickle resets it): a
    # backstop only; edge.protocol bounds the whole head and body (docs/http.md).
    app.config.REQUEST_TIMEOUT = settings.header_timeout_s
    app.config.KEEP_ALIVE_TIMEOUT = settings.keep_alive_timeout_s
    app.config.ACCESS_LOG = False  # ours, below: Sanic's would log the query string
    app.config.MOTD = False
    app.config.TOUCHUP = touchup
    app.config.FALLBACK_ERROR_FORMAT = "json"

    # Sanic tries the static `runs` segment before the callback_ve route's <callback_id>.
    app.add_route(status_urls.handle, status_urls.PATH, methods=status_urls.METHODS, name="status")
    for path in ("/api/v1/<company>/<callback_id>", "/api/v1/<company>/<callback_id>/<ve_prefix>"):
        app.add_route(
            callbacks.handle,
            path,
            methods=callbacks.METHODS,
            name="callback_ve" if "ve_prefix" in path else "callback",
        )
    app.add_route(healthz, "/healthz", methods=("GET", "HEAD"))
    app.add_route(readyz, "/readyz", methods=("GET", "HEAD"))
    app.add_route(metrics, "/metrics", methods=("GET",))
    # The OpenAPI description of what callers see here (docs/openapi.md), read once.
    description = OPENAPI_PATH.read_bytes()

    async def openapi(request: Request) -> HTTPResponse:
        return raw(description, content_type="application/yaml")

    app.add_route(openapi, "/openapi.yaml", methods=("GET", "HEAD"))
    app.on_response(_record)
    # Callback answers of every kind, errors included: CORS headers, and webhook ids not spent.
    app.on_response(cors.on_response)
    app.on_response(callbacks.release_unused_webhook_id)
    app.before_server_start(_open)
    app.after_server_stop(_close)
    return app


async def healthz(request: Request) -> HTTPResponse:
    return json({"status": "ok"})


async def readyz(request: Request) -> HTTPResponse:
    """Ready while callbacks can be answered: the cache may be served from (loaded and, with a
    staleness limit, fresh) and some runner takes runs. A load balancer then stops sending
    callers to an edge that could only answer them 503; `failed` names what is missing."""
    ctx: EdgeContext = request.app.ctx
    state = ctx.cache.usable(ctx.settings.staleness_limit_s)
    runner_ok = ctx.runners is not None and ctx.runners.connected
    failed = [
        name
        for name, ok in (("callback_configuration", state is not None), ("runner", runner_ok))
        if not ok
    ]
    body = {
        "ready": not failed,
        "failed": failed,
        "revision": ctx.cache.state.revision if ctx.cache.state else None,
        "control_plane_connected": ctx.cache.live,
        "runner_connected": runner_ok,
        "runners": {c.name: _runner_state(c) for c in ctx.runners.clients} if ctx.runners else {},
    }
    return json(body, status=503 if failed else 200)


def _runner_state(client: RunFlowClient) -> str:
    if not client.connected:
        return "down"
    return "draining" if client.draining else "up"


async def metrics(request: Request) -> HTTPResponse:
    ctx: EdgeContext = request.app.ctx
    return raw(ctx.metrics.render(), content_type=CONTENT_TYPE_LATEST)


async def _record(request: EdgeRequest, response: HTTPResponse) -> None:
    elapsed = time.perf_counter() - request.started
    path = request.path
    status = response.status
    if status == CALLER_LEFT:
        return  # counted apart by the error handler; nothing was sent
    if path not in _OPS_PATHS:
        request.app.ctx.metrics.observe(status, elapsed)
    log = request.app.ctx.access_log
    if log.enabled:
        run_id = response.headers.get(RUN_ID_HEADER, "-")
        method = request.method
        if method == "NONE":  # Sanic's stand-in for a request whose head was refused
            method = path = "-"
        log.add(
            f"{request.ip or '-'} {method} {loggable_path(path)} {status} "
            f"{elapsed * 1000:.1f}ms run={run_id}"
        )


async def _open(app: EdgeApp) -> None:
    ctx = app.ctx
    settings = ctx.settings
    loaded = await asyncio.to_thread(lkg.load, settings.lkg_path)
    if loaded is not None:
        ctx.cache.install(loaded.state, confirmed_at=loaded.written_at, live=False)
        log.info(
            "serving last-known-good state: epoch %s revision %d",
            loaded.state.epoch,
            loaded.state.revision,
        )

    tls = channels.credentials(settings)
    ctx.control_plane_channel = channels.open_channel(
        settings.control_plane_target, CHANNEL_OPTIONS, tls
    )
    ctx.sync = SyncClient(
        ctx.control_plane_channel,
        api_key=settings.api_key,
        edge_id=settings.edge_id,
        cache=ctx.cache,
        lkg_path=settings.lkg_path,
    )
    ctx.sync_task = asyncio.create_task(ctx.sync.run(), name=SYNC_TASK)

    ctx.runners = RunnerPool.connect(
        settings.runner_targets,
        api_key=settings.api_key,
        channel_options=CHANNEL_OPTIONS,
        credentials=tls,
        coalesce_s=settings.runflow_coalesce_ms / 1000,
    )
    ctx.runflow_task = asyncio.create_task(ctx.runners.keep_connected(), name=RUNFLOW_TASK)
    ctx.access_log_task = asyncio.create_task(ctx.access_log.run(), name="edge-access-log")

    sync, runners = ctx.sync, ctx.runners
    ctx.metrics.bind(
        revision=lambda: sync.applied_revision,
        control_plane_connected=lambda: sync.connected,
        runner_connected=lambda: runners.connected,
        open_runs=lambda: runners.open_runs,
        runners=runners.clients,
    )


async def _close(app: EdgeApp) -> None:
    ctx = app.ctx
    await _cancel(ctx.access_log_task)  # flushes what it holds
    # Reverse order of _open. Cancelling the RunFlow task fails the runs still open (503/502).
    await _cancel(ctx.runflow_task)
    if ctx.runners is not None:
        await ctx.runners.close()
    await _cancel(ctx.sync_task)
    if ctx.control_plane_channel is not None:
        await ctx.control_plane_channel.close()


async def _cancel(task: asyncio.Task[None] | None) -> None:
    if task is not None and not task.done():
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
