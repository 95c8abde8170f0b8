"""ApiKeyService."""

from __future__ import annotations

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import api_key_service_pb2_grpc as aks_grpc
from control_plane.domain import api_keys
from control_plane.grpckit import convert
from control_plane.grpckit.servicer import Servicer


def _slug(key) -> str:
    return key.company.slug if key.company_id else ""


class ApiKeyServicer(Servicer, aks_grpc.ApiKeyServiceServicer):
    async def CreateApiKey(self, request, context):
        def fn(p):
            scope = convert.KEY_SCOPES.get(request.scope, "")  # "": unknown, refused
            key, secret = api_keys.create_api_key(p, request.company, request.name, scope)
            return aks.CreateApiKeyResponse(api_key=convert.api_key(key, _slug(key)), secret=secret)

        return await self.call(context, fn)

    async def ListApiKeys(self, request, context):
        def fn(p):
            rows, token = api_keys.list_api_keys(
                p, request.company, request.page_size, request.page_token
            )
            return aks.ListApiKeysResponse(
                api_keys=[convert.api_key(k, _slug(k)) for k in rows], next_page_token=token
            )

        return await self.call(context, fn)

    async def RevokeApiKey(self, request, context):
        def fn(p):
            key = api_keys.revoke_api_key(p, request.id)
            return aks.RevokeApiKeyResponse(api_key=convert.api_key(key, _slug(key)))

        return await self.call(context, fn)
