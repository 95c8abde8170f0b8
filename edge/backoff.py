"""Reconnect delays: exponential backoff with full jitter.

Full jitter (a uniform draw between 0 and the exponential bound) spreads the reconnects of many
edges after a control-plane restart instead of synchronising them ("Exponential Backoff And
Jitter", AWS Architecture Blog).

The cap is low (1 s) so that a peer back after a long outage is in use within 2 s (with the gRPC
channel's own reconnect backoff, edge.app.CHANNEL_OPTIONS). It costs little: while the peer is
down, the channel fails new calls locally, so a retry reaches the network only once the channel
is connected again.
"""

from __future__ import annotations

import random
from collections.abc import Callable

#: Longest wait between two attempts (see the module docstring).
RECONNECT_CAP_S = 1.0


class Backoff:
    __slots__ = ("_attempt", "_rand", "base_s", "cap_s")

    def __init__(
        self,
        base_s: float = 0.1,
        cap_s: float = RECONNECT_CAP_S,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.base_s = base_s
        self.cap_s = cap_s
        self._rand = rand
        self._attempt = 0

    def next_delay(self) -> float:
        bound = min(self.cap_s, self.base_s * 2 ** min(self._attempt, 30))
        self._attempt += 1
        return bound * self._rand()

    def reset(self) -> None:
        self._attempt = 0
