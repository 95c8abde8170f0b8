"""Prometheus metrics of one edge app, in a registry of its own (tests run several apps)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "EdgeMetrics"]

# Callback latency is dominated by the flow: from sub-millisecond to the callback timeout.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class RunnerState(Protocol):
    """What the per-runner gauges read (a RunFlowClient)."""

    @property
    def name(self) -> str: ...
    @property
    def accepting(self) -> bool: ...
    @property
    def open_runs(self) -> int: ...


class EdgeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests = Counter(
            "boomerang_edge_requests",
            "HTTP requests answered (health and metrics endpoints excluded), by status.",
            ["code"],
            registry=self.registry,
        )
        self._latency = Histogram(
            "boomerang_edge_request_duration_seconds",
            "Time from request to response (health and metrics endpoints excluded).",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self._revision = Gauge(
            "boomerang_edge_sync_revision",
            "Revision of the callback cache the edge serves from.",
            registry=self.registry,
        )
        self._control_plane = Gauge(
            "boomerang_edge_control_plane_connected",
            "1 while the change stream from the control plane is up and in sync.",
            registry=self.registry,
        )
        self._runner = Gauge(
            "boomerang_edge_runner_connected",
            "1 while some runner takes new runs (its RunFlow stream is open, it is not draining).",
            registry=self.registry,
        )
        self._open_runs = Gauge(
            "boomerang_edge_open_runs",
            "Runs waiting for their callback.",
            registry=self.registry,
        )
        self._runner_accepting = Gauge(
            "boomerang_edge_runner_accepting",
            "1 while this runner takes new runs (its RunFlow stream is open, it is not draining).",
            ["runner"],
            registry=self.registry,
        )
        self._runner_open_runs = Gauge(
            "boomerang_edge_runner_open_runs",
            "Runs waiting for their callback, on this runner.",
            ["runner"],
            registry=self.registry,
        )
        # Neither is in boomerang_edge_requests: neither is an answer the edge chose, and a
        # caller could inflate 5xx alerts with them.
        self._abandoned = Counter(
            "boomerang_edge_requests_abandoned",
            "Requests whose caller closed the connection before the answer (nginx's 499).",
            registry=self.registry,
        )
        self._refused = Counter(
            "boomerang_edge_connections_refused",
            "Connections answered 503 too_many_connections and closed: EDGE_MAX_CONNECTIONS "
            "were open.",
            registry=self.registry,
        )
        # Labelled children cached by status: labels() takes a lock and builds a key each call.
        self._by_code: dict[int, Counter] = {}

    def bind(
        self,
        *,
        revision: Callable[[], float],
        control_plane_connected: Callable[[], bool],
        runner_connected: Callable[[], bool],
        open_runs: Callable[[], float],
        runners: Sequence[RunnerState] = (),
    ) -> None:
        """Gauges read live values at scrape time rather than being pushed on every change."""
        self._revision.set_function(revision)
        self._control_plane.set_function(lambda: float(control_plane_connected()))
        self._runner.set_function(lambda: float(runner_connected()))
        self._open_runs.set_function(open_runs)
        for runner in runners:
            # Default arguments: each lambda keeps its own runner.
            accepting = self._runner_accepting.labels(runner=runner.name)
            accepting.set_function(lambda r=runner: float(r.accepting))
            self._runner_open_runs.labels(runner=runner.name).set_function(
                lambda r=runner: r.open_runs
            )

    def observe(self, status: int, seconds: float) -> None:
        child = self._by_code.get(status)
        if child is None:
            child = self._by_code[status] = self._requests.labels(code=str(status))
        child.inc()
        self._latency.observe(seconds)

    def abandoned(self) -> None:
        self._abandoned.inc()

    def refused_connection(self) -> None:
        self._refused.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
