"""Console settings: one frozen object, read once from the environment (as edge/config.py)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

_N = TypeVar("_N", int, float)


@dataclass(frozen=True)
class ConsoleSettings:
    #: HTTP listen address. (CONSOLE_HOST, default 127.0.0.1)
    host: str = "127.0.0.1"
    #: HTTP listen port; 0 picks a free one. (CONSOLE_PORT, default 8090)
    port: int = 8090
    #: gRPC address of the control plane. (BOOMERANG_CONTROL_PLANE, default 127.0.0.1:50051)
    control_plane_target: str = "127.0.0.1:50051"
    #: A session ends after this many seconds without a request. (CONSOLE_SESSION_IDLE_S,
    #: default 1800)
    session_idle_s: float = 1800.0
    #: A session ends this many seconds after sign-in, however busy. (CONSOLE_SESSION_MAX_S,
    #: default 43200: 12 hours)
    session_max_s: float = 43200.0
    #: Most sessions held at once; signing in past it ends the least recently used one.
    #: (CONSOLE_MAX_SESSIONS, default 1000)
    max_sessions: int = 1000
    #: Mark cookies Secure even when the request came over plain HTTP (behind a TLS-terminating
    #: proxy that does not say so). Requests over TLS always get Secure cookies.
    #: (CONSOLE_SECURE_COOKIES=1)
    secure_cookies: bool = False
    #: Each control-plane call's deadline, in seconds. (CONSOLE_RPC_TIMEOUT_S, default 10)
    rpc_timeout_s: float = 10.0
    #: PEM CA certificates to trust for the control plane: with it (or a client certificate)
    #: the console connects over TLS. (BOOMERANG_TLS_CA)
    tls_ca: Path | None = None
    #: PEM client certificate chain and key, for control planes that require mutual TLS.
    #: (BOOMERANG_TLS_CLIENT_CERT, BOOMERANG_TLS_CLIENT_KEY)
    tls_client_cert: Path | None = None
    tls_client_key: Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_ca is not None or self.tls_client_cert is not None

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"CONSOLE_PORT must be 0-65535, not {self.port}")
        if not 60 <= self.session_idle_s <= 86400:
            raise ValueError(
                f"CONSOLE_SESSION_IDLE_S must be 60-86400 seconds, not {self.session_idle_s}"
            )
        if not self.session_idle_s <= self.session_max_s <= 7 * 86400:
            raise ValueError(
                "CONSOLE_SESSION_MAX_S must be at least CONSOLE_SESSION_IDLE_S and at most "
                f"7 days (604800), not {self.session_max_s}"
            )
        if not 1 <= self.max_sessions <= 1_000_000:
            raise ValueError(f"CONSOLE_MAX_SESSIONS must be 1-1000000, not {self.max_sessions}")
        if not 0 < self.rpc_timeout_s <= 300:
            raise ValueError(
                f"CONSOLE_RPC_TIMEOUT_S must be > 0 and at most 300, not {self.rpc_timeout_s}"
            )
        if (self.tls_client_cert is None) != (self.tls_client_key is None):
            raise ValueError(
                "BOOMERANG_TLS_CLIENT_CERT and BOOMERANG_TLS_CLIENT_KEY go together: set both"
            )
        for name in ("tls_ca", "tls_client_cert", "tls_client_key"):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise ValueError(f"BOOMERANG_{name.upper()}: no such file {str(path)!r}")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConsoleSettings:
        env = os.environ if env is None else env
        return cls(
            host=env.get("CONSOLE_HOST", "127.0.0.1"),
            port=_number(env, "CONSOLE_PORT", 8090, int),
            control_plane_target=env.get("BOOMERANG_CONTROL_PLANE", "127.0.0.1:50051"),
            session_idle_s=_number(env, "CONSOLE_SESSION_IDLE_S", 1800.0, float),
            session_max_s=_number(env, "CONSOLE_SESSION_MAX_S", 43200.0, float),
            max_sessions=_number(env, "CONSOLE_MAX_SESSIONS", 1000, int),
            secure_cookies=_flag(env, "CONSOLE_SECURE_COOKIES"),
            rpc_timeout_s=_number(env, "CONSOLE_RPC_TIMEOUT_S", 10.0, float),
            tls_ca=_path(env, "BOOMERANG_TLS_CA"),
            tls_client_cert=_path(env, "BOOMERANG_TLS_CLIENT_CERT"),
            tls_client_key=_path(env, "BOOMERANG_TLS_CLIENT_KEY"),
        )


def _number(env: Mapping[str, str], name: str, default: _N, kind: type[_N]) -> _N:
    raw = env.get(name, "")
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, not {raw!r}") from None


def _flag(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no"):
        return False
    if raw in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name} must be 1 or 0, not {raw!r}")


def _path(env: Mapping[str, str], name: str) -> Path | None:
    raw = env.get(name, "")
    return Path(raw) if raw else None
