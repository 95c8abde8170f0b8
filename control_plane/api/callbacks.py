"""CallbackService."""

from __future__ import annotations

import asyncio
import dataclasses

from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import callback_service_pb2_grpc as cbs_grpc
from boomerang.v1 import resources_pb2 as res
from control_plane.domain import callbacks
from control_plane.domain.errors import invalid
from control_plane.grpckit import convert
from control_plane.grpckit.servicer import Servicer
from control_plane.store import changes
from control_plane.sync import edges

MAX_WAIT_FOR_EDGES_MS = 30_000
EDGE_POLL_S = 0.01

CONTENT_TYPE_KINDS = {
    cbs.CONTENT_TYPE_UNSPECIFIED: "",
    cbs.CONTENT_TYPE_JSON: "json",
    cbs.CONTENT_TYPE_XML: "xml",
    cbs.CONTENT_TYPE_TEXT: "text",
    cbs.CONTENT_TYPE_CUSTOM: "custom",
}

HMAC_SCHEMES = (
    res.HMAC_SCHEME_UNSPECIFIED,
    res.HMAC_SCHEME_PATCHWORKS,
    res.HMAC_SCHEME_STANDARD_WEBHOOKS,
)


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


def _update_settings(request: cbs.UpdateCallbackRequest) -> callbacks.Settings:
    """UpdateCallback also carries the settings only it can set (CreateCallback has none)."""
    if request.hmac_scheme not in HMAC_SCHEMES:
        raise invalid([("hmac_scheme", "unknown HMAC scheme")])
    return dataclasses.replace(
        _settings(request),
        hmac_scheme=request.hmac_scheme,
        hmac_secret=request.hmac_secret,
        allowed_origins=tuple(request.allowed_origins),
        mode=request.mode,  # an unknown value is refused by the domain, with the others
        async_after_ms=request.async_after_ms,
    )


def _grace_ms(request: cbs.RegenerateSignatureRequest) -> int:
    """grace_period in whole milliseconds (the domain checks the range)."""
    d = request.grace_period
    if d.nanos % 1_000_000 or (d.seconds < 0 < d.nanos) or (d.nanos < 0 < d.seconds):
        raise invalid([("grace_period", "must be a whole number of milliseconds, 0 to 30 days")])
    return d.seconds * 1000 + d.nanos // 1_000_000


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
        def fn(p):
            if not 0 <= request.wait_for_edges_ms <= MAX_WAIT_FOR_EDGES_MS:
                raise invalid(
                    [("wait_for_edges_ms", f"must be between 0 and {MAX_WAIT_FOR_EDGES_MS}")]
                )
            response = cbs.RegenerateSignatureResponse(
                callback=self._full(
                    callbacks.regenerate_signature(p, request.id, _grace_ms(request))
                )
            )
            # Read after the commit: at least the change's revision (a later one only makes the
            # wait a little longer, never wrong).
            return response, changes.head()

        # With a wait, the call lasts: revoking its key ends it (open_ended).
        response, head = await self.call(
            context, fn, writes=True, open_ended=bool(request.wait_for_edges_ms)
        )
        if request.wait_for_edges_ms:
            response.pending_edge_ids.extend(
                await self._wait_for_edges(head, request.wait_for_edges_ms / 1000)
            )
        return response

    async def _wait_for_edges(self, head: changes.Head, wait_s: float) -> list[str]:
        """Polls the edges' recorded acks until none is missing or `wait_s` has passed."""
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            missing = await self.rt.db(lambda: edges.pending(head.epoch, head.revision))
            if not missing or asyncio.get_running_loop().time() >= deadline:
                return missing
            await asyncio.sleep(EDGE_POLL_S)

    async def UpdateCallback(self, request, context):
        def fn(p):
            cb = callbacks.update_callback(
                p, request.id, _update_settings(request), list(request.update_mask)
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
