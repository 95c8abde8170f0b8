"""Edge settings: one frozen object, read once from the environment."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

#: Name of the file in the state dir that keeps a generated edge id across restarts.
EDGE_ID_FILE = "edge_id"

_N = TypeVar("_N", int, float)

#: Largest EDGE_MAX_BODY_BYTES allowed. A request's start travels to the runner as one message
#: when it is larger than the usual 4 MiB batch; at 8 MiB (plus headers) it stays well inside the
#: runner's 16 MiB receive limit, past which the runner would end the stream all runs share.
MAX_BODY_BYTES_LIMIT = 8 << 20
#: Most EDGE_WORKERS: well above the cores of one machine, which is where throughput stops growing.
MAX_WORKERS = 64
#: Most EDGE_RUNFLOW_COALESCE_MS: more would be a delay, not a batching wait.
MAX_COALESCE_MS = 20.0


@dataclass(frozen=True)
class EdgeSettings:
    #: API key sent as `authorization: Bearer <key>` on both control-plane streams: an EDGE-scoped
    #: key (`boomerang keys create --scope edge`), which can sync and run flows and nothing
    #: else; an installation-wide FULL key works too. Required. (BOOMERANG_API_KEY)
    api_key: str
    #: Stable id this edge reports in SyncCallbacks (shown by ListEdges). (EDGE_ID, default: a
    #: random id generated on first start and kept in `<state_dir>/edge_id`)
    edge_id: str
    #: HTTP listen address. (EDGE_HOST, default 127.0.0.1)
    host: str = "127.0.0.1"
    #: HTTP listen port; 0 picks a free one. (EDGE_PORT, default 8080)
    port: int = 8080
    #: gRPC address of the control plane's CallbackSyncService.
    #: (BOOMERANG_CONTROL_PLANE, default 127.0.0.1:50051)
    control_plane_target: str = "127.0.0.1:50051"
    #: gRPC addresses of the RunnerServices (one stream each; new runs are spread over them).
    #: (BOOMERANG_RUNNER, comma-separated `host:port` list, default: control_plane_target)
    runner_targets: tuple[str, ...] = ("127.0.0.1:50051",)
    #: Directory for the last-known-good cache file and the generated edge id.
    #: (EDGE_STATE_DIR, default .boomerang/edge)
    state_dir: Path = Path(".boomerang/edge")
    #: Largest accepted request body, in bytes; larger ones get 413. At most 8 MiB.
    #: (EDGE_MAX_BODY_BYTES, default 1 MiB)
    max_body_bytes: int = 1024 * 1024
    #: 0: serve from the cache for as long as the control plane is down. > 0: fail closed (503
    #: `not_ready`) once the cache has not been confirmed by the control plane for this many
    #: seconds. (EDGE_STALENESS_LIMIT_S, default 0)
    staleness_limit_s: float = 0.0
    #: Longest time from the first byte of a request to the end of its head (request line and
    #: headers); past it the edge answers 408 `request_timeout` and closes the connection.
    #: (EDGE_HEADER_TIMEOUT_S, default 10)
    header_timeout_s: float = 10.0
    #: Longest time from the end of a request's head to the end of its body (408, then close).
    #: (EDGE_BODY_TIMEOUT_S, default 30)
    body_timeout_s: float = 30.0
    #: How long an idle keep-alive connection is kept open. Keep it above the idle timeout of a
    #: load balancer in front (60 s for most), so the edge never closes a connection the
    #: balancer is about to reuse. (EDGE_KEEP_ALIVE_TIMEOUT_S, default 75)
    keep_alive_timeout_s: float = 75.0
    #: Most connections open at once; past it a new connection gets 503
    #: `too_many_connections` and is closed. Each holds a file descriptor: keep it below the
    #: process's open-file limit (`ulimit -n`). (EDGE_MAX_CONNECTIONS, default 1000)
    max_connections: int = 1000
    #: PEM CA certificates to trust for the control plane and runners: with it (or a client
    #: certificate) the edge connects over TLS. (BOOMERANG_TLS_CA)
    tls_ca: Path | None = None
    #: PEM client certificate chain and key, for control planes that require mutual TLS.
    #: (BOOMERANG_TLS_CLIENT_CERT, BOOMERANG_TLS_CLIENT_KEY)
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None
    #: Processes serving the port: 1 serves in this process; N > 1 makes this process a
    #: supervisor of N edge processes (edge/workers.py) sharing the port with SO_REUSEPORT, each
    #: with its own streams to the control plane and runners, its own cache and its own
    #: connections (EDGE_MAX_CONNECTIONS is per process). Needs a fixed EDGE_PORT.
    #: (EDGE_WORKERS, default 1, at most MAX_WORKERS)
    workers: int = 1
    #: Bind the port with SO_REUSEPORT, so several edge processes share it (the kernel spreads
    #: new connections over them). EDGE_WORKERS sets it for its workers; set it yourself only to
    #: run several edges on one port under a supervisor of your own. (EDGE_REUSE_PORT, 0 or 1,
    #: default 0: a second edge on a taken port fails to start instead)
    reuse_port: bool = False
    #: Longest a run's start waits, while other runs are open on its runner stream, for more
    #: starts to share its gRPC message: fewer, larger messages cost both processes less CPU at a
    #: moderate rate, for up to this much latency. A lone request never waits, nor does a stream
    #: that batches well by itself under a heavier load (edge/runflow_client.py). 0 turns it
    #: off. (EDGE_RUNFLOW_COALESCE_MS, default 2, at most MAX_COALESCE_MS)
    runflow_coalesce_ms: float = 2.0

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None or self.tls_client_cert is not None

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("BOOMERANG_API_KEY is required (an EDGE-scoped API key)")
        if not self.edge_id:
            raise ValueError("EDGE_ID must not be empty")
        if not self.runner_targets or not all(self.runner_targets):
            listed = ",".join(self.runner_targets)
            raise ValueError(
                f"BOOMERANG_RUNNER must be a comma-separated list of host:port runner addresses "
                f"without empty entries, not {listed!r}"
            )
        if len(set(self.runner_targets)) != len(self.runner_targets):
            # Each runner gets at most one try per request; a duplicate would get two.
            raise ValueError(
                f"BOOMERANG_RUNNER lists an address twice: {','.join(self.runner_targets)!r}"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"EDGE_PORT must be 0-65535, not {self.port}")
        if self.max_body_bytes < 0:
            raise ValueError("EDGE_MAX_BODY_BYTES must be >= 0")
        if self.max_body_bytes > MAX_BODY_BYTES_LIMIT:
            raise ValueError(
                f"EDGE_MAX_BODY_BYTES must be at most {MAX_BODY_BYTES_LIMIT} (8 MiB), not "
                f"{self.max_body_bytes}: a larger body could pass the runner's message limit"
            )
        if self.staleness_limit_s < 0:
            raise ValueError("EDGE_STALENESS_LIMIT_S must be >= 0")
        for name, value in (
            ("EDGE_HEADER_TIMEOUT_S", self.header_timeout_s),
            ("EDGE_BODY_TIMEOUT_S", self.body_timeout_s),
            ("EDGE_KEEP_ALIVE_TIMEOUT_S", self.keep_alive_timeout_s),
        ):
            if not 0 < value <= 3600:
                raise ValueError(f"{name} must be > 0 and at most 3600 seconds, not {value}")
        if self.max_connections < 1:
            raise ValueError(f"EDGE_MAX_CONNECTIONS must be >= 1, not {self.max_connections}")
        if not 1 <= self.workers <= MAX_WORKERS:
            raise ValueError(f"EDGE_WORKERS must be 1-{MAX_WORKERS}, not {self.workers}")
        if not 0 <= self.runflow_coalesce_ms <= MAX_COALESCE_MS:
            raise ValueError(
                f"EDGE_RUNFLOW_COALESCE_MS must be 0-{MAX_COALESCE_MS:g}, "
                f"not {self.runflow_coalesce_ms:g}"
            )
        if self.workers > 1 and self.port == 0:
            raise ValueError("EDGE_WORKERS > 1 needs a fixed EDGE_PORT (the workers share it)")
        if (self.tls_client_cert is None) != (self.tls_client_key is None):
            raise ValueError(
                "BOOMERANG_TLS_CLIENT_CERT and BOOMERANG_TLS_CLIENT_KEY go together: set both"
            )
        for name in ("tls_ca", "tls_client_cert", "tls_client_key"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"BOOMERANG_{name.upper()}: no such file {str(path)!r}")

    @property
    def lkg_path(self) -> Path:
        """Where the last-known-good copy of the cache lives."""
        return self.state_dir / "lkg.binpb"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> EdgeSettings:
        """Read the settings; may create the state dir to keep a generated edge id."""
        env = os.environ if env is None else env
        api_key = env.get("BOOMERANG_API_KEY", "")
        if not api_key:
            raise ValueError("BOOMERANG_API_KEY is required (an EDGE-scoped API key)")
        state_dir = Path(env.get("EDGE_STATE_DIR", ".boomerang/edge"))
        control_plane = env.get("BOOMERANG_CONTROL_PLANE", "127.0.0.1:50051")
        return cls(
            api_key=api_key,
            edge_id=env.get("EDGE_ID") or stored_edge_id(state_dir),
            host=env.get("EDGE_HOST", "127.0.0.1"),
            port=_number(env, "EDGE_PORT", 8080, int),
            control_plane_target=control_plane,
            runner_targets=_addresses(env.get("BOOMERANG_RUNNER") or control_plane),
            state_dir=state_dir,
            max_body_bytes=_number(env, "EDGE_MAX_BODY_BYTES", 1024 * 1024, int),
            staleness_limit_s=_number(env, "EDGE_STALENESS_LIMIT_S", 0.0, float),
            header_timeout_s=_number(env, "EDGE_HEADER_TIMEOUT_S", 10.0, float),
            body_timeout_s=_number(env, "EDGE_BODY_TIMEOUT_S", 30.0, float),
            keep_alive_timeout_s=_number(env, "EDGE_KEEP_ALIVE_TIMEOUT_S", 75.0, float),
            max_connections=_number(env, "EDGE_MAX_CONNECTIONS", 1000, int),
            tls_ca=_path(env, "BOOMERANG_TLS_CA"),
            tls_client_cert=_path(env, "BOOMERANG_TLS_CLIENT_CERT"),
            tls_client_key=_path(env, "BOOMERANG_TLS_CLIENT_KEY"),
            workers=_number(env, "EDGE_WORKERS", 1, int),
            reuse_port=_flag(env, "EDGE_REUSE_PORT"),
            runflow_coalesce_ms=_number(env, "EDGE_RUNFLOW_COALESCE_MS", 2.0, float),
        )


def stored_edge_id(state_dir: Path) -> str:
    """The edge id kept in the state dir, generated (and written) on first use."""
    path = state_dir / EDGE_ID_FILE
    try:
        existing = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        existing = ""
    if existing:
        return existing
    edge_id = f"edge-{secrets.token_hex(8)}"
    private_state_dir(state_dir)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(edge_id + "\n")
    os.replace(tmp, path)
    return edge_id


def private_state_dir(state_dir: Path) -> None:
    """The state dir holds what the edge knows (signature digests, routes): 0700 when the edge
    creates it. An existing directory is left as the operator made it."""
    # Not os.makedirs: it gives the mode to the last directory only, the parents get the umask's.
    missing = []
    while not state_dir.exists():
        missing.append(state_dir)
        state_dir = state_dir.parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o700)
        except FileExistsError:
            pass


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "")
    return Path(raw) if raw else None


def _addresses(raw: str) -> tuple[str, ...]:
    return tuple(address.strip() for address in raw.split(","))


def _number(env: Mapping[str, str], name: str, default: _N, kind: type[_N]) -> _N:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "")
    if raw not in ("", "0", "1"):
        raise ValueError(f"{name} must be 0 or 1, not {raw!r}")
    return raw == "1"
