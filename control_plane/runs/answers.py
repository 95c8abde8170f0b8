"""Kept answers: what a repeat of an Idempotency-Key and an async status URL are given
(docs/answers.md). Blocking; called on a database thread.

One kept_answer row per run whose answer is kept. It is claimed in the same transaction that
makes the run durable (`claim`), so a key names exactly one run however many starts race for it
(the unique index on (callback_id, idempotency_key) decides on PostgreSQL; SQLite's write lock
admits one claim at a time). Its answers are filled in the same transaction as the run change
that produces them (`fill`, from the journal), so a run that answered always has its answer
kept. `answer_usage` counts each company's bytes for the answer_bytes quota: a claim must fit
under it; answers filled later were promised and are added whatever the quota says.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import peewee

from boomerang.v1 import runner_service_pb2 as rs
from control_plane.domain import errors, quotas
from control_plane.domain.ids import new_signature
from control_plane.domain.tenancy import Principal
from control_plane.domain.validation import is_id
from control_plane.store.clock import utcnow
from control_plane.store.db import lock_rows, write_transaction
from control_plane.store.models import AnswerUsage, Company, KeptAnswer

#: What a kept answer counts against the quota before it has an answer: the row itself, and the
#: key. Checked against the quota when the row is claimed.
RESERVE_BYTES = 1024
#: The secret part of a status token: 52 lowercase base-32 characters (like signatures).
_SECRET_RE = re.compile(r"[a-z2-7]{52}")
TOKEN_LENGTH = 26 + 52


class _OverQuota(Exception):
    """Raised inside a claim's transaction to roll it back."""


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a start found: "new" (the run is durable and its row claimed), "replay"
    (the key names an earlier run; `answer` is its kept answer, None while pending),
    "mismatch" (the key was used for a different request) or "quota" (answer_bytes is full)."""

    kind: str
    run_id: str = ""
    answer: bytes | None = None


# -- tokens and stored answers ----------------------------------------------------------------


def new_secret() -> str:
    return new_signature()


def token(run_id: str, secret: str) -> str:
    return run_id + secret


def parse_token(text: str) -> tuple[str, str] | None:
    """(run id, secret) of a well-formed status token; None for anything else."""
    if len(text) != TOKEN_LENGTH:
        return None
    run_id, secret = text[:26], text[26:]
    if not is_id(run_id) or not _SECRET_RE.fullmatch(secret):
        return None
    return run_id, secret


def queued(status_token: str) -> bytes:
    return rs.StoredAnswer(queued=rs.RunQueued(status_token=status_token)).SerializeToString()


def callback_answer(status: int, headers, body: bytes, content_type: str) -> bytes:
    callback = rs.RunCallback(
        status_code=status,
        headers=[rs.HttpHeader(name=n, value=v) for n, v in headers],
        body=body,
    )
    return rs.StoredAnswer(callback=callback, content_type=content_type).SerializeToString()


def outcome_answer(status: int, reason: int, error: str) -> bytes:
    outcome = rs.RunOutcome(status=status, reason=reason, error=error[:1000])
    return rs.StoredAnswer(outcome=outcome).SerializeToString()


# -- the quota --------------------------------------------------------------------------------


def _add_usage(company_id: str, delta: int) -> int:
    """Adds `delta` bytes to the company's usage; returns the new total. The upsert takes the
    usage row's lock until commit on PostgreSQL, so concurrent claims count one after another."""
    AnswerUsage.insert(company=company_id, bytes=delta).on_conflict(
        conflict_target=[AnswerUsage.company],
        update={AnswerUsage.bytes: AnswerUsage.bytes + delta},
    ).execute()
    return AnswerUsage.get(AnswerUsage.company == company_id).bytes


def _reserve(company_id: str, size: int) -> None:
    if _add_usage(company_id, size) > quotas.for_company(company_id).answer_bytes:
        raise _OverQuota


def usage(company_id: str) -> int:
    row = AnswerUsage.get_or_none(AnswerUsage.company == company_id)
    return row.bytes if row is not None else 0


