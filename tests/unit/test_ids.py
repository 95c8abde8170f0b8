"""control_plane.domain.ids.new_id: ULIDs as python-ulid reads them, strictly increasing."""

from __future__ import annotations

import os
import threading
import time

from ulid import ULID

from control_plane.domain import ids
from control_plane.domain.validation import is_id


def test_new_id_is_a_lowercase_ulid_of_now():
    before = time.time()
    run_id = ids.new_id()
    after = time.time()
    assert is_id(run_id)
    assert run_id == run_id.lower() and len(run_id) == 26
    parsed = ULID.from_str(run_id.upper())
    assert str(parsed).lower() == run_id
    assert int(before * 1000) <= parsed.milliseconds <= int(after * 1000) + 1


def test_ids_strictly_increase_within_a_millisecond():
    made = [ids.new_id() for _ in range(20_000)]
    assert made == sorted(made)
    assert len(set(made)) == len(made)


def test_ids_increase_when_the_clock_steps_back(monkeypatch):
    first = ids.new_id()
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_000_000_000)  # 1970: far in the past
    second = ids.new_id()
    assert second > first
    assert ULID.from_str(second.upper()).milliseconds == ULID.from_str(first.upper()).milliseconds


def test_the_random_part_overflowing_moves_to_the_next_millisecond(monkeypatch):
    ms = time.time_ns() // 1_000_000 + 10_000
    monkeypatch.setattr(ids.time, "time_ns", lambda: ms * 1_000_000)
    monkeypatch.setattr(ids, "_last_ms", ms)
    monkeypatch.setattr(ids, "_last_random", (1 << 80) - 1)
    made = ULID.from_str(ids.new_id().upper())
    assert made.milliseconds == ms + 1


def test_ids_made_on_many_threads_are_distinct():
    made: list[str] = []

    def work() -> None:
        made.extend(ids.new_id() for _ in range(2_000))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(made)) == len(made) == 8_000


def test_a_forked_child_does_not_continue_the_parents_sequence():
    ids.new_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report where its sequence stands, then leave at once
        os.write(write, f"{ids._last_ms} {ids._last_random}".encode())
        os._exit(0)
    os.close(write)
    reported = os.read(read, 100).decode()
    os.close(read)
    os.waitpid(pid, 0)
    assert reported == "0 0"
