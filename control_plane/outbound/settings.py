"""The runner's settings for outbound calls, read from the environment by control_plane.config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from control_plane.outbound.egress import IPNetwork, parse_allow


@dataclass(frozen=True, slots=True)
class OutboundSettings:
    #: Ranges opened beyond the default egress rule (egress.py): comma-separated CIDRs.
    #: (BOOMERANG_EGRESS_ALLOW, default none)
    egress_allow: tuple[IPNetwork, ...] = ()
    #: A response body larger than this, in bytes, fails the call, compressed or decoded.
    #: (BOOMERANG_OUTBOUND_MAX_RESPONSE_BYTES, default 4 MiB)
    max_response_bytes: int = 4 << 20
    #: Calls in flight at once on a runner, to all upstreams together (each holds a connection);
    #: more wait their turn. The pool's work per request grows with its connections (one walk
    #: over them, transport.LinearPool), no longer with their square as httpcore's own did.
    #: (BOOMERANG_OUTBOUND_MAX_CONNECTIONS, default 32)
    max_connections: int = 32
    #: Of those, calls of one company at once; more wait their turn, holding none of the pool's,
    #: so one company's slow upstream cannot take every slot (company_slots.py).
    #: (BOOMERANG_OUTBOUND_COMPANY_CALLS, default 16: half the default pool, which cost a lone
    #: company nothing in bench/connector_path.py, where 8 cost it 15% of its req/s)
    company_calls: int = 16
    #: PEM file of the CAs that sign upstreams' certificates, instead of the usual public ones
    #: (certifi): for an operator whose connectors call internal HTTPS APIs. Empty: the public
    #: ones. (BOOMERANG_OUTBOUND_CA_FILE)
    ca_file: str = ""

    def __post_init__(self) -> None:
        if self.max_response_bytes < 1:
            raise ValueError("BOOMERANG_OUTBOUND_MAX_RESPONSE_BYTES must be >= 1")
        if self.max_connections < 1:
            raise ValueError("BOOMERANG_OUTBOUND_MAX_CONNECTIONS must be >= 1")
        if self.company_calls < 1:
            raise ValueError("BOOMERANG_OUTBOUND_COMPANY_CALLS must be >= 1")
        if self.ca_file and not os.path.isfile(self.ca_file):
            raise ValueError(f"BOOMERANG_OUTBOUND_CA_FILE: no such file {self.ca_file!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> OutboundSettings:
        d = cls()
        return cls(
            egress_allow=parse_allow(env.get("BOOMERANG_EGRESS_ALLOW", "")),
            max_response_bytes=int(
                env.get("BOOMERANG_OUTBOUND_MAX_RESPONSE_BYTES", d.max_response_bytes)
            ),
            max_connections=int(env.get("BOOMERANG_OUTBOUND_MAX_CONNECTIONS", d.max_connections)),
            company_calls=int(env.get("BOOMERANG_OUTBOUND_COMPANY_CALLS", d.company_calls)),
            ca_file=env.get("BOOMERANG_OUTBOUND_CA_FILE", d.ca_file),
        )
