"""FlowService."""

from __future__ import annotations

from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import flow_service_pb2_grpc as fs_grpc
from control_plane.domain import flows
from control_plane.domain.errors import invalid
from control_plane.grpckit import convert
from control_plane.grpckit.servicer import Servicer

VIEWS = (fs.VERSION_VIEW_UNSPECIFIED, fs.VERSION_VIEW_BASIC, fs.VERSION_VIEW_FULL)


def _definition(request) -> dict | None:
    return convert.struct_to_dict(request.definition) if request.HasField("definition") else None


class FlowServicer(Servicer, fs_grpc.FlowServiceServicer):
    async def CreateFlow(self, request, context):
        def fn(p):
            flow, draft = flows.create_flow(p, request.company, request.name, _definition(request))
            return fs.CreateFlowResponse(
                flow=convert.flow(flow, request.company), draft=convert.version(draft)
            )

        return await self.call(context, fn, writes=True)

    async def GetFlow(self, request, context):
        def fn(p):
            flow = flows.get_flow(p, request.id)
            return fs.GetFlowResponse(flow=convert.flow(flow, flow.company.slug))

        return await self.call(context, fn)

    async def ListFlows(self, request, context):
        def fn(p):
            rows, token = flows.list_flows(
                p, request.company, request.page_size, request.page_token
            )
            return fs.ListFlowsResponse(
                flows=[convert.flow(f, request.company) for f in rows], next_page_token=token
            )

        return await self.call(context, fn)

    async def DeleteFlow(self, request, context):
        def fn(p):
            flows.delete_flow(p, request.id)
            return fs.DeleteFlowResponse()

        return await self.call(context, fn, writes=True)

    async def GetDraft(self, request, context):
        return await self.call(
            context,
            lambda p: fs.GetDraftResponse(
                version=convert.version(flows.get_draft(p, request.flow_id))
            ),
        )

    async def UpdateDraft(self, request, context):
        def fn(p):
            view = flows.update_draft(p, request.flow_id, _definition(request), request.number)
            return fs.UpdateDraftResponse(version=convert.version(view))

        return await self.call(context, fn, writes=True)

    async def ListVersions(self, request, context):
        def fn(p):
            if request.view not in VIEWS:
                raise invalid([("view", "unknown view")])
            full = request.view == fs.VERSION_VIEW_FULL
            rows, token = flows.list_versions(
                p, request.flow_id, request.page_size, request.page_token, full
            )
            return fs.ListVersionsResponse(
                versions=[convert.version(v, with_definition=full) for v in rows],
                next_page_token=token,
            )

        return await self.call(context, fn)

    async def GetVersion(self, request, context):
        return await self.call(
            context,
            lambda p: fs.GetVersionResponse(
                version=convert.version(flows.get_version(p, request.flow_id, request.number))
            ),
        )

    async def DeployVersion(self, request, context):
        def fn(p):
            dep, version, draft = flows.deploy_version(
                p, request.flow_id, request.number, request.environment_id, request.disabled
            )
            return fs.DeployVersionResponse(
                deployment=convert.deployment(dep),
                version=convert.version(version),
                draft=convert.version(draft),
            )

        return await self.call(context, fn, writes=True)

    async def SetDeploymentEnabled(self, request, context):
        def fn(p):
            dep = flows.set_deployment_enabled(
                p, request.flow_id, request.environment_id, request.enabled
            )
            return fs.SetDeploymentEnabledResponse(deployment=convert.deployment(dep))

        return await self.call(context, fn, writes=True)

    async def ListDeployments(self, request, context):
        return await self.call(
            context,
            lambda p: fs.ListDeploymentsResponse(
                deployments=[
                    convert.deployment(d) for d in flows.list_deployments(p, request.flow_id)
                ]
            ),
        )

    async def DeleteDeployment(self, request, context):
        def fn(p):
            flows.delete_deployment(p, request.flow_id, request.environment_id)
            return fs.DeleteDeploymentResponse()

        return await self.call(context, fn, writes=True)
