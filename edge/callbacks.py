"""The callback route: authenticate and route from the cache, start the run, answer the caller.

Order of checks (docs/design.md §1, docs/callback-security.md):
1. body size (413, as Sanic's own limit while reading applies before any route);
2. signature present (401 missing_signature);
3. cache usable (503 not_ready);
4. no change to this callback in transit (503 not_ready, docs/sync.md);
5. callback and signature: the current one, or the previous one while its grace lasts by this
   edge's clock (403 forbidden, indistinguishable and constant time, edge/signatures.py);
   from here on, an allowed Origin gets CORS headers on whatever the answer is (edge/cors.py);
6. HMAC, when the callback requires one (401 hmac_missing, 403 hmac_invalid, 409 hmac_replayed,
   429 when the replay memory is full; edge/request_hmac.py);
7. VE prefix (404, only after authentication, so prefixes cannot be probed);
8. deployment (503);
9. rate limit (429 rate_limited);
10. Idempotency-Key well formed (400 invalid_idempotency_key; edge/idempotency.py);
11. run.
HEAD stops before the rate limit: it answers 204 when a GET would start a run, so monitors can
check a URL without running the flow. OPTIONS answers 204 with Allow, or, for a CORS preflight,
is answered by edge/cors.py after steps 3-5 (the signature only if the query carries one).

How the caller is answered (docs/answers.md): by default it waits for the callback (or the
error that ends the run). An Idempotency-Key, `Prefer: respond-async`, a webhook-mode callback
and a callback's async_after_ms each change that; `_answer_mode` sets the start up for them, and
a request with none of them takes the same path, at the same cost, as before they existed.
"""

from __future__ import annotations

import asyncio
import logging
import math

from sanic import Request
from sanic.response import HTTPResponse, empty

from boomerang.v1 import resources_pb2
from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge import answers, cors, errors, idempotency, request_hmac, signatures
from edge.cache import CacheState, CallbackRecord
from edge.outcomes import outcome_error
from edge.runflow_client import RunLost, RunnerUnavailable

log = logging.getLogger(__name__)
#: Status recorded for a run whose caller closed the connection first (nginx's "client closed
#: request"); the caller never sees it.
CALLER_LEFT = errors.CALLER_LEFT
#: Status recorded for a run whose caller got 202 (async, webhook mode).
CALLER_ACCEPTED = 202

ALLOW = "GET, POST, HEAD, OPTIONS"
METHODS = ("GET", "POST", "HEAD", "OPTIONS")

#: Used when a callback record has no timeout.
DEFAULT_TIMEOUT_MS = 30_000
#: Longest a caller is kept waiting, whatever the record says (Sanic's RESPONSE_TIMEOUT is set
#: above it).
MAX_TIMEOUT_MS = 300_000

_WEBHOOK = resources_pb2.CALLBACK_MODE_WEBHOOK
_ASYNC = runner_pb2.ANSWER_MODE_ASYNC


async def handle(
    request: Request, company: str, callback_id: str, ve_prefix: str | None = None
) -> HTTPResponse:
    method = request.method
    if method == "OPTIONS" and not cors.is_preflight(request):
        return empty(204, headers={"allow": ALLOW})
    ctx = request.app.ctx
    if method == "OPTIONS":
        return _preflight(request, company, callback_id)
    if len(request.body) > ctx.settings.max_body_bytes:
        raise errors.BodyTooLarge

    signature = _signature(request)
    if not signature:
        raise errors.MissingSignature
    state, record = _lookup(ctx, company, callback_id)
    if not signatures.matches(signature, signatures.accepted_digests(record)):
        raise errors.Forbidden
    assert record is not None
    cors.allow(request, record)
    claimed = request_hmac.verify(request, record, ctx.replays)
    if claimed is not None:
        request.ctx.webhook_claim = (record.id, claimed)

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
    headers = request.headers
    detach_at = 0.0
    if (
        record.mode == _WEBHOOK
        or record.async_after_ms > 0
        or idempotency.HEADER in headers
        or answers.PREFER in headers
    ):
        detach_at = _answer_mode(start, record, request)
    run = runners.run(start)
    caller_status = 0  # neither of the contract's two (a bug's 500): the runner records 504
    try:
        async with asyncio.timeout(timeout_ms / 1000):
            result = await run.result(detach_at)
            if type(result) is runner_pb2.RunAccepted:
                caller_status = CALLER_ACCEPTED  # async or webhook mode: answered 202 below
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
        return answers.callback_response(result, record.content_type, run.run_id)
    if isinstance(result, runner_pb2.RunOutcome):
        raise outcome_error(result, run.run_id)
    return _kept_answer(result, run.run_id or "", company, start, request)


