"""Callbacks: the secret URLs that run a flow and answer synchronously."""

from __future__ import annotations

from collections.abc import Iterator

from boomerang.sdk.transport import Transport
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import resources_pb2 as r

# Short names and the MIME types they stand for; any other MIME type is sent as CUSTOM.
NAMED_CONTENT_TYPES = {
    "json": cbs.CONTENT_TYPE_JSON,
    "application/json": cbs.CONTENT_TYPE_JSON,
    "xml": cbs.CONTENT_TYPE_XML,
    "application/xml": cbs.CONTENT_TYPE_XML,
    "text": cbs.CONTENT_TYPE_TEXT,
    "text/plain": cbs.CONTENT_TYPE_TEXT,
    "txt": cbs.CONTENT_TYPE_TEXT,
    "plain": cbs.CONTENT_TYPE_TEXT,
}
# Common short names for other MIME types (sent as CUSTOM).
MIME_ALIASES = {
    "html": "text/html",
    "csv": "text/csv",
    "yaml": "application/yaml",
    "yml": "application/yaml",
    "form": "application/x-www-form-urlencoded",
}


def content_type_fields(content_type: str) -> tuple[cbs.ContentType, str]:
    """(content_type, custom_content_type) for a short name ("json", "xml", "text", "txt",
    "html", "csv", ...) or any MIME type."""
    if not content_type:
        return cbs.CONTENT_TYPE_UNSPECIFIED, ""
    key = content_type.strip().lower()
    named = NAMED_CONTENT_TYPES.get(key)
    if named is not None:
        return named, ""
    return cbs.CONTENT_TYPE_CUSTOM, MIME_ALIASES.get(key, content_type)


class CallbackMethods(Transport):
    def create_callback(
        self,
        flow_id: str,
        name: str = "",
        content_type: str = "json",
        timeout_ms: int = 0,
        rate_limit_per_minute: int = 0,
    ) -> r.Callback:
        """A new callback with its signature and URL. `content_type` is "json", "xml", "text" or
        a MIME type; `timeout_ms` 0 means the server's default (30 s); `rate_limit_per_minute`
        0 means unlimited."""
        kind, custom = content_type_fields(content_type)
        request = cbs.CreateCallbackRequest(
            flow_id=flow_id,
            name=name,
            content_type=kind,
            custom_content_type=custom,
            timeout_ms=timeout_ms,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        return self._call(self._callbacks.CreateCallback, request).callback

    def get_callback(self, id: str) -> r.Callback:
        return self._call(self._callbacks.GetCallback, cbs.GetCallbackRequest(id=id)).callback

    def list_callbacks(self, flow_id: str, *, page_size: int = 0) -> Iterator[r.Callback]:
        """The flow's callbacks, without signatures or URLs."""
        request = cbs.ListCallbacksRequest(flow_id=flow_id, page_size=page_size)
        return self._pages(self._callbacks.ListCallbacks, request, "callbacks")

    def delete_callback(self, id: str) -> None:
        self._call(self._callbacks.DeleteCallback, cbs.DeleteCallbackRequest(id=id))

    def regenerate_signature(self, id: str) -> r.Callback:
        """The callback with a new signature and URL; the old signature stops working."""
        request = cbs.RegenerateSignatureRequest(id=id)
        return self._call(self._callbacks.RegenerateSignature, request).callback

    def regenerate_signature_and_wait(
        self, id: str, wait_for_edges_ms: int = 5000
    ) -> cbs.RegenerateSignatureResponse:
        """Regenerates, then waits (up to `wait_for_edges_ms`) for connected edges to apply it;
        `pending_edge_ids` names those that had not. Keep the SDK's timeout above the wait."""
        request = cbs.RegenerateSignatureRequest(id=id, wait_for_edges_ms=wait_for_edges_ms)
        return self._call(self._callbacks.RegenerateSignature, request)

    def update_callback(
        self,
        id: str,
        *,
        name: str | None = None,
        content_type: str | None = None,
        timeout_ms: int | None = None,
        rate_limit_per_minute: int | None = None,
    ) -> r.Callback:
        """Changes the settings given (and only those: they make the update mask)."""
        request = cbs.UpdateCallbackRequest(id=id)
        if name is not None:
            request.name = name
            request.update_mask.append("name")
        if content_type is not None:
            request.content_type, request.custom_content_type = content_type_fields(content_type)
            request.update_mask.append("content_type")
        if timeout_ms is not None:
            request.timeout_ms = timeout_ms
            request.update_mask.append("timeout_ms")
        if rate_limit_per_minute is not None:
            request.rate_limit_per_minute = rate_limit_per_minute
            request.update_mask.append("rate_limit_per_minute")
        return self._call(self._callbacks.UpdateCallback, request).callback

    def get_callback_url(self, id: str, environment_id: str = "") -> cbs.GetCallbackUrlResponse:
        """`url` for the default environment and, given `environment_id`, `environment_url`."""
        request = cbs.GetCallbackUrlRequest(id=id, environment_id=environment_id)
        return self._call(self._callbacks.GetCallbackUrl, request)
