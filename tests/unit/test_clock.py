"""Stored times are naive UTC: turning one back into epoch seconds must not depend on the
process's time zone (a run's deadline, a child run's id are computed from them)."""

from __future__ import annotations

import time

import pytest

from control_plane.store.clock import epoch_seconds, utcnow


@pytest.fixture(params=["UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
def zone(request, monkeypatch):
    monkeypatch.setenv("TZ", request.param)
    time.tzset()
    yield request.param
    monkeypatch.undo()
    time.tzset()


def test_epoch_seconds_of_now_is_now_in_every_zone(zone):
    before = time.time()
    stored = utcnow()
    after = time.time()
    assert before - 0.001 <= epoch_seconds(stored) <= after + 0.001
