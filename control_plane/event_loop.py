"""Which asyncio event loop `python -m control_plane serve` runs on: uvloop by default.

uvloop (libuv) runs the same coroutines with less CPU per callback, socket read and write than
asyncio's own loop; the runner's event loop is where every run's work is done (docs/design.md §3).
grpc.aio works on it: it needs only `add_reader` on its poller's socket, which uvloop implements
(the runner and end-to-end tests run on it). BOOMERANG_EVENT_LOOP=asyncio selects the stock loop
(a fallback, should a library misbehave on uvloop); any other value than the two is refused.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ENV = "BOOMERANG_EVENT_LOOP"
LOOPS = ("uvloop", "asyncio")


def chosen(env: dict[str, str] | os._Environ[str] = os.environ) -> str:
    """The loop BOOMERANG_EVENT_LOOP names (default uvloop); ValueError for another value."""
    name = env.get(ENV, "uvloop") or "uvloop"
    if name not in LOOPS:
        raise ValueError(f"{ENV} must be one of {', '.join(LOOPS)}, not {name!r}")
    return name


def runner(
    env: dict[str, str] | os._Environ[str] = os.environ,
) -> Callable[[Coroutine[Any, Any, T]], T]:
    """`asyncio.run` or `uvloop.run`, as BOOMERANG_EVENT_LOOP says."""
    if chosen(env) == "uvloop":
        import uvloop

        return uvloop.run
    return asyncio.run
