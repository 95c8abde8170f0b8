"""Timestamps as stored: naive UTC.

SQLite has no time-zone type and peewee reads back only naive formats, so every stored time is
UTC without tzinfo, on both backends; conversion to API timestamps adds UTC back.
"""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def epoch_seconds(stored: dt.datetime) -> float:
    """A stored (naive UTC) time as seconds since the epoch. Not `stored.timestamp()`: that
    takes a naive time for local time, and is off by the local UTC offset wherever the
    process's time zone is not UTC."""
    return stored.replace(tzinfo=dt.UTC).timestamp()
