"""boomerang.heap: what start-up built is frozen, so full collections walk only what came after.
In a child interpreter: freezing is process-wide and would change the test process's GC."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc
from boomerang import heap
startup = [[i] for i in range(100_000)]  # lists: tracked by the collector, as start-up's are
frozen = heap.freeze_startup()
assert frozen >= 100_000, frozen
assert gc.get_freeze_count() == frozen
later = [[i] for i in range(10)]
tracked = gc.get_objects()
assert len(tracked) < 100_000, len(tracked)  # a full collection walks these, not start-up's
assert not any(o is startup for o in tracked)
print("ok")
"""


def test_start_up_objects_are_frozen_and_later_ones_are_not() -> None:
    out = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
