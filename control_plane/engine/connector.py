"""The `connector` shape: an HTTP call to another system, its answer becoming the payload.

Fields (docs/connector.md has the worked example; `control_plane.engine.definition` the format):

- ``connection`` (a connection's name) with ``path`` (``/…``, appended to its base URL), or
  ``url`` (absolute http(s) URL): exactly one of the two forms;
- ``method``: GET (default), POST, PUT, PATCH, DELETE;
- ``query`` and ``headers``: objects of name to expression; ``body``: one expression;
- ``timeout_s`` (0 < t ≤ 60; with a connection at most, and by default, the connection's;
  else default 10), ``retries`` (0-2, default 0),
  ``accept_status`` (statuses 100-599 that do not fail the shape besides 2xx);
- ``per``: ``"bucket"`` (default: one call, the bucket becomes ``[answer]``) or ``"payload"``
  (one call per payload, in order, each payload replaced by its answer; at most
  MAX_CALLS_PER_SHAPE payloads);
- ``output``: ``"body"`` (default: the parsed body) or ``"response"`` (``{"status",
  "headers", "body"}``).

The I/O itself (egress rule, credentials, retries, rate limits, size caps) is
control_plane/outbound's; this module evaluates the fields, builds the call and turns the
answer into a payload.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from dataclasses import dataclass
from typing import Any, ClassVar, Final
from urllib.parse import urlsplit

from control_plane.engine.budgets import BudgetExceeded, value_size
from control_plane.engine.expressions import Expression
from control_plane.engine.formats import (
    DEFAULT_MAX_DEPTH,
    UnsafeXML,
    encode_json,
    is_csv_media_type,
    is_json_media_type,
    is_xml_media_type,
    parse_payload,
)
from control_plane.engine.payloads import headers_object
from control_plane.engine.run import RunState
from control_plane.engine.shapes import (
    _HEADER_NAME,
    _HEADER_VALUE,
    SHAPE_TYPES,
    AsyncShape,
    Violations,
    _compile,
)

METHODS: Final = ("GET", "POST", "PUT", "PATCH", "DELETE")
MAX_TIMEOUT_S: Final = 60.0
DEFAULT_TIMEOUT_S: Final = 10.0
MAX_RETRIES: Final = 2
#: Payloads one connector with `per: "payload"` calls for; a larger bucket fails the shape.
MAX_CALLS_PER_SHAPE: Final = 1000
MAX_FIELDS: Final = 50  # query parameters, headers
MAX_HEADER_VALUE: Final = 8192  # one evaluated header value, in characters
MAX_HEADERS_BYTES: Final = 32768  # all evaluated headers of one call
MAX_EXPRESSION_CHARS: Final = 4096
MAX_URL_CHARS: Final = 2048
MAX_ACCEPT_STATUS: Final = 50
#: Answers larger than this are parsed in a thread rather than on the runner's event loop.
INLINE_PARSE_BYTES: Final = 64 * 1024
#: Headers a flow cannot set: the client frames the request, the runner sets the key, and the
#: connection's base URL (or the url) gives the host.
FORBIDDEN_HEADERS: Final = frozenset(
    {
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-authorization",
        "proxy-connection",
        "idempotency-key",
    }
)
_CONNECTION_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# RFC 3986 path characters (pchar and "/"), percent-encoded octets included.
_PATH = re.compile(r"/(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")


class ConnectorFailed(Exception):
    """The shape's failure; `error_type` and `status` become a try_catch's vars.error.type and
    .status (executor._error_type), so a flow can tell failures apart."""

    def __init__(self, type_: str, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.error_type = type_
        self.status = status


@dataclass(frozen=True, slots=True, kw_only=True)
class ConnectorShape(AsyncShape):
    TYPE: ClassVar[str] = "connector"
    FIELDS: ClassVar[frozenset[str]] = frozenset(
        {
            "connection",
            "path",
            "url",
            "method",
            "query",
            "headers",
            "body",
            "timeout_s",
            "retries",
            "accept_status",
            "per",
            "output",
        }
    )

    connection: str = ""
    path: str = ""
    url: str = ""
    method: str = "GET"
    query: tuple[tuple[str, Expression], ...] = ()
    headers: tuple[tuple[str, Expression], ...] = ()
    body: Expression | None = None
    timeout_s: float | None = None
    retries: int = 0
    accept_status: frozenset[int] = frozenset()
    per: str = "bucket"
    output: str = "body"

    @classmethod
    def parse_fields(cls, raw: dict[str, Any], path: str, errors: Violations) -> dict[str, Any]:
        fields: dict[str, Any] = {}
        _target(raw, path, errors, fields)
        if "method" in raw:
            method = raw["method"]
            if method not in METHODS:
                errors.append((f"{path}.method", f"must be one of {', '.join(METHODS)}"))
            fields["method"] = method
        for key in ("query", "headers"):
            if key in raw:
                fields[key] = _named_expressions(raw[key], f"{path}.{key}", key, errors)
        if "body" in raw:
            fields["body"] = _expression(raw["body"], f"{path}.body", errors)
        if "timeout_s" in raw:
            t = raw["timeout_s"]
            if (
                not isinstance(t, int | float)
                or isinstance(t, bool)
                or not 0 < t <= MAX_TIMEOUT_S  # NaN fails this too
            ):
                errors.append((f"{path}.timeout_s", f"must be a number in (0, {MAX_TIMEOUT_S:g}]"))
            else:
                fields["timeout_s"] = float(t)
        if "retries" in raw:
            n = raw["retries"]
            if type(n) is not int or not 0 <= n <= MAX_RETRIES:
                errors.append((f"{path}.retries", f"must be an integer from 0 to {MAX_RETRIES}"))
            fields["retries"] = n
        if "accept_status" in raw:
            fields["accept_status"] = _accept_status(raw["accept_status"], path, errors)
        for key, choices in (("per", ("bucket", "payload")), ("output", ("body", "response"))):
            if key in raw:
                if raw[key] not in choices:
                    errors.append((f"{path}.{key}", f"must be {' or '.join(map(repr, choices))}"))
                fields[key] = raw[key]
        return fields

    async def perform(self, bucket: list[Any], run: RunState) -> list[Any]:
        outbound = run.outbound
        if outbound is None:
            raise ConnectorFailed("unavailable", "this runner makes no outbound calls")
        connection = None
        if self.connection:
            connection = await self._connection(outbound, run)
        deadline = run.meter.deadline or time.monotonic() + 300.0
        if self.per == "bucket":
            context = run.context(bucket[0] if bucket else None, bucket)
            key = run.idempotency_key(self.id)
            result, _ = await self._call(outbound, connection, context, run, key, deadline)
            return [result]
        if len(bucket) > MAX_CALLS_PER_SHAPE:
            raise ConnectorFailed(
                "too_many_calls",
                f"{len(bucket)} payloads: a connector makes at most {MAX_CALLS_PER_SHAPE} calls "
                "per run of the shape",
            )
        results = []
        # The answers become the next bucket: stop as soon as their bodies alone pass its
        # budget, rather than holding up to 1,000 capped responses before the bucket is measured.
        received, limit = 0, run.meter.budgets.bucket_bytes
        for index, payload in enumerate(bucket):
            context = run.context(payload, bucket)
            key = f"{run.idempotency_key(self.id)}.{index}"
            result, size = await self._call(outbound, connection, context, run, key, deadline)
            received += size
            if received > limit:
                raise BudgetExceeded(
                    "bucket_size",
                    f"the answers of the first {index + 1} calls exceed the bucket's budget of "
                    f"{limit} bytes",
                )
            results.append(result)
        return results

    async def _connection(self, outbound: Any, run: RunState) -> Any:
        try:
            connection = await outbound.resolve(run.input.company, self.connection)
        except Exception as exc:
            raise ConnectorFailed(
                "connection_unavailable",
                f"connection {self.connection!r} cannot be read: {type(exc).__name__}",
            ) from None
        if connection is None:
            raise ConnectorFailed(
                "unknown_connection", f"the company has no connection {self.connection!r}"
            )
        return connection

    async def _call(
        self,
        outbound: Any,
        connection: Any,
        context: dict[str, Any],
        run: RunState,
        key: str,
        deadline: float,
    ) -> tuple[Any, int]:
        """One call; returns its payload and the size of the body it came from."""
        from control_plane.outbound.client import Call, CallFailed  # the engine stays I/O-free

        meter = run.meter
        headers: dict[str, str] = {}
        if connection is not None:
            headers.update((k.lower(), v) for k, v in connection.default_headers)
        headers.update(_evaluate_headers(self.headers, context, meter))
        query = _evaluate_query(self.query, context, meter)
        content = None
        if self.body is not None:
            value = self.body.search(context, meter)
            if value is not None:
                budgets = meter.budgets
                value_size(value, budgets.value_bytes, "value_size", meter, budgets.max_depth)
                if isinstance(value, str):
                    content = value.encode("utf-8", errors="replace")
                    headers.setdefault("content-type", "text/plain; charset=utf-8")
                else:
                    content = encode_json(value)
                    headers.setdefault("content-type", "application/json")
        if connection is not None:
            url = connection.base_url.rstrip("/") + self.path
            # The connection's timeout is its owner's limit: a shape may only lower it.
            limit = connection.timeout_s or MAX_TIMEOUT_S
            timeout = min(self.timeout_s, limit) if self.timeout_s else limit
        else:
            url, timeout = self.url, self.timeout_s or DEFAULT_TIMEOUT_S
        call = Call(
            method=self.method,
            url=url,
            idempotency_key=key,
            timeout_s=min(timeout, MAX_TIMEOUT_S),
            retries=self.retries,
            headers=headers,
            query=query,
            content=content,
            connection=connection,
            company=run.input.company,
        )
        where = f"{self.method} {_shown(url)}"
        try:
            answer = await outbound.call(call, deadline)
        except CallFailed as exc:
            raise ConnectorFailed(exc.type, f"{where}: {exc}", exc.status) from None
        except Exception as exc:
            kind = getattr(exc, "type", "")
            if not isinstance(kind, str) or not kind:
                raise
            raise ConnectorFailed(kind, f"{where}: {exc}", getattr(exc, "status", None)) from None
        status = answer.status
        if not 200 <= status <= 299 and status not in self.accept_status:
            tried = f" after {answer.attempts} attempts" if answer.attempts > 1 else ""
            raise ConnectorFailed(
                "http_status",
                f"{where} answered {status}{tried} (not 2xx, nor in accept_status)",
                status,
            )
        try:
            if len(answer.body) > INLINE_PARSE_BYTES:
                # Parsing a large XML body takes a while: in a thread, the loop keeps turning.
                body = await asyncio.to_thread(
                    parse_response, answer.content_type, answer.body, meter.budgets.max_depth, meter
                )
            else:
                body = parse_response(
                    answer.content_type, answer.body, meter.budgets.max_depth, meter
                )
        except UnsafeXML as exc:
            raise ConnectorFailed("unsafe_xml", f"{where} answered unsafe XML: {exc}") from None
        if self.output == "body":
            return body, len(answer.body)
        response = {"status": status, "headers": headers_object(answer.headers), "body": body}
        return response, len(answer.body)


SHAPE_TYPES[ConnectorShape.TYPE] = ConnectorShape  # definition.py imports this module


def parse_response(
    content_type: str, body: bytes, max_depth: int = DEFAULT_MAX_DEPTH, meter: Any = None
) -> Any:
    """An upstream's answer as a payload, by its Content-Type: an empty body is null; JSON
    (none given, application/json, +json), XML (application/xml, text/xml, +xml) and CSV
    (text/csv) as control_plane.engine.formats reads request bodies (a body that does not parse
    is its text; unsafe XML raises UnsafeXML); anything else is its text, in the charset the
    Content-Type names (else UTF-8).

    The one place that decides how an answer is read."""
    if not body:
        return None
    if (
        not content_type
        or is_json_media_type(content_type)
        or is_xml_media_type(content_type)
        or is_csv_media_type(content_type)
    ):
        return parse_payload(body, content_type, max_depth, meter)
    return body.decode(_charset(content_type), errors="replace")


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            try:
                "".encode(charset)
            except LookupError:
                break
            return charset
    return "utf-8"


def _shown(url: str) -> str:
    """The URL without its query (which may hold an API key) for error messages."""
    return url.split("?", 1)[0]


# -- evaluation ------------------------------------------------------------------------------


def _scalar(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return json.dumps(value)
    raise ConnectorFailed(
        "bad_request", f"a value must be a string, number, boolean or null, not {_kind(value)}"
    )


def _evaluate_headers(
    headers: tuple[tuple[str, Expression], ...], context: dict[str, Any], meter: Any
) -> dict[str, str]:
    result: dict[str, str] = {}
    total = 0
    for name, expression in headers:
        try:
            value = _scalar(expression.search(context, meter))
        except ConnectorFailed as exc:
            raise ConnectorFailed("bad_request", f"header {name}: {exc}") from None
        if value is None:
            continue  # null leaves the header out
        if len(value) > MAX_HEADER_VALUE or not _HEADER_VALUE.fullmatch(value):
            raise ConnectorFailed(
                "bad_request",
                f"header {name}: the value must be printable ASCII of at most "
                f"{MAX_HEADER_VALUE} characters",
            )
        total += len(name) + len(value) + 4
        if total > MAX_HEADERS_BYTES:
            raise ConnectorFailed("bad_request", f"the headers exceed {MAX_HEADERS_BYTES} bytes")
        result[name.lower()] = value
    return result


def _evaluate_query(
    query: tuple[tuple[str, Expression], ...], context: dict[str, Any], meter: Any
) -> list[tuple[str, str]]:
    result = []
    for name, expression in query:
        value = expression.search(context, meter)
        values = value if isinstance(value, list) else [value]
        try:
            for item in values:
                text = _scalar(item)
                if text is not None:
                    result.append((name, text))
        except ConnectorFailed as exc:
            raise ConnectorFailed("bad_request", f"query {name}: {exc}") from None
    return result


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array"}.get(type(value), type(value).__name__)


# -- validation ------------------------------------------------------------------------------


def _target(raw: dict[str, Any], path: str, errors: Violations, fields: dict[str, Any]) -> None:
    has_connection, has_url = "connection" in raw, "url" in raw
    if has_connection == has_url:
        errors.append((path, "exactly one of 'connection' (with 'path') or 'url' is required"))
        return
    if has_url:
        if "path" in raw:
            errors.append((f"{path}.path", "goes with 'connection'; a url holds its own path"))
        url = raw["url"]
        why = _url_problem(url)
        if why:
            errors.append((f"{path}.url", why))
        fields["url"] = url
        return
    name = raw["connection"]
    if not isinstance(name, str) or not _CONNECTION_NAME.fullmatch(name):
        errors.append((f"{path}.connection", "must be a connection name (^[a-z0-9][a-z0-9_-]*$)"))
    fields["connection"] = name
    sub = raw.get("path", "/")
    if (
        not isinstance(sub, str)
        or len(sub) > MAX_URL_CHARS
        or not _PATH.fullmatch(sub)
        or any(segment in (".", "..") for segment in sub.split("/"))
    ):
        errors.append(
            (
                f"{path}.path",
                f"must start with '/' and be a URL path of at most {MAX_URL_CHARS} characters "
                "(no query, fragment, '.' or '..' segments; percent-encode other characters)",
            )
        )
    fields["path"] = sub


def _url_problem(url: Any) -> str:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_CHARS:
        return f"must be an absolute http(s) URL of at most {MAX_URL_CHARS} characters"
    if not url.isascii() or any(ch <= " " or ch == "\x7f" for ch in url):
        return "must be ASCII without spaces or control characters (percent-encode them)"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a bad port)
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an absolute http:// or https:// URL with a host"
    if parts.username is not None or parts.password is not None:
        return "must not hold credentials (use a connection)"
    if parts.fragment:
        return "must not have a fragment"
    return ""


def _expression(source: Any, field: str, errors: Violations) -> Expression | None:
    if isinstance(source, str) and len(source) > MAX_EXPRESSION_CHARS:
        errors.append((field, f"must be at most {MAX_EXPRESSION_CHARS} characters"))
        return None
    return _compile(source, field, errors)


def _named_expressions(
    raw: Any, field: str, kind: str, errors: Violations
) -> tuple[tuple[str, Expression], ...]:
    if not isinstance(raw, dict):
        errors.append((field, "must be an object of names to JMESPath expressions"))
        return ()
    if len(raw) > MAX_FIELDS:
        errors.append((field, f"must have at most {MAX_FIELDS} entries"))
        return ()
    parsed = []
    seen: set[str] = set()
    for name, source in raw.items():
        where = f"{field}.{name}"
        if kind == "headers":
            if not _HEADER_NAME.fullmatch(name) or len(name) > 100:
                errors.append((where, "is not a valid header name (RFC 7230 token, ≤ 100)"))
                continue
            lowered = name.lower()
            if lowered in FORBIDDEN_HEADERS:
                errors.append((where, "cannot be set by a flow"))
                continue
            if lowered in seen:
                errors.append((where, "is given twice (header names ignore case)"))
                continue
            seen.add(lowered)
        elif not name or len(name) > 200 or not name.isprintable():
            errors.append((where, "must be a printable name of 1-200 characters"))
            continue
        expression = _expression(source, where, errors)
        if expression is not None:
            parsed.append((name, expression))
    return tuple(parsed)


def _accept_status(raw: Any, path: str, errors: Violations) -> frozenset[int]:
    field = f"{path}.accept_status"
    if not isinstance(raw, list) or len(raw) > MAX_ACCEPT_STATUS:
        errors.append((field, f"must be an array of at most {MAX_ACCEPT_STATUS} status codes"))
        return frozenset()
    for index, status in enumerate(raw):
        if type(status) is not int or not 100 <= status <= 599:
            errors.append((f"{field}[{index}]", "must be an integer from 100 to 599"))
    return frozenset(s for s in raw if type(s) is int)
