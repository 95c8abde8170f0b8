"""CallbackService."""

from __future__ import annotations

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import callback_service_pb2_grpc as cbs_grpc
from control_plane.api import convert
from control_plane.api.base import Servicer
from control_plane.domain import callbacks
from control_plane.domain.errors import invalid

CONTENT_TYPE_KINDS = {
    cbs.CONTENT_TYPE_UNSPECIFIED: "",
    cbs.CONTENT_TYPE_JSON: "json",
    cbs.CONTENT_TYPE_XML: "xml",
    cbs.CONTENT_TYPE_TEXT: "text",
    cbs.CONTENT_TYPE_CUSTOM: "custom",
}


def _settings(request) -> callbacks.Settings:
    kind = CONTENT_TYPE_KINDS.get(request.content_type)
    if kind is None:
        raise invalid([("content_type", "unknown content type")])
    return callbacks.Settings(
        name=request.name,
        content_type=kind,
        custom_content_type=request.custom_content_type,
        timeout_ms=request.timeout_ms,
        rate_limit_per_minute=request.rate_limit_per_minute,
    )


class CallbackServicer(Servicer, cbs_grpc.CallbackServiceServicer):
    def _full(self, cb) -> object:
        slug = callbacks.company_slug(cb)
        url = callbacks.url(self.rt.settings.public_base_url, slug, cb)
        return convert.callback(cb, slug, url)

    async def CreateCallback(self, request, context):
        def fn(p):
            cb = callbacks.create_callback(p, request.flow_id, _settings(request))
            return cbs.CreateCallbackResponse(callback=self._full(cb))

        return await self.call(context, fn, writes=True)

    async def GetCallback(self, request, context):
        return await self.call(
            context,
            lambda p: cbs.GetCallbackResponse(
                callback=self._full(callbacks.get_callback(p, request.id))
            ),
        )

    async def ListCallbacks(self, request, context):
        def fn(p):
            rows, token = callbacks.list_callbacks(
                p, request.flow_id, request.page_size, request.page_token
            )
            slug = callbacks.company_slug(rows[0]) if rows else ""
            return cbs.ListCallbacksResponse(
                callbacks=[convert.callback(cb, slug) for cb in rows], next_page_token=token
            )

        return await self.call(context, fn)

    async def DeleteCallback(self, request, context):
        def fn(p):
            callbacks.delete_callback(p, request.id)
            return cbs.DeleteCallbackResponse()

        return await self.call(context, fn, writes=True)

    async def RegenerateSignature(self, request, context):
        return await self.call(
            context,
            lambda p: cbs.RegenerateSignatureResponse(
                callback=self._full(callbacks.regenerate_signature(p, request.id))
            ),
            writes=True,
        )

    async def UpdateCallback(self, request, context):
        def fn(p):
            cb = callbacks.update_callback(
                p, request.id, _settings(request), list(request.update_mask)
            )
            return cbs.UpdateCallbackResponse(callback=self._full(cb))

        return await self.call(context, fn, writes=True)

    async def GetCallbackUrl(self, request, context):
        def fn(p):
            url, env_url = callbacks.callback_urls(
                p, self.rt.settings.public_base_url, request.id, request.environment_id
            )
            return cbs.GetCallbackUrlResponse(url=url, environment_url=env_url)

        return await self.call(context, fn)
