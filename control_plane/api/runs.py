"""RunService."""

from __future__ import annotations

from boomerang.v1 import run_service_pb2 as rs
from boomerang.v1 import run_service_pb2_grpc as rs_grpc
from control_plane.domain import runs
from control_plane.domain.errors import Violations
from control_plane.domain.validation import check_timestamp
from control_plane.grpckit import convert
from control_plane.grpckit.servicer import Servicer


def _datetime(value):
    return None if value is None else convert.from_ts(value)


class RunServicer(Servicer, rs_grpc.RunServiceServicer):
    async def ListRuns(self, request, context):
        def fn(p):
            v = Violations()
            status = ""
            if request.status:
                status = convert.RUN_STATUS_NAMES.get(request.status, "")
                if not status:
                    v.add("status", "unknown run status")
            bounds = {}
            for name in ("start_time_from", "start_time_to"):
                if request.HasField(name):
                    check_timestamp(v, name, getattr(request, name))
                    bounds[name] = getattr(request, name)
            v.raise_if_any()
            rows, token = runs.list_runs(
                p,
                request.company,
                flow_id=request.flow_id,
                status=status,
                start_from=_datetime(bounds.get("start_time_from")),
                start_to=_datetime(bounds.get("start_time_to")),
                page_size=request.page_size,
                page_token=request.page_token,
            )
            return rs.ListRunsResponse(
                runs=[convert.run(r, request.company, with_shapes=False) for r in rows],
                next_page_token=token,
            )

        return await self.call(context, fn)

    async def GetRun(self, request, context):
        def fn(p):
            row, slug = runs.get_run(p, request.id)
            return rs.GetRunResponse(run=convert.run(row, slug, with_shapes=True))

        return await self.call(context, fn)
