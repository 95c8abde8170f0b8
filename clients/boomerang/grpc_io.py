"""Which of gRPC core's two I/O paths the services use: iomgr's (epoll1), not EventEngine's.

Import this module before anything imports grpc: gRPC core reads GRPC_EXPERIMENTS once, when
grpc is imported, and a value set later changes nothing (checked by tests/unit/test_grpc_io.py).

Why. grpcio 1.80 moved Python onto EventEngine for client connections, listeners and other
endpoints (experiments that grpc keeps switchable for a few releases, grpc/grpc#42150). Traced
on one connection, a RunFlow message took ~350 µs from one loop's write to the other loop's read
there, ~245 µs on iomgr's path, which Python used before; turning the three experiments off lowered
the callback path's CPU per request and, on a quiet machine, its one-connection latency (figures:
docs/design.md §3, "Cost per request").

`python -m edge` and `python -m control_plane` import this first. An operator's own
GRPC_EXPERIMENTS wins, whatever it says: `GRPC_EXPERIMENTS=` (empty) gives grpc's defaults.
"""

from __future__ import annotations

import os
import sys

ENV = "GRPC_EXPERIMENTS"
#: The experiments turned off: EventEngine for client connections, listeners and the rest.
IOMGR = "-event_engine_client,-event_engine_listener,-event_engine_for_all_other_endpoints"


def choose(env: dict[str, str] | os._Environ[str] = os.environ) -> None:
    """Sets GRPC_EXPERIMENTS to IOMGR unless it is set; RuntimeError once grpc is imported
    (too late to have an effect, and a silent no-op would hide it)."""
    if ENV in env:
        return
    if "grpc" in sys.modules:
        raise RuntimeError("boomerang.grpc_io must be imported before grpc")
    env[ENV] = IOMGR


choose()
