"""Control-plane settings: one frozen object, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    #: Where the database lives. `sqlite:///path` (default: a file under .boomerang/) or
    #: `postgres://user@host:port/db`. (DATABASE_URL)
    database_url: str = "sqlite:///.boomerang/boomerang.db"
    #: gRPC listen address. (BOOMERANG_LISTEN, default 127.0.0.1:50051)
    listen: str = "127.0.0.1:50051"
    #: Which services this process serves: "all" (default), "control" (API + sync, no runner)
    #: or "runner" (RunFlow only). (BOOMERANG_ROLE)
    role: str = "all"
    #: Base of callback URLs handed out by GetCallbackUrl, without a trailing slash; the edge's
    #: public address. (BOOMERANG_PUBLIC_BASE_URL, default http://127.0.0.1:8080)
    public_base_url: str = "http://127.0.0.1:8080"
    #: Installation-wide key to create at start if it does not exist yet (so automation can know
    #: the key in advance). Empty: on first start a key is generated and printed once.
    #: (BOOMERANG_ADMIN_KEY)
    admin_key: str = ""
    #: Threads that run blocking database calls off the event loop. (BOOMERANG_DB_THREADS)
    db_threads: int = 4
    #: How often, in seconds, the change feed polls the database for revisions written by other
    #: replicas (changes made by this process are seen at once). (BOOMERANG_FEED_POLL_S)
    feed_poll_s: float = 0.2
    #: Changes older than this many seconds are pruned from the change log; an edge that was
    #: away longer resyncs from a snapshot. (BOOMERANG_CHANGE_RETENTION_S, default 7 days)
    change_retention_s: float = 7 * 24 * 3600.0
    #: A run stopped after this many seconds is recorded as timed out. (BOOMERANG_MAX_RUN_S)
    max_run_s: float = 300.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        d = cls()
        return cls(
            database_url=env.get("DATABASE_URL", d.database_url),
            listen=env.get("BOOMERANG_LISTEN", d.listen),
            role=env.get("BOOMERANG_ROLE", d.role),
            public_base_url=env.get("BOOMERANG_PUBLIC_BASE_URL", d.public_base_url).rstrip("/"),
            admin_key=env.get("BOOMERANG_ADMIN_KEY", d.admin_key),
            db_threads=int(env.get("BOOMERANG_DB_THREADS", d.db_threads)),
            feed_poll_s=float(env.get("BOOMERANG_FEED_POLL_S", d.feed_poll_s)),
            max_run_s=float(env.get("BOOMERANG_MAX_RUN_S", d.max_run_s)),
            change_retention_s=float(env.get("BOOMERANG_CHANGE_RETENTION_S", d.change_retention_s)),
        )

    def __post_init__(self) -> None:
        if self.role not in ("all", "control", "runner"):
            raise ValueError(f"BOOMERANG_ROLE must be all, control or runner, not {self.role!r}")
