"""How a run's answer becomes an HTTP response: live, replayed, or fetched from a status URL.

A repeated Idempotency-Key must get the bytes its first request got, and a status URL the answer
the caller would have waited for, so each kind of answer has exactly one function rendering it,
used by every path:

- `callback_response`: the callback shape's answer, from (RunCallback, content type, run id);
- an error: `outcome_error` (edge/outcomes.py) raised and rendered by errors.JsonErrorHandler;
- `queued_response`: 202, the run is queued (async: with its status URL; webhook mode: without).

`stored_response` picks one of them for a StoredAnswer (a replay, a status URL). `prefers_async`
reads `Prefer: respond-async` (RFC 7240).
"""

from __future__ import annotations

import logging
import re
from urllib.parse import quote

from sanic.response import HTTPResponse, json

from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge import content_types, errors
from edge.outcomes import outcome_error

log = logging.getLogger(__name__)

PREFER = "prefer"
RESPOND_ASYNC = "respond-async"
#: How long a caller with a status URL should wait before asking (seconds).
RETRY_AFTER_S = 1

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


def callback_response(
    callback: runner_pb2.RunCallback, content_type: str, run_id: str | None
) -> HTTPResponse:
    """The callback shape's answer: its status and headers, the callback's content type."""
    status = callback.status_code or 200
    if not 200 <= status <= 599:
        log.warning("run %s: callback status %d is not a valid final status", run_id, status)
        raise errors.FlowFailed(run_id=run_id)
    headers: list[tuple[str, str]] = []
    for h in callback.headers:
        name = h.name.lower()
        if name in _RESERVED_HEADERS or not _TOKEN.match(name) or _BAD_VALUE.search(h.value):
            continue  # framing is ours; CR/LF would let a flow inject headers
        if name.startswith("access-control-"):
            continue  # CORS is the callback's setting, not the flow's
        headers.append((name, h.value))
    if run_id:
        headers.append((errors.RUN_ID_HEADER, run_id))
    return HTTPResponse(
        callback.body,
        status=status,
        headers=headers,
        content_type=content_types.answer_content_type(content_type),
    )


def status_path(company: str, status_token: str) -> str:
    """A run's status URL, relative to the edge that serves it (any edge of the installation)."""
    return f"/api/v1/{quote(company, safe='')}/runs/{status_token}"


def queued_response(
    company: str, status_token: str, run_id: str, *, preference_applied: bool
) -> HTTPResponse:
    """202: the run is queued. With a status token (async), `Location` names its status URL;
    without one (webhook mode) the run id is all there is to give."""
    headers = {errors.RUN_ID_HEADER: run_id}
    if not status_token:
        return json({"run_id": run_id}, 202, headers)
    location = status_path(company, status_token)
    headers["location"] = location
    headers["retry-after"] = str(RETRY_AFTER_S)
    if preference_applied:
        headers["preference-applied"] = RESPOND_ASYNC
    return json({"run_id": run_id, "status_url": location}, 202, headers)


def stored_response(
    answer: runner_pb2.StoredAnswer, company: str, run_id: str, *, preference_applied: bool
) -> HTTPResponse:
    """A kept answer, rendered as its first caller got it (an error is raised, as live)."""
    kind = answer.WhichOneof("answer")
    if kind == "callback":
        return callback_response(answer.callback, answer.content_type, run_id)
    if kind == "outcome":
        raise outcome_error(answer.outcome, run_id)
    if kind == "queued":
        return queued_response(
            company, answer.queued.status_token, run_id, preference_applied=preference_applied
        )
    log.warning("run %s: a kept answer of no known kind", run_id)
    raise errors.FlowFailed(run_id=run_id)


def prefers_async(values: list[str]) -> bool:
    """Whether the Prefer header values ask for `respond-async` (RFC 7240 §2: a comma-separated
    list of preferences, each a token, optionally `=value` and `;parameters`; case-insensitive)."""
    for value in values:
        for preference in value.split(","):
            name = preference.split(";", 1)[0].split("=", 1)[0].strip(" \t")
            if name.lower() == RESPOND_ASYNC:
                return True
    return False