# -- claiming a start -------------------------------------------------------------------------


def claim(
    write_run: Callable[[], None],
    *,
    company_id: str,
    callback_id: str,
    run_id: str,
    key: str,
    fingerprint: bytes,
    secret: str | None,
    key_answer: bytes | None,
    keep: bool,
    retention_s: float,
) -> Claim:
    """Claims `key` (if any) for a new run, keeps a row for its answer (if `keep`) and writes the
    run itself (`write_run`: its record and task rows), in one transaction."""

    def attempt() -> Claim:
        try:
            with write_transaction():
                return _claim(
                    write_run,
                    company_id,
                    callback_id,
                    run_id,
                    key,
                    fingerprint,
                    secret,
                    key_answer,
                    keep,
                    retention_s,
                )
        except _OverQuota:
            return Claim("quota")

    try:
        return attempt()
    except peewee.IntegrityError:
        if not key:
            raise
        # On PostgreSQL a concurrent start inserted the same key first (its insert made ours
        # wait, then fail): look again, and this time find its row.
        return attempt()


def _claim(
    write_run, company_id, callback_id, run_id, key, fingerprint, secret, key_answer, keep, ttl
) -> Claim:
    now = utcnow()
    if key:
        row = KeptAnswer.get_or_none(
            (KeptAnswer.callback_id == callback_id) & (KeptAnswer.idempotency_key == key)
        )
        if row is not None and row.expires_at > now:
            if bytes(row.request_fingerprint) != fingerprint:
                return Claim("mismatch", row.run_id)
            answer = bytes(row.key_answer) if row.key_answer is not None else None
            return Claim("replay", row.run_id, answer)
        if row is not None:  # expired, not yet pruned: the key is free again
            KeptAnswer.delete().where(KeptAnswer.run_id == row.run_id).execute()
            _add_usage(row.company_id, -row.bytes)
    if keep:
        size = RESERVE_BYTES + len(key.encode()) + len(key_answer or b"")
        _reserve(company_id, size)
        KeptAnswer.insert(
            run_id=run_id,
            company=company_id,
            callback_id=callback_id,
            idempotency_key=key or None,
            request_fingerprint=fingerprint,
            status_secret=secret,
            key_answer=key_answer,
            run_answer=None,
            bytes=size,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=ttl),
        ).execute()
    write_run()
    return Claim("new", run_id)


# -- filling answers --------------------------------------------------------------------------


def fill(answers: list[tuple[str, bytes]]) -> None:
    """Keeps each run's answer, inside the caller's transaction: as the key's answer where the
    key has none yet, and as the status URL's where the run has one and it has none yet. The
    rows are locked first: a `detach` of the same run may be writing them (PostgreSQL)."""
    ids = [run_id for run_id, _ in answers]
    query = KeptAnswer.select(
        KeptAnswer.run_id,
        KeptAnswer.company,
        KeptAnswer.key_answer.is_null().alias("no_key"),
        (KeptAnswer.status_secret.is_null(False) & KeptAnswer.run_answer.is_null()).alias("run"),
    ).where(KeptAnswer.run_id.in_(ids))
    found = {run_id: rest for run_id, *rest in lock_rows(query, "FOR UPDATE").tuples()}
    added: Counter[str] = Counter()
    for run_id, answer in answers:
        if run_id not in found:
            continue
        company_id, no_key, wants_run = found[run_id]
        _set_answers(run_id, answer if no_key else None, answer if wants_run else None)
        added[company_id] += len(answer) * (bool(no_key) + bool(wants_run))
    for company_id, size in added.items():
        if size:
            _add_usage(company_id, size)


def _set_answers(run_id: str, key_answer: bytes | None, run_answer: bytes | None) -> int:
    changes: dict = {}
    if key_answer is not None:
        changes[KeptAnswer.key_answer] = key_answer
    if run_answer is not None:
        changes[KeptAnswer.run_answer] = run_answer
    if not changes:
        return 0
    size = len(key_answer or b"") + len(run_answer or b"")
    changes[KeptAnswer.bytes] = KeptAnswer.bytes + size
    KeptAnswer.update(changes).where(KeptAnswer.run_id == run_id).execute()
    return size


