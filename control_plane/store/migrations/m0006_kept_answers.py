"""Kept answers: the kept_answer table (Idempotency-Key repeats, async status URLs, webhook
mode) and answer_usage, the per-company counter of the answer_bytes quota (docs/answers.md)."""

from __future__ import annotations

import peewee


class _Base(peewee.Model):
    class Meta:
        legacy_table_names = False


class Company(_Base):  # only what the foreign keys need
    id = peewee.CharField(max_length=26, primary_key=True)


class KeptAnswer(_Base):
    run_id = peewee.CharField(max_length=26, primary_key=True)
    company = peewee.ForeignKeyField(Company, on_delete="CASCADE")
    callback_id = peewee.CharField(max_length=26)
    idempotency_key = peewee.CharField(max_length=255, null=True)
    request_fingerprint = peewee.BlobField()
    status_secret = peewee.CharField(max_length=64, null=True)
    key_answer = peewee.BlobField(null=True)
    run_answer = peewee.BlobField(null=True)
    bytes = peewee.IntegerField()
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("callback_id", "idempotency_key"), True), (("expires_at",), False))


class AnswerUsage(_Base):
    company = peewee.ForeignKeyField(Company, primary_key=True, on_delete="CASCADE")
    bytes = peewee.BigIntegerField()


def apply(db: peewee.Database) -> None:
    with db.bind_ctx([Company, KeptAnswer, AnswerUsage]):
        db.create_tables([KeptAnswer, AnswerUsage])
