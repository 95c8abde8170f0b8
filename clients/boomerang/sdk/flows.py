"""Process flows, their versions and deployments.

Definitions go in and come out as plain dicts (`structs.definition_dict` reads a version's).
Numbers of versions: 0 means "the draft" wherever a number is optional.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from boomerang.sdk.structs import to_struct
from boomerang.sdk.transport import Transport
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as r


class FlowMethods(Transport):
    def create_flow(
        self, company: str, name: str, definition: dict[str, Any] | None = None
    ) -> fs.CreateFlowResponse:
        """Creates a flow with draft version 1; returns the flow and that draft."""
        request = fs.CreateFlowRequest(company=company, name=name)
        if definition is not None:
            request.definition.CopyFrom(to_struct(definition))
        return self._call(self._flows.CreateFlow, request)

    def get_flow(self, id: str) -> r.Flow:
        return self._call(self._flows.GetFlow, fs.GetFlowRequest(id=id)).flow

    def list_flows(self, company: str, *, page_size: int = 0) -> Iterator[r.Flow]:
        request = fs.ListFlowsRequest(company=company, page_size=page_size)
        return self._pages(self._flows.ListFlows, request, "flows")

    def delete_flow(self, id: str) -> None:
        """Deletes the flow with its versions, deployments and callbacks."""
        self._call(self._flows.DeleteFlow, fs.DeleteFlowRequest(id=id))

    def get_draft(self, flow_id: str) -> r.FlowVersion:
        return self._call(self._flows.GetDraft, fs.GetDraftRequest(flow_id=flow_id)).version

    def update_draft(
        self, flow_id: str, definition: dict[str, Any], number: int = 0
    ) -> r.FlowVersion:
        """Replaces the draft's definition. InvalidArgument (INVALID_DEFINITION) names the path
        in its field violations. Given `number`, fails with FailedPrecondition
        (VERSION_IMMUTABLE) if that version is no longer the draft."""
        request = fs.UpdateDraftRequest(
            flow_id=flow_id, definition=to_struct(definition), number=number
        )
        return self._call(self._flows.UpdateDraft, request).version

    def list_versions(
        self, flow_id: str, *, full: bool = False, page_size: int = 0
    ) -> Iterator[r.FlowVersion]:
        """Every version, newest first, fetched a page at a time. Without `full` the versions
        come without their definitions (get_version reads one); with it, 10 to a page at most."""
        view = fs.VERSION_VIEW_FULL if full else fs.VERSION_VIEW_BASIC
        request = fs.ListVersionsRequest(flow_id=flow_id, page_size=page_size, view=view)
        return self._pages(self._flows.ListVersions, request, "versions")

    def get_version(self, flow_id: str, number: int = 0) -> r.FlowVersion:
        request = fs.GetVersionRequest(flow_id=flow_id, number=number)
        return self._call(self._flows.GetVersion, request).version

    def deploy_version(
        self, flow_id: str, number: int = 0, environment_id: str = "", disabled: bool = False
    ) -> fs.DeployVersionResponse:
        """Deploys version `number` (the draft by default, which opens a new draft) to a VE or,
        without `environment_id`, the default environment. Returns the deployment, the deployed
        version and the draft after the deploy."""
        request = fs.DeployVersionRequest(
            flow_id=flow_id, number=number, environment_id=environment_id, disabled=disabled
        )
        return self._call(self._flows.DeployVersion, request)

    def set_deployment_enabled(
        self, flow_id: str, enabled: bool, environment_id: str = ""
    ) -> r.Deployment:
        request = fs.SetDeploymentEnabledRequest(
            flow_id=flow_id, environment_id=environment_id, enabled=enabled
        )
        return self._call(self._flows.SetDeploymentEnabled, request).deployment

    def list_deployments(self, flow_id: str) -> list[r.Deployment]:
        request = fs.ListDeploymentsRequest(flow_id=flow_id)
        return list(self._call(self._flows.ListDeployments, request).deployments)

    def delete_deployment(self, flow_id: str, environment_id: str = "") -> None:
        request = fs.DeleteDeploymentRequest(flow_id=flow_id, environment_id=environment_id)
        self._call(self._flows.DeleteDeployment, request)