def detach(
    *, run_id: str, company_id: str, callback_id: str, answer: bytes | None, retention_s: float
) -> str | None:
    """Keeps a running run's answer for a status URL (RunDetach); returns its status token, or
    None when a new row does not fit the answer_bytes quota. `answer` is the run's answer if it
    has one already (its commit may have come before this row existed)."""
    try:
        with write_transaction():
            query = KeptAnswer.select().where(KeptAnswer.run_id == run_id)
            row = lock_rows(query, "FOR UPDATE").get_or_none()
            now = utcnow()
            if row is None:
                _reserve(company_id, RESERVE_BYTES)
                row = KeptAnswer.create(
                    run_id=run_id,
                    company=company_id,
                    callback_id=callback_id,
                    idempotency_key=None,
                    request_fingerprint=b"",
                    status_secret=None,
                    key_answer=None,
                    run_answer=None,
                    bytes=RESERVE_BYTES,
                    created_at=now,
                    expires_at=now + dt.timedelta(seconds=retention_s),
                )
            secret = row.status_secret or new_secret()
            status_token = token(run_id, secret)
            if row.status_secret is None:
                KeptAnswer.update(status_secret=secret).where(KeptAnswer.run_id == run_id).execute()
            size = _set_answers(
                run_id,
                queued(status_token) if row.key_answer is None else None,
                answer if row.run_answer is None else None,
            )
            if size:
                _add_usage(company_id, size)
            return status_token
    except _OverQuota:
        return None


def kept(run_ids: list[str]) -> set[str]:
    """Which of these runs keep an answer (the queue's claim marks their records)."""
    if not run_ids:
        return set()
    query = KeptAnswer.select(KeptAnswer.run_id).where(KeptAnswer.run_id.in_(run_ids))
    return {run_id for (run_id,) in query.tuples()}


# -- reading ----------------------------------------------------------------------------------


def get_run_answer(p: Principal, company_slug: str, status_token: str) -> rs.GetRunAnswerResponse:
    """The answer kept for a status token. Every miss (a malformed token, another company's, a
    wrong secret, an expired one) is the same NOT_FOUND: a token is a capability, and nothing
    tells a guesser which part was wrong."""
    parsed = parse_token(status_token)
    row = None
    if parsed is not None:
        row = (
            KeptAnswer.select(KeptAnswer, Company.slug)
            .join(Company)
            .where(KeptAnswer.run_id == parsed[0])
            .get_or_none()
        )
    if (
        row is None
        or row.company.slug != company_slug
        or not p.can_see(row.company_id)
        or row.expires_at <= utcnow()
        or row.status_secret is None
        or not hmac.compare_digest(row.status_secret.encode(), parsed[1].encode())
    ):
        raise errors.not_found("run answer", "RUN_NOT_FOUND")
    response = rs.GetRunAnswerResponse(run_id=row.run_id)
    if row.run_answer is not None:
        response.answer.ParseFromString(bytes(row.run_answer))
    return response


# -- retention --------------------------------------------------------------------------------


def prune(now: dt.datetime, batch: int) -> int:
    """Deletes kept answers that expired before `now`, `batch` at a time, and takes their bytes
    off their companies' usage in the same transaction; returns how many."""
    total = 0
    while True:
        with write_transaction():
            rows = list(
                KeptAnswer.select(KeptAnswer.run_id, KeptAnswer.company, KeptAnswer.bytes)
                .where(KeptAnswer.expires_at < now)
                .limit(batch)
                .tuples()
            )
            if not rows:
                return total
            freed: Counter[str] = Counter()
            for _, company_id, size in rows:
                freed[company_id] += size
            KeptAnswer.delete().where(KeptAnswer.run_id.in_([r[0] for r in rows])).execute()
            for company_id, size in freed.items():
                AnswerUsage.update(bytes=AnswerUsage.bytes - size).where(
                    AnswerUsage.company == company_id
                ).execute()
            total += len(rows)
