"""Revisions stay gap-free and in commit order under concurrent writers, on every backend.

Edges resume from "the last revision I applied" (docs/design.md §3), which is only sound if a
revision becoming visible implies every lower one is visible too: a sequence would hand out numbers
in call order but commit them in any order, and a reader would skip the late one forever. Writers
here are real threads, each with its own connection (peewee connections are per thread), going
through the domain functions; a reader polls meanwhile, as the change feed does.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

from control_plane.domain import callbacks, companies, flows
from control_plane.domain.callbacks import Settings
from control_plane.domain.tenancy import Principal
from control_plane.store import changes
from control_plane.store.db import database
from control_plane.store.models import Change
from tests.api.helpers import CALLBACK_FLOW

ADMIN = Principal(key_id="k", company_id=None)
THREADS = 8
WRITES = 25  # per thread


def _visible_revisions_after(revision: int) -> list[int]:
    return [
        c.revision
        for c in Change.select(Change.revision)
        .where(Change.revision > revision)
        .order_by(Change.revision)
    ]


def test_concurrent_writers_get_gap_free_revisions_in_commit_order(db):
    companies.create_company(ADMIN, "Acme", "acme")
    flow = flows.create_flow(ADMIN, "acme", "f", CALLBACK_FLOW)[0].id
    # Odd threads regenerate their own callback's signature; even threads create callbacks.
    own = {i: callbacks.create_callback(ADMIN, flow, Settings()).id for i in range(1, THREADS, 2)}
    start = changes.head().revision
    assert _visible_revisions_after(0) == list(range(1, start + 1))

    go = threading.Barrier(THREADS + 1)
    writers_done = threading.Event()
    failures: list[BaseException] = []
    created: list[str] = []
    gaps: list[str] = []
    observed_heads: set[int] = set()

    def writer(i: int) -> None:
        database.connect(reuse_if_open=True)
        try:
            go.wait()
            for _ in range(WRITES):
                if i in own:
                    callbacks.regenerate_signature(ADMIN, own[i])
                else:
                    created.append(callbacks.create_callback(ADMIN, flow, Settings()).id)
        except BaseException as e:  # reported by the main thread
            failures.append(e)
        finally:
            database.close()

    def reader() -> None:
        """Polls like an edge resuming: whatever is visible must be contiguous from `seen`."""
        database.connect(reuse_if_open=True)
        seen = start
        try:
            go.wait()
            while True:
                last_round = writers_done.is_set()
                # The feed's way: the head first, then everything up to it.
                head = changes.head().revision
                listed = [c.revision for c in changes.changes_since(seen, head)]
                if listed != list(range(seen + 1, head + 1)):
                    gaps.append(f"head {head} after {seen}: changes_since gave {listed}")
                # And directly: nothing visible beyond a revision that is not.
                visible = _visible_revisions_after(seen)
                if visible != list(range(seen + 1, seen + 1 + len(visible))):
                    gaps.append(f"after {seen}: visible {visible}")
                if visible:
                    seen = visible[-1]
                observed_heads.add(head)
                if last_round:
                    break
                # A feed polls; a loop that never sleeps held the GIL from the writer that held
                # SQLite's write lock, so the others waited out their 10 s busy timeout ("database
                # is locked"; every run failed on a 2-core machine, in 14-27 s).
                time.sleep(0.001)
        except BaseException as e:
            failures.append(e)
        finally:
            database.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(THREADS)]
    polling = threading.Thread(target=reader)
    for t in [*threads, polling]:
        t.start()
    for t in threads:
        t.join(timeout=120)
    writers_done.set()
    polling.join(timeout=120)

    assert failures == []
    assert not gaps, gaps[:5]
    total = start + THREADS * WRITES
    assert changes.head().revision == total
    assert _visible_revisions_after(0) == list(range(1, total + 1))
    # Each write is one change of the callback it touched.
    written = Counter(c.entity_id for c in Change.select().where(Change.revision > start))
    assert written == Counter({**{cb: WRITES for cb in own.values()}, **dict.fromkeys(created, 1)})
    assert len(created) == (THREADS - len(own)) * WRITES
    # The reader really ran alongside the writers, not only before or after them.
    assert len(observed_heads - {start, total}) >= 2, observed_heads
