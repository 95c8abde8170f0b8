"""What a caller sees when a callback request does not reach its callback (docs/design.md §1).

Each outcome is an exception class with its status and machine reason at class level; one error
handler renders them all (and Sanic's own errors) as `{"error", "message", "run_id"}`. Messages
are fixed texts: never an exception's own text, a stack trace, an internal name or the signature.

Kept answers (docs/answers.md) add, in the order the callback route checks them: a malformed
Idempotency-Key (400 `invalid_idempotency_key`, before any run), then what the runner says of the
key: reused for another request (422 `idempotency_key_reused`), its first request still running
(409 `idempotency_in_progress`), or the company's kept answers over quota (429 `answers_quota`).
Status URLs (edge/status_urls.py) answer 404 `run_not_found`, 429 `rate_limited` and 503
`runner_unavailable`.
"""

from __future__ import annotations

import logging
import re
from http import HTTPStatus
from typing import Any, ClassVar

from sanic import Request
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

log = logging.getLogger(__name__)

#: Response header naming the run a request started.
RUN_ID_HEADER = "x-boomerang-run-id"
#: Status recorded for a request whose caller closed the connection first (nginx's "client
#: closed request"); the caller never sees it.
CALLER_LEFT = 499


class CallbackError(SanicException):
    status_code: ClassVar[int] = 500
    reason: ClassVar[str] = "internal"
    text: ClassVar[str] = "Internal error."
    quiet = True

    def __init__(self, *, run_id: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(self.text, headers=headers)
        #: The run this request started, when there is one.
        self.run_id = run_id or None


class MissingSignature(CallbackError):
    status_code = 401
    reason = "missing_signature"
    text = (
        "A signature is required: the patchworks_signature query parameter or the "
        "patchworks-signature header."
    )


class Forbidden(CallbackError):
    # Same answer for an unknown company, an unknown callback and a wrong signature.
    status_code = 403
    reason = "forbidden"
    text = "No such callback, or the signature does not match."


class UnknownEnvironment(CallbackError):
    status_code = 404
    reason = "unknown_environment"
    text = "No environment with this URL prefix."


class RateLimited(CallbackError):
    # Raised with a Retry-After header (whole seconds, rounded up).
    status_code = 429
    reason = "rate_limited"
    text = "Too many requests for this callback; retry after the Retry-After seconds."


class BodyTooLarge(CallbackError):
    status_code = 413
    reason = "body_too_large"
    text = "The request body is larger than this edge accepts."


# The request itself is not acceptable HTTP (edge.protocol, docs/http.md). Each closes the
# connection after its answer: what follows on the connection cannot be trusted to be framed.
class MalformedRequest(CallbackError):
    status_code = 400
    reason = "bad_request"
    text = "The request is not valid HTTP/1.1."


class RequestTimeout(CallbackError):
    status_code = 408
    reason = "request_timeout"
    text = "The request did not arrive in time."


class UriTooLong(CallbackError):
    status_code = 414
    reason = "uri_too_long"
    text = "The request line is longer than this edge accepts."


class HeadersTooLarge(CallbackError):
    status_code = 431
    reason = "headers_too_large"
    text = "The request headers are larger than this edge accepts."


class NotDeployed(CallbackError):
    status_code = 503
    reason = "not_deployed"
    text = "The flow is not deployed in this environment."


class DeploymentDisabled(CallbackError):
    status_code = 503
    reason = "disabled"
    text = "The flow's deployment in this environment is disabled."


class NotReady(CallbackError):
    status_code = 503
    reason = "not_ready"
    text = "This edge has no current callback configuration yet; try again shortly."


class ChangePending(CallbackError):
    """A change to this callback is arriving from the control plane (docs/sync.md): serving the
    state it replaces could accept a revoked signature, so fail closed until it is applied."""

    status_code = 503
    reason = "not_ready"
    text = "This callback's configuration is being updated; try again shortly."


class RunnerDown(CallbackError):
    status_code = 503
    reason = "runner_unavailable"
    text = "The flow runner is unavailable; the flow did not start."


class FlowFailed(CallbackError):
    status_code = 502
    reason = "flow_failed"
    text = "The flow failed before reaching its callback; see the run for details."


class NoCallback(CallbackError):
    status_code = 502
    reason = "no_callback"
    text = "The flow finished without reaching a callback shape."


class RunInterrupted(CallbackError):
    status_code = 502
    reason = "run_lost"
    text = "The connection to the runner broke while the flow ran; see the run for its outcome."


class TooManyRuns(CallbackError):
    # The runner refused the start: the company has as many runs in flight as it may. No run
    # exists, so no run id; a second is long enough for some of those runs to finish.
    status_code = 429
    reason = "too_many_runs"
    text = "Too many runs in flight for this company; retry after the Retry-After seconds."
    headers = {"retry-after": "1"}  # Sanic uses the class's headers when none are given


class InvalidIdempotencyKey(CallbackError):
    status_code = 400
    reason = "invalid_idempotency_key"
    text = (
        "The Idempotency-Key header must be one key of 1-255 visible ASCII characters, "
        "bare or as a quoted string."
    )


class IdempotencyInProgress(CallbackError):
    # Raised with the first request's run id; that run has not answered yet.
    status_code = 409
    reason = "idempotency_in_progress"
    text = "A request with this Idempotency-Key is still running; retry after Retry-After seconds."
    headers = {"retry-after": "1"}


class IdempotencyKeyReused(CallbackError):
    status_code = 422
    reason = "idempotency_key_reused"
    text = (
        "This Idempotency-Key was used with a different request "
        "(method, environment, query or body)."
    )


class AnswersQuota(CallbackError):
    # Kept answers free up as their retention ends: a minute is a polite first retry.
    status_code = 429
    reason = "answers_quota"
    text = "The company keeps as many answers as its quota allows; retry after Retry-After seconds."
    headers = {"retry-after": "60"}


class RunNotFound(CallbackError):
    # A status URL with a malformed or unknown token, another company's, or past its retention.
    status_code = 404
    reason = "run_not_found"
    text = "No run answer at this status URL (unknown, or its retention ended)."


class StatusUnavailable(CallbackError):
    status_code = 503
    reason = "runner_unavailable"
    text = "The flow runner is unavailable to look the run up; try again shortly."


class StatusRateLimited(CallbackError):
    # Raised with a Retry-After header (whole seconds, rounded up).
    status_code = 429
    reason = "rate_limited"
    text = "Too many status lookups at this edge; retry after the Retry-After seconds."


# A run stopped by one of the runner's budgets. Each `reason` is `budget_` + the RunReason's
# suffix in lowercase (RUN_REASON_BUDGET_EXPRESSION_STEPS -> budget_expression_steps).
class BudgetExpressionSteps(CallbackError):
    status_code = 502
    reason = "budget_expression_steps"
    text = "The flow exceeded its expression step budget before reaching its callback."


class BudgetValueSize(CallbackError):
    status_code = 502
    reason = "budget_value_size"
    text = "The flow exceeded its value size budget before reaching its callback."


class BudgetBucketSize(CallbackError):
    status_code = 502
    reason = "budget_bucket_size"
    text = "The flow exceeded its bucket size budget before reaching its callback."


class BudgetVariablesSize(CallbackError):
    status_code = 502
    reason = "budget_variables_size"
    text = "The flow exceeded its variables size budget before reaching its callback."


class BudgetCallbackSize(CallbackError):
    status_code = 502
    reason = "budget_callback_size"
    text = "The flow's callback body exceeded its size budget."


class BudgetShapeLog(CallbackError):
    status_code = 502
    reason = "budget_shape_log"
    text = "The flow exceeded its shape log budget before reaching its callback."


class CallbackTimeout(CallbackError):
    status_code = 504
    reason = "timeout"
    text = "The flow did not reach its callback within the callback's timeout; it goes on."


# Reasons for errors Sanic raises itself (routing, protocol, limits), by status.
_SANIC_REASONS = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    416: "range_not_satisfiable",
    417: "expectation_failed",
    503: "unavailable",
}


