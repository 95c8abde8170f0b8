"""Control-plane settings: one frozen object, read once from the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields

from control_plane.domain import quotas
from control_plane.engine.budgets import Budgets
from control_plane.outbound.settings import OutboundSettings

#: The callback body budget may not exceed this: RunFlow messages are limited to 16 MiB on the
#: edge's side and several runs share a message.
MAX_CALLBACK_BYTES = 8 << 20


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
    #: API calls of one company (made with its keys) that run on those threads at once; more
    #: wait in line, up to company_api_waiting, past which they fail RESOURCE_EXHAUSTED
    #: (TOO_MANY_CALLS), so one tenant cannot take every thread (docs/quotas.md).
    #: (BOOMERANG_COMPANY_API_CALLS, default 2; BOOMERANG_COMPANY_API_WAITING, default 64)
    company_api_calls: int = 2
    company_api_waiting: int = 64
    #: How often, in seconds, the change feed polls the database for revisions written by other
    #: replicas (changes made by this process are seen at once). (BOOMERANG_FEED_POLL_S)
    feed_poll_s: float = 0.2
    #: Changes older than this many seconds are pruned from the change log; an edge that was
    #: away longer resyncs from a snapshot. (BOOMERANG_CHANGE_RETENTION_S, default 7 days)
    change_retention_s: float = 7 * 24 * 3600.0
    #: A run stopped after this many seconds is recorded as timed out. (BOOMERANG_MAX_RUN_S)
    max_run_s: float = 300.0
    #: A runner's claim on a run it works on lasts this long and is renewed every third of it;
    #: a run whose runner died is taken up by another once its lease expires.
    #: (BOOMERANG_RUN_LEASE_S, default 10)
    run_lease_s: float = 10.0
    #: A run taken up this many times (its runner died each time) is failed as a poison run
    #: (RUN_REASON_CRASHED) instead of being tried again. (BOOMERANG_RUN_MAX_ATTEMPTS, default 3)
    run_max_attempts: int = 3
    #: On SIGTERM, how long a runner lets runs that are before their callback finish before it
    #: checkpoints what is left and exits. (BOOMERANG_DRAIN_GRACE_S, default 5)
    drain_grace_s: float = 5.0
    #: Quotas' configured defaults (docs/quotas.md): BOOMERANG_QUOTA_<NAME>, e.g.
    #: BOOMERANG_QUOTA_FLOWS. SetQuotas overrides them per installation and per company. The
    #: runs_in_flight quota is the number of a company's runs whose caller waits, on one runner,
    #: past which new runs are answered 429 (also read from BOOMERANG_COMPANY_RUNS_IN_FLIGHT).
    quotas: quotas.Quotas = field(default_factory=quotas.Quotas)
    #: Runs of one company past their callback (tails), on one runner; past it, new runs are
    #: answered 429 too, so a tenant cannot grow a backlog of tails without end.
    #: (BOOMERANG_COMPANY_TAILS_IN_FLIGHT, default 200)
    company_tails_in_flight: int = 200
    #: Worker processes per lane (callers waiting; tails, at a lower priority) that run shapes
    #: too heavy for the event loop's inline slice. (BOOMERANG_ENGINE_WORKERS, default 1)
    engine_workers: int = 1
    #: Address-space limit of each engine worker, in MiB. (BOOMERANG_ENGINE_WORKER_MEMORY_MB)
    engine_worker_memory_mb: int = 1024
    #: Ended runs are deleted after this many seconds. (BOOMERANG_RUN_RETENTION_S, 30 days)
    run_retention_s: float = 30 * 24 * 3600.0
    #: Kept answers (Idempotency-Key repeats, async status URLs) are kept this many seconds
    #: after their run claimed them; then the key is free again and the status URL answers 404.
    #: (BOOMERANG_ANSWER_RETENTION_S, default 1 day)
    answer_retention_s: float = 24 * 3600.0
    #: Per-run budgets (control_plane/engine/budgets.py documents each):
    #: BOOMERANG_BUDGET_EXPRESSION_STEPS, _RUN_STEPS, _VALUE_BYTES, _BUCKET_BYTES,
    #: _VARIABLES_BYTES, _CALLBACK_BYTES (at most 8 MiB: below the run stream's message limit),
    #: _SHAPE_LOG.
    budgets: Budgets = field(default_factory=Budgets)
    #: Connector shapes' calls (control_plane/outbound/settings.py documents each):
    #: BOOMERANG_EGRESS_ALLOW, BOOMERANG_OUTBOUND_MAX_RESPONSE_BYTES,
    #: BOOMERANG_OUTBOUND_MAX_CONNECTIONS, BOOMERANG_OUTBOUND_CA_FILE. Runner settings.
    outbound: OutboundSettings = field(default_factory=OutboundSettings)
    # Security (docs/security.md).
    #: Key that seals callback signatures and connection secrets at rest: base64 of 32 bytes
    #: (`openssl rand -base64 32`). Empty: a key file made once in the state dir. Replicas
    #: sharing a database, runners included, must all have the same key. (BOOMERANG_SECRET_KEY)
    secret_key: str = field(default="", repr=False)  # never in a log line
    #: Keys sealed with before a rotation, comma-separated, still accepted for opening until
    #: `python -m control_plane rotate-secret-key` has re-sealed everything.
    #: (BOOMERANG_SECRET_KEY_PREVIOUS)
    secret_key_previous: str = field(default="", repr=False)
    #: Directory for the generated key file. Default: the SQLite database's directory, or
    #: `.boomerang` with PostgreSQL. (BOOMERANG_STATE_DIR)
    state_dir: str = ""
    #: PEM certificate chain and private key: every gRPC listener serves TLS when both are set.
    #: (BOOMERANG_TLS_CERT, BOOMERANG_TLS_KEY)
    tls_cert: str = ""
    tls_key: str = ""
    #: PEM CA certificates that sign client certificates: with it, clients must present one
    #: (mutual TLS). Needs BOOMERANG_TLS_CERT. (BOOMERANG_TLS_CLIENT_CA)
    tls_client_ca: str = ""

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
            company_api_calls=int(env.get("BOOMERANG_COMPANY_API_CALLS", d.company_api_calls)),
            company_api_waiting=int(
                env.get("BOOMERANG_COMPANY_API_WAITING", d.company_api_waiting)
            ),
            feed_poll_s=float(env.get("BOOMERANG_FEED_POLL_S", d.feed_poll_s)),
            max_run_s=float(env.get("BOOMERANG_MAX_RUN_S", d.max_run_s)),
            change_retention_s=float(env.get("BOOMERANG_CHANGE_RETENTION_S", d.change_retention_s)),
            run_lease_s=float(env.get("BOOMERANG_RUN_LEASE_S", d.run_lease_s)),
            run_max_attempts=int(env.get("BOOMERANG_RUN_MAX_ATTEMPTS", d.run_max_attempts)),
            drain_grace_s=float(env.get("BOOMERANG_DRAIN_GRACE_S", d.drain_grace_s)),
            quotas=quotas.from_env(env),
            company_tails_in_flight=int(
                env.get("BOOMERANG_COMPANY_TAILS_IN_FLIGHT", d.company_tails_in_flight)
            ),
            engine_workers=int(env.get("BOOMERANG_ENGINE_WORKERS", d.engine_workers)),
            engine_worker_memory_mb=int(
                env.get("BOOMERANG_ENGINE_WORKER_MEMORY_MB", d.engine_worker_memory_mb)
            ),
            run_retention_s=float(env.get("BOOMERANG_RUN_RETENTION_S", d.run_retention_s)),
            answer_retention_s=float(env.get("BOOMERANG_ANSWER_RETENTION_S", d.answer_retention_s)),
            budgets=_budgets(env),
            outbound=OutboundSettings.from_env(env),
            secret_key=env.get("BOOMERANG_SECRET_KEY", d.secret_key),
            secret_key_previous=env.get("BOOMERANG_SECRET_KEY_PREVIOUS", d.secret_key_previous),
            state_dir=env.get("BOOMERANG_STATE_DIR", d.state_dir),
            tls_cert=env.get("BOOMERANG_TLS_CERT", d.tls_cert),
            tls_key=env.get("BOOMERANG_TLS_KEY", d.tls_key),
            tls_client_ca=env.get("BOOMERANG_TLS_CLIENT_CA", d.tls_client_ca),
        )

    def __post_init__(self) -> None:
        if self.role not in ("all", "control", "runner"):
            raise ValueError(f"BOOMERANG_ROLE must be all, control or runner, not {self.role!r}")
        if self.budgets.callback_bytes > MAX_CALLBACK_BYTES:
            raise ValueError(
                f"BOOMERANG_BUDGET_CALLBACK_BYTES must be at most {MAX_CALLBACK_BYTES}"
            )
        for name in ("run_lease_s", "drain_grace_s", "run_retention_s", "answer_retention_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"BOOMERANG_{name.upper()} must be > 0")
        if self.engine_worker_memory_mb < 256:
            raise ValueError("BOOMERANG_ENGINE_WORKER_MEMORY_MB must be at least 256")
        for name in (
            "run_max_attempts",
            "company_tails_in_flight",
            "engine_workers",
            "db_threads",
            "company_api_calls",
            "company_api_waiting",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"BOOMERANG_{name.upper()} must be >= 1")
        self._check_tls()

    def _check_tls(self) -> None:
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("BOOMERANG_TLS_CERT and BOOMERANG_TLS_KEY go together: set both")
        if self.tls_client_ca and not self.tls_cert:
            raise ValueError("BOOMERANG_TLS_CLIENT_CA needs BOOMERANG_TLS_CERT and _KEY")
        for name in ("tls_cert", "tls_key", "tls_client_ca"):
            path = getattr(self, name)
            if path and not os.path.isfile(path):
                raise ValueError(f"BOOMERANG_{name.upper()}: no such file {path!r}")


def _budgets(env) -> Budgets:
    """BOOMERANG_BUDGET_<FIELD> for each field of Budgets, else its default."""
    values = {}
    for f in fields(Budgets):
        raw = env.get(f"BOOMERANG_BUDGET_{f.name.upper()}")
        if raw:
            values[f.name] = int(raw)
    return Budgets(**values)
