"""The callback route: authenticate and route from the cache, start the run, answer the caller.

Order of checks (docs/design.md §1): body size (413, as Sanic's own limit while reading applies
before any route) → signature present (401) → cache usable (503 not_ready) → no change to this
callback in transit (503 not_ready, docs/sync.md) → callback and signature (403,
indistinguishable) → VE prefix (404, only after authentication, so prefixes cannot be probed) →
deployment (503) → run. HEAD stops before the run: it answers 204 when a GET would
start a run, so monitors can check a URL without running the flow.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re

from sanic import Request
from sanic.response import HTTPResponse, empty

from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge import content_types, errors, signatures
from edge.cache import CallbackRecord
from edge.outcomes import outcome_error
from edge.runflow_client import RunLost, RunnerUnavailable

log = logging.getLogger(__name__)
#: Status recorded for a run whose caller closed the connection first (nginx's "client closed
#: request"); the caller never sees it.
CALLER_LEFT = errors.CALLER_LEFT

ALLOW = "GET, POST, HEAD, OPTIONS"
METHODS = ("GET", "POST", "HEAD", "OPTIONS")

#: Used when a callback record has no timeout.
DEFAULT_TIMEOUT_MS = 30_000
#: Longest a caller is kept waiting, whatever the record says (Sanic's RESPONSE_TIMEOUT is set
#: above it).
MAX_TIMEOUT_MS = 300_000

# Headers a callback shape may not set: framing and our own run id header.
_RESERVED_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "upgrade",
        "trailer",
        errors.RUN_ID_HEADER,
    }
)
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_VALUE = re.compile(r"[\r\n\x00]")


async def handle(
    request: Request, company: str, callback_id: str, ve_prefix: str | None = None
) -> HTTPResponse:
    method = request.method
    if method == "OPTIONS":
        return empty(204, headers={"allow": ALLOW})
    ctx = request.app.ctx
    if len(request.body) > ctx.settings.max_body_bytes:
        raise errors.BodyTooLarge

    signature = _signature(request)
    if not signature:
        raise errors.MissingSignature
    state = ctx.cache.usable(ctx.settings.staleness_limit_s)
    if state is None:
        raise errors.NotReady
    record = state.callback(company, callback_id)
    if ctx.cache.held.holds(callback_id, record):
        raise errors.ChangePending
    if not signatures.matches(signature, record.signature_digests if record else None):
        raise errors.Forbidden
    assert record is not None

    if ve_prefix is None:
        environment_id = ""
    else:
        found = state.environment_id(company, ve_prefix)
        if found is None:
            raise errors.UnknownEnvironment
        environment_id = found
    deployment = state.deployment(record, environment_id)
    if deployment is None:
        raise errors.NotDeployed
    if not deployment.enabled:
        raise errors.DeploymentDisabled
    if method == "HEAD":
        return empty(204)
    wait_s = ctx.rate_limiter.take(record.id, record.rate_limit_per_minute)
    if wait_s:
        raise errors.RateLimited(headers={"retry-after": str(math.ceil(wait_s))})

    runners = ctx.runners
    if runners is None:
        raise errors.RunnerDown
    timeout_ms = min(record.timeout_ms or DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS)
    start = runner_pb2.RunStart(
        company=company,
        callback_id=callback_id,
        flow_id=record.flow_id,
        environment_id=environment_id,
        version_id=deployment.version_id,
        method=method,
        body=request.body,
        timeout_ms=timeout_ms,
    )
    _add_request_metadata(start, request)
    run = runners.run(start)
    caller_status = 0  # neither of the contract's two (a bug's 500): the runner records 504
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            result = await run.result()
    except TimeoutError:
        if not run.started:  # still waiting for a runner to take it: the flow never started
            raise errors.RunnerDown from None
        caller_status = errors.CallbackTimeout.status_code
        raise errors.CallbackTimeout(run_id=run.run_id) from None
    except asyncio.CancelledError:
        # Sanic cancels the handler when the caller closes the connection.
        caller_status = CALLER_LEFT
        raise
    except RunnerUnavailable:
        raise errors.RunnerDown from None
    except RunLost:
        raise errors.RunInterrupted(run_id=run.run_id) from None
    finally:
        # Tell the runner what the caller got instead (no-op once the run has answered).
        run.cancel(caller_status)

    if isinstance(result, runner_pb2.RunCallback):
        return _callback_response(result, record, run.run_id)
    raise outcome_error(result, run.run_id)


def _signature(request: Request) -> str:
    """The signature given: the first non-empty patchworks_signature query parameter, else the
    first patchworks-signature header without the optional whitespace (SP, HTAB) that HTTP allows
    around a field value (RFC 9110 §5.5). README "The callback URL" documents this order."""
    return request.args.get(signatures.QUERY_PARAM) or request.headers.get(
        signatures.HEADER, ""
    ).strip(" \t")


def _add_request_metadata(start: runner_pb2.RunStart, request: Request) -> None:
    """Headers and query for the run, without the signature."""
    try:
        for name, value in request.headers.items():
            if name != signatures.HEADER:
                start.headers.add(name=name, value=value)
        for name, value in request.get_query_args(keep_blank_values=True):
            if name != signatures.QUERY_PARAM:
                start.query.add(name=name, value=value)
    except ValueError:
        # Not valid UTF-8 (Sanic keeps raw header bytes as surrogates): pass a readable form.
        del start.headers[:]
        del start.query[:]
        for name, value in request.headers.items():
            if name != signatures.HEADER:
                start.headers.add(name=_printable(name), value=_printable(value))
        for name, value in request.get_query_args(keep_blank_values=True):
            if name != signatures.QUERY_PARAM:
                start.query.add(name=_printable(name), value=_printable(value))


def _printable(s: str) -> str:
    return s.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _callback_response(
    callback: runner_pb2.RunCallback, record: CallbackRecord, run_id: str | None
) -> HTTPResponse:
    status = callback.status_code or 200
    if not 200 <= status <= 599:
        log.warning("run %s: callback status %d is not a valid final status", run_id, status)
        raise errors.FlowFailed(run_id=run_id)
    headers: list[tuple[str, str]] = []
    for h in callback.headers:
        name = h.name.lower()
        if name in _RESERVED_HEADERS or not _TOKEN.match(name) or _BAD_VALUE.search(h.value):
            continue  # framing is ours; CR/LF would let a flow inject headers
        headers.append((name, h.value))
    if run_id:
        headers.append((errors.RUN_ID_HEADER, run_id))
    return HTTPResponse(
        callback.body,
        status=status,
        headers=headers,
        content_type=content_types.answer_content_type(record.content_type),
    )
