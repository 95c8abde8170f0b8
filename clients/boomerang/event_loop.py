"""Which asyncio event loop the services (`python -m edge`, `python -m control_plane serve`) run
on: uvloop by default. One module for both, here because both already depend on this package.

uvloop (libuv) runs the same coroutines with less CPU per callback, socket read and write than
asyncio's own loop: most of the edge's cost per request besides Sanic's parsing, and the
runner's loop is where every run's work is done (docs/design.md §3). grpc.aio works on it: it
needs only `add_reader` on its poller's socket, which uvloop implements (the edge, runner and
end-to-end tests run on it). Sanic itself picks uvloop when it is installed; the edge serves
through Sanic's `create_server` (edge.server), so the choice is made here.
BOOMERANG_EVENT_LOOP=asyncio selects the stock loop (a fallback, should a library misbehave on
uvloop); any other value than the two is refused.
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
