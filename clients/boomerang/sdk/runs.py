"""Runs (the audit trail) and edges (who applied which change)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from google.protobuf import timestamp_pb2

from boomerang.sdk.transport import Transport
from boomerang.v1 import callback_sync_service_pb2 as css
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rs


def run_status(status: r.RunStatus | str | None) -> r.RunStatus:
    """A RunStatus from itself, its name ("RUN_STATUS_FAILED") or short name ("failed")."""
    if status is None or status == "":
        return r.RUN_STATUS_UNSPECIFIED
    if isinstance(status, str):
        name = status.upper()
        return r.RunStatus.Value(name if name.startswith("RUN_STATUS_") else f"RUN_STATUS_{name}")
    return status


def _timestamp(when: datetime) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(when)  # a naive datetime is taken as UTC
    return ts


class RunMethods(Transport):
    def list_runs(
        self,
        company: str,
        flow_id: str = "",
        status: r.RunStatus | str | None = None,
        *,
        start_time_from: datetime | None = None,
        start_time_to: datetime | None = None,
        page_size: int = 0,
    ) -> Iterator[r.Run]:
        """The company's runs, newest first, without shape logs; filters are optional."""
        request = rs.ListRunsRequest(
            company=company, flow_id=flow_id, status=run_status(status), page_size=page_size
        )
        if start_time_from is not None:
            request.start_time_from.CopyFrom(_timestamp(start_time_from))
        if start_time_to is not None:
            request.start_time_to.CopyFrom(_timestamp(start_time_to))
        return self._pages(self._runs.ListRuns, request, "runs")

    def get_run(self, id: str) -> r.Run:
        """The run with its per-shape log."""
        return self._call(self._runs.GetRun, rs.GetRunRequest(id=id)).run

    def list_edges(self) -> list[css.Edge]:
        """Edges that have connected, with the revision each acknowledged. Needs an
        installation-wide key."""
        return list(self._call(self._sync.ListEdges, css.ListEdgesRequest()).edges)
