"""The kept_answer table as migration 0006 makes it, on every backend: its columns are the
model's, a key is unique per callback while keyless rows never collide, and deleting a company
deletes its kept answers and usage (foreign keys, cascade)."""

from __future__ import annotations

import peewee
import pytest

from control_plane.domain.ids import new_id
from control_plane.store.clock import utcnow
from control_plane.store.db import database
from control_plane.store.models import AnswerUsage, Company, KeptAnswer


def _company() -> str:
    return Company.create(id=new_id(), slug=f"c{new_id()[-8:]}", name="c", created_at=utcnow()).id


def _row(company_id: str, key: str | None, callback_id: str = "c" * 26) -> None:
    KeptAnswer.create(
        run_id=new_id(),
        company=company_id,
        callback_id=callback_id,
        idempotency_key=key,
        request_fingerprint=b"f",
        bytes=1024,
        created_at=utcnow(),
        expires_at=utcnow(),
    )


def test_the_migrated_table_has_the_models_columns(db) -> None:
    for model in (KeptAnswer, AnswerUsage):
        columns = {c.name for c in database.get_columns(model._meta.table_name)}
        assert columns == {f.column_name for f in model._meta.sorted_fields}


def test_a_key_is_unique_per_callback_and_keyless_rows_never_collide(db) -> None:
    company_id = _company()
    _row(company_id, None)
    _row(company_id, None)
    _row(company_id, "k")
    _row(company_id, "k", callback_id="d" * 26)  # another callback's key
    with pytest.raises(peewee.IntegrityError), database.atomic():
        _row(company_id, "k")
    assert KeptAnswer.select().count() == 4


def test_deleting_a_company_deletes_its_answers_and_usage(db) -> None:
    gone, kept = _company(), _company()
    for company_id in (gone, kept):
        _row(company_id, "k" + company_id)
        AnswerUsage.create(company=company_id, bytes=1024)
    Company.delete().where(Company.id == gone).execute()  # the database's cascade alone
    assert [row.company_id for row in KeptAnswer.select()] == [kept]
    assert [row.company_id for row in AnswerUsage.select()] == [kept]
