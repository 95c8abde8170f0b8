"""Callbacks: the secret URLs that run a flow and answer synchronously."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence

from google.protobuf import duration_pb2

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


HMAC_SCHEMES = {
    "none": r.HMAC_SCHEME_UNSPECIFIED,
    "patchworks": r.HMAC_SCHEME_PATCHWORKS,
    "standard_webhooks": r.HMAC_SCHEME_STANDARD_WEBHOOKS,
}
MODES = {"sync": r.CALLBACK_MODE_SYNC, "webhook": r.CALLBACK_MODE_WEBHOOK}


def _duration(grace_period: dt.timedelta | None):
    if grace_period is None:
        return None
    d = duration_pb2.Duration()
    d.FromTimedelta(grace_period)
    return d


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

    def regenerate_signature(self, id: str, grace_period: dt.timedelta | None = None) -> r.Callback:
        """The callback with a new signature and URL. The old signature stops working at once,
        or, with `grace_period` (up to 30 days, whole milliseconds), when that period ends
        (`previous_signature_expire_time`). Only one previous signature is kept."""
        request = cbs.RegenerateSignatureRequest(id=id, grace_period=_duration(grace_period))
        return self._call(self._callbacks.RegenerateSignature, request).callback

    def regenerate_signature_and_wait(
        self, id: str, wait_for_edges_ms: int = 5000, grace_period: dt.timedelta | None = None
    ) -> cbs.RegenerateSignatureResponse:
        """Regenerates, then waits (up to `wait_for_edges_ms`) for connected edges to apply it;
        `pending_edge_ids` names those that had not. Keep the SDK's timeout above the wait."""
        request = cbs.RegenerateSignatureRequest(
            id=id, wait_for_edges_ms=wait_for_edges_ms, grace_period=_duration(grace_period)
        )
        return self._call(self._callbacks.RegenerateSignature, request)

    def update_callback(
        self,
        id: str,
        *,
        name: str | None = None,
        content_type: str | None = None,
        timeout_ms: int | None = None,
        rate_limit_per_minute: int | None = None,
        hmac_scheme: str | None = None,
        hmac_secret: str = "",
        allowed_origins: Sequence[str] | None = None,
        mode: str | None = None,
        async_after_ms: int | None = None,
    ) -> r.Callback:
        """Changes the settings given (and only those: they make the update mask).

        `hmac_scheme` is "none", "patchworks" or "standard_webhooks", with `hmac_secret` (write-
        only, docs/callback-security.md); `allowed_origins` replaces the list ([] clears it);
        `mode` is "sync" or "webhook"; `async_after_ms` 0 turns the async answer off."""
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
        if hmac_scheme is not None:
            request.hmac_scheme = _choice(HMAC_SCHEMES, hmac_scheme, "hmac_scheme")
            request.hmac_secret = hmac_secret
            request.update_mask.append("hmac")
        if allowed_origins is not None:
            request.allowed_origins.extend(allowed_origins)
            request.update_mask.append("allowed_origins")
        if mode is not None:
            request.mode = _choice(MODES, mode, "mode")
            request.update_mask.append("mode")
        if async_after_ms is not None:
            request.async_after_ms = async_after_ms
            request.update_mask.append("async_after_ms")
        return self._call(self._callbacks.UpdateCallback, request).callback

    def get_callback_url(self, id: str, environment_id: str = "") -> cbs.GetCallbackUrlResponse:
        """`url` for the default environment and, given `environment_id`, `environment_url`."""
        request = cbs.GetCallbackUrlRequest(id=id, environment_id=environment_id)
        return self._call(self._callbacks.GetCallbackUrl, request)


def _choice(choices: dict[str, int], value: str, name: str) -> int:
    key = value.strip().lower().replace("-", "_")
    if key not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return choices[key]