def _answer_mode(start: runner_pb2.RunStart, record: CallbackRecord, request: Request) -> float:
    """Sets `start` up for kept answers; returns when to detach (event-loop time; 0: never).

    A webhook-mode callback answers 202 whatever the caller prefers; `Prefer: respond-async`
    asks the same of a sync one; async_after_ms detaches a sync caller that waited that long.
    """
    headers = request.headers
    if idempotency.HEADER in headers:
        start.idempotency_key = idempotency.parse_key(headers.getall(idempotency.HEADER))
        start.request_fingerprint = idempotency.fingerprint(start)
    start.content_type = record.content_type
    if record.mode == _WEBHOOK:
        start.answer_mode = runner_pb2.ANSWER_MODE_WEBHOOK
    elif _prefers_async(request):
        start.answer_mode = _ASYNC
    elif record.async_after_ms > 0:
        return asyncio.get_running_loop().time() + record.async_after_ms / 1000
    return 0.0


def _prefers_async(request: Request) -> bool:
    return answers.prefers_async(request.headers.getall(answers.PREFER, []))


def _kept_answer(
    result: runner_pb2.RunAccepted | runner_pb2.RunDetached | runner_pb2.RunReplay,
    run_id: str,
    company: str,
    start: runner_pb2.RunStart,
    request: Request,
) -> HTTPResponse:
    """The 202 of an async, webhook-mode or detached run, or a repeated key's first answer."""
    if isinstance(result, runner_pb2.RunAccepted):
        asked = start.answer_mode == _ASYNC  # else webhook mode: no status URL
        token = result.status_token if asked else ""
        return answers.queued_response(company, token, run_id, preference_applied=asked)
    if isinstance(result, runner_pb2.RunDetached):
        return answers.queued_response(
            company, result.status_token, run_id, preference_applied=False
        )
    if not result.HasField("answer"):
        raise errors.IdempotencyInProgress(run_id=result.run_id)
    # A replayed 202 says Preference-Applied when this request asked for it, as the first did
    # (the key's fingerprint leaves headers out, so that is the one header that may differ).
    return answers.stored_response(
        result.answer, company, result.run_id, preference_applied=_prefers_async(request)
    )


def _lookup(ctx, company: str, callback_id: str) -> tuple[CacheState, CallbackRecord | None]:
    """The cache's state and the callback's record (None: unknown). Fails closed (503) while the
    cache is unusable or a change to this callback is in transit (docs/sync.md)."""
    state = ctx.cache.usable(ctx.settings.staleness_limit_s)
    if state is None:
        raise errors.NotReady
    record = state.callback(company, callback_id)
    if ctx.cache.held.holds(callback_id, record):
        raise errors.ChangePending
    return state, record


def _preflight(request: Request, company: str, callback_id: str) -> HTTPResponse:
    """A CORS preflight: the callback must be known (and the query's signature right, if any);
    the same 403 otherwise, so preflights cannot probe callbacks."""
    _, record = _lookup(request.app.ctx, company, callback_id)
    signature = request.args.get(signatures.QUERY_PARAM)
    if signature and not signatures.matches(signature, signatures.accepted_digests(record)):
        record = None
    return cors.preflight(request, record)


async def release_unused_webhook_id(request: Request, response: HTTPResponse) -> None:
    """A Standard Webhooks id is only spent by a request that started a run (its answer names
    the run): a sender's retry after a 404, 429 or 503 before any run is no replay."""
    claim = getattr(request.ctx, "webhook_claim", None)
    if claim is not None and errors.RUN_ID_HEADER not in response.headers:
        request.app.ctx.replays.release(*claim)


def _signature(request: Request) -> str:
    """The signature given: the first non-empty patchworks_signature query parameter, else the
    first patchworks-signature header without the optional whitespace (SP, HTAB) that HTTP allows
    around a field value (RFC 9110 §5.5). README "The callback URL" documents this order."""
    # The query as _add_request_metadata reads it (Sanic parses it once per form asked for):
    # the first non-empty value is what `request.args.get` would give, without a second parse.
    for name, value in request.get_query_args(keep_blank_values=True):
        if value and name == signatures.QUERY_PARAM:
            return value
    return request.headers.get(signatures.HEADER, "").strip(" \t")


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
