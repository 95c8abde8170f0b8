"""Keeps what start-up allocated out of the cyclic garbage collector's full collections.

A full (generation 2) collection walks every object the collector tracks, with the event loop
stopped. Once started, the control plane tracks ~70,000 objects and the edge ~50,000 (modules,
classes, grpc and protobuf descriptors, settings) that live as long as the process; walking them
took 45-85 ms of CPU per full collection, measured with `gc.collect(2)` under half the callback
path's load, and one such pause in a round was the path's p99 (docs/design.md §3, "Garbage").
`gc.freeze()` once start-up is done moves them to a permanent generation that collections skip:
a full collection then takes ~1 ms.

The cost: a start-up object that later joins a reference cycle and becomes garbage is never
reclaimed. Start-up objects live for the process, so this is the usual trade (CPython's docs
describe the same call for servers that fork after start-up).
"""

from __future__ import annotations

import gc


def freeze_startup() -> int:
    """Collects start-up's garbage, then freezes everything left; returns how many objects."""
    gc.collect()  # garbage is freed, not frozen
    gc.freeze()
    return gc.get_freeze_count()