# Sanic's errors that have a class of ours, for the same reason and message whoever raised it
# (Sanic's 408 is its head timeout, which edge.protocol makes bound the whole head).
_AS_OURS: dict[int, type[CallbackError]] = {
    408: RequestTimeout,
    413: BodyTooLarge,
    414: UriTooLong,
    431: HeadersTooLarge,
}


# A status URL's token past the run id it starts with (edge/status_urls.py).
_STATUS_TOKEN_TAIL = re.compile(r"(/runs/[^/]{26})[^/]+$")


def loggable_path(path: str) -> str:
    """`path` for a log line: a status URL's token is a capability, so only its run id part
    is shown (`/api/v1/acme/runs/<run id>...`)."""
    if "/runs/" not in path:
        return path
    return _STATUS_TOKEN_TAIL.sub("\\1...", path, count=1)


def error_response(
    status: int, reason: str, message: str, *, run_id: str | None, headers: Any = None
) -> HTTPResponse:
    response = json({"error": reason, "message": message, "run_id": run_id}, status, headers)
    if run_id:
        response.headers[RUN_ID_HEADER] = run_id
    return response


class JsonErrorHandler(ErrorHandler):
    """Replaces Sanic's error pages (and their logging, which would show the query string)."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        if isinstance(exception, RequestCancelled):
            # The caller closed the connection before its answer (Sanic cancels the handler):
            # nothing is sent, and it is not the edge's failure, so no 5xx and no error log.
            abandoned(request)
            return error_response(CALLER_LEFT, "caller_left", "", run_id=None)
        if isinstance(exception, CallbackError):
            return error_response(
                exception.status_code,
                exception.reason,
                exception.text,
                run_id=exception.run_id,
                headers=exception.headers,
            )
        if isinstance(exception, SanicException):
            status = exception.status_code
            ours = _AS_OURS.get(status)
            if ours is not None:
                return self.default(request, ours())
            phrase = _phrase(status)
            reason = _SANIC_REASONS.get(status, "error")
            return error_response(
                status, reason, f"{phrase}.", run_id=None, headers=exception.headers
            )
        # A bug: log it with the path only (the query string may hold the signature).
        log.error(
            "unhandled error for %s %s",
            getattr(request, "method", "?"),
            loggable_path(getattr(request, "path", "?")),
            exc_info=exception,
        )
        return error_response(500, "internal", "Internal error.", run_id=None)


def abandoned(request: Request) -> None:
    """Counts (and notes, at DEBUG: anyone can cause it) a request its caller gave up on."""
    ctx = getattr(request.app, "ctx", None)
    metrics = getattr(ctx, "metrics", None)
    if metrics is not None:
        metrics.abandoned()
    log.debug("the caller closed the connection before the answer: %s", request.path)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


# HMAC-verified requests and CORS (docs/callback-security.md).
class HmacMissing(CallbackError):
    status_code = 401
    reason = "hmac_missing"
    text = (
        "This callback requires an HMAC of the request: the X-HMAC-HASH header, or the "
        "webhook-id, webhook-timestamp and webhook-signature headers (Standard Webhooks)."
    )


class HmacInvalid(CallbackError):
    status_code = 403
    reason = "hmac_invalid"
    text = "The request's HMAC does not match its body, or its timestamp is invalid or too old."


class HmacReplayed(CallbackError):
    status_code = 409
    reason = "hmac_replayed"
    text = "This webhook-id was already received by this edge; send a new message instead."


class OriginNotAllowed(CallbackError):
    # Also the answer to a preflight for an unknown callback, so preflights cannot probe.
    status_code = 403
    reason = "origin_not_allowed"
    text = (
        "Cross-origin requests from this origin (or with these methods or headers) are not allowed."
    )
