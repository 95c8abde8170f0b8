"""Tables. Ids are lowercase ULIDs (text) so they sort by creation and never repeat.

Version state (draft / deployed / inactive) is not stored: a version is the draft when its number
is the flow's `draft_number`, deployed when a deployment points at it, inactive otherwise.
"""

from __future__ import annotations

import peewee

from control_plane import secrets
from control_plane.domain.ids import digest
from control_plane.store.db import database


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


class Company(BaseModel):
    id = peewee.CharField(max_length=26, primary_key=True)
    slug = peewee.CharField(max_length=63, unique=True)
    name = peewee.CharField(max_length=200)
    created_at = peewee.DateTimeField()


class Environment(BaseModel):
    id = peewee.CharField(max_length=26, primary_key=True)
    company = peewee.ForeignKeyField(Company, on_delete="CASCADE", backref="environments")
    name = peewee.CharField(max_length=200)
    url_prefix = peewee.CharField(max_length=63)
    created_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("company", "url_prefix"), True),)


class Flow(BaseModel):
    id = peewee.CharField(max_length=26, primary_key=True)
    company = peewee.ForeignKeyField(Company, on_delete="CASCADE", backref="flows")
    name = peewee.CharField(max_length=200)
    draft_number = peewee.IntegerField()
    created_at = peewee.DateTimeField()


class FlowVersion(BaseModel):
    id = peewee.CharField(max_length=26, primary_key=True)
    flow = peewee.ForeignKeyField(Flow, on_delete="CASCADE", backref="versions")
    number = peewee.IntegerField()
    definition = peewee.TextField()  # JSON, validated on save
    has_callback = peewee.BooleanField()
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("flow", "number"), True),)


class Deployment(BaseModel):
    flow = peewee.ForeignKeyField(Flow, on_delete="CASCADE", backref="deployments")
    # "" is the default environment. Not a foreign key: the default environment has no row, and
    # deleting an environment in use is refused by the domain with a clear error.
    environment_id = peewee.CharField(max_length=26)
    version = peewee.ForeignKeyField(FlowVersion, on_delete="CASCADE")
    enabled = peewee.BooleanField()
    deployed_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("flow", "environment_id"), True),)


class Callback(BaseModel):
    id = peewee.CharField(max_length=26, primary_key=True)
    flow = peewee.ForeignKeyField(Flow, on_delete="CASCADE", backref="callbacks")
    name = peewee.CharField(max_length=200)
    # The URL must be handed out again (GetCallbackUrl), so the signature is kept, sealed with
    # the installation's secret key and bound to this row (control_plane/secrets); edges only
    # ever get its digest.
    signature_sealed = peewee.BlobField()
    signature_digest = peewee.BlobField()
    content_type = peewee.CharField(max_length=255)
    timeout_ms = peewee.IntegerField()
    rate_limit_per_minute = peewee.IntegerField(default=0)  # 0: unlimited
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()
    # After RegenerateSignature with a grace period: the replaced signature's digest and when it
    # stops being accepted (NULL: none). Only one previous signature is ever kept.
    previous_signature_digest = peewee.BlobField(null=True)
    previous_signature_expires_at = peewee.DateTimeField(null=True)
    # A HmacScheme value (0: no HMAC required) and its write-only secret, sealed like the
    # signature but with its own binding (hmac_secret_aad): edges need it in clear to verify.
    hmac_scheme = peewee.SmallIntegerField(default=0)
    hmac_secret_sealed = peewee.BlobField(null=True)
    allowed_origins = peewee.TextField(default="[]")  # JSON list; "*" alone: any origin
    mode = peewee.SmallIntegerField(default=0)  # a CallbackMode value (0 and 1: sync)
    async_after_ms = peewee.IntegerField(default=0)  # 0: a long wait ends in 504, never 202

    @property
    def signature(self) -> str:
        """The signature, opened with the process's secret key."""
        return secrets.box().open(self.signature_sealed, signature_aad(self.id))

    def set_signature(self, signature: str) -> None:
        """Seals `signature` for this row (its id must be set) and keeps its digest."""
        self.signature_sealed = secrets.box().seal(signature, signature_aad(self.id))
        self.signature_digest = digest(signature)

    @property
    def hmac_secret(self) -> str:
        """The HMAC secret, opened with the process's secret key ("" when none)."""
        if not self.hmac_secret_sealed:
            return ""
        return secrets.box().open(self.hmac_secret_sealed, hmac_secret_aad(self.id))

    def set_hmac_secret(self, secret: str) -> None:
        """Seals `secret` for this row; "" forgets it."""
        self.hmac_secret_sealed = (
            secrets.box().seal(secret, hmac_secret_aad(self.id)) if secret else None
        )


def signature_aad(callback_id: str) -> str:
    """What a sealed signature is bound to: a sealed value copied to another row won't open."""
    return f"callback/{callback_id}/signature"


def hmac_secret_aad(callback_id: str) -> str:
    """What a sealed HMAC secret is bound to: not interchangeable with the signature either."""
    return f"callback/{callback_id}/hmac_secret"


class ApiKey(BaseModel):
    id = peewee.CharField(max_length=26, primary_key=True)
    # NULL: installation-wide.
    company = peewee.ForeignKeyField(Company, null=True, on_delete="CASCADE", backref="api_keys")
    name = peewee.CharField(max_length=200)
    secret_digest = peewee.BlobField(unique=True)
    created_at = peewee.DateTimeField()
    revoked_at = peewee.DateTimeField(null=True)
    # What the key may call: full | edge | runner (control_plane/domain/tenancy.py).
    scope = peewee.CharField(max_length=8, default="full")


class RevisionCounter(BaseModel):
    """One row: the epoch of this database and its latest revision.

    Writers increment it inside their transaction; the row lock serialises them, which is what
    makes revisions gap-free and in commit order (a sequence would be neither).
    """

    id = peewee.IntegerField(primary_key=True)
    epoch = peewee.CharField(max_length=32)
    revision = peewee.BigIntegerField()


class Change(BaseModel):
    """What changed at a revision: one object an edge must know about."""

    revision = peewee.BigIntegerField(primary_key=True)
    entity = peewee.CharField(max_length=16)  # callback | environment | flow
    entity_id = peewee.CharField(max_length=26)
    created_at = peewee.DateTimeField()


class EdgeState(BaseModel):
    edge_id = peewee.CharField(max_length=128, primary_key=True)
    epoch = peewee.CharField(max_length=32)
    revision = peewee.BigIntegerField()
    connected = peewee.BooleanField()
    last_seen_at = peewee.DateTimeField()


class Run(BaseModel):
    id = peewee.CharField(max_length=26, primary_key=True)
    # Not indexed on its own: the (company, started_at) index below serves every lookup by
    # company, the foreign key's included (migration 0009).
    company = peewee.ForeignKeyField(Company, on_delete="CASCADE", index=False)
    flow_id = peewee.CharField(max_length=26)
    version_id = peewee.CharField(max_length=26)
    environment_id = peewee.CharField(max_length=26)
    callback_id = peewee.CharField(max_length=26)
    status = peewee.CharField(max_length=16)
    started_at = peewee.DateTimeField()
    responded_at = peewee.DateTimeField(null=True)
    ended_at = peewee.DateTimeField(null=True)
    response_status = peewee.IntegerField()
    error = peewee.TextField()
    shapes = peewee.TextField()  # JSON list of shape log entries
    reason = peewee.IntegerField(default=0)  # a RunReason value (control_plane/runs/lifecycle.py)
    attempts = peewee.IntegerField(default=1)  # how many times a runner took the run up
    # The run whose run_flow shape started this one ("" if none), and the chain's length.
    parent_run_id = peewee.CharField(max_length=26, default="")
    depth = peewee.SmallIntegerField(default=0)
    notices = peewee.TextField(default="[]")  # JSON list of the notify shapes' notices

    class Meta:
        indexes = (
            (("company", "started_at"), False),
            (("parent_run_id",), False),  # a parent's children
            (("flow_id", "started_at"), False),
            (("ended_at",), False),  # retention prunes by end time
        )


class RunTask(BaseModel):
    """A run that has not ended: its checkpoint, and who works on it (control_plane/runs).

    A run's row here exists exactly while the run is not in a final status; both are written in
    one transaction. Runners claim rows whose lease has expired (FOR UPDATE SKIP LOCKED on
    PostgreSQL), so the work of a runner that died is taken up by another.
    """

    run = peewee.ForeignKeyField(Run, primary_key=True, on_delete="CASCADE")
    company_id = peewee.CharField(max_length=26)
    # 0: a caller waits for the callback (not resumable: its caller is gone with its runner);
    # 1: the tail after the callback, resumed from `state`.
    lane = peewee.SmallIntegerField()
    state = peewee.TextField()  # JSON checkpoint: {"input": …, "progress": …}; "" in lane 0
    owner = peewee.CharField(max_length=64)  # the runner instance working on it; "" if none
    lease_until = peewee.DateTimeField()
    attempts = peewee.IntegerField()
    updated_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("lease_until",), False), (("owner",), False))


class QuotaSetting(BaseModel):
    """A quota set with SetQuotas (control_plane/domain/quotas.py); absent: the default.

    `scope` is the company's id, or "" for the installation's own settings. Not a foreign key, so
    the installation's rows fit the same table; DeleteCompany deletes the company's rows.
    """

    scope = peewee.CharField(max_length=26)
    name = peewee.CharField(max_length=32)
    value = peewee.IntegerField()

    class Meta:
        primary_key = peewee.CompositeKey("scope", "name")


class KeptAnswer(BaseModel):
    """The answer kept for a run (Idempotency-Key repeats, async status URLs, webhook mode;
    control_plane/runs/answers.py). Expired rows are ignored by every lookup and pruned.

    Not a foreign key to the run: the row is written in the run's own first transaction and
    outlives nothing it needs (answers expire long before runs are pruned)."""

    run_id = peewee.CharField(max_length=26, primary_key=True)
    company = peewee.ForeignKeyField(Company, on_delete="CASCADE")
    callback_id = peewee.CharField(max_length=26)
    idempotency_key = peewee.CharField(max_length=255, null=True)
    request_fingerprint = peewee.BlobField()
    status_secret = peewee.CharField(max_length=64, null=True)  # set once a status URL exists
    key_answer = peewee.BlobField(null=True)  # StoredAnswer a repeat of the key gets
    run_answer = peewee.BlobField(null=True)  # StoredAnswer the status URL gets
    bytes = peewee.IntegerField()  # what this row counts against the answer_bytes quota
    created_at = peewee.DateTimeField()
    expires_at = peewee.DateTimeField()

    class Meta:
        # NULL keys never collide, on SQLite or PostgreSQL.
        indexes = ((("callback_id", "idempotency_key"), True), (("expires_at",), False))


class AnswerUsage(BaseModel):
    """Bytes of kept answers per company: the answer_bytes quota's counter."""

    company = peewee.ForeignKeyField(Company, primary_key=True, on_delete="CASCADE")
    bytes = peewee.BigIntegerField()


class Connection(BaseModel):
    """A named upstream system of a company that connector shapes call (docs/connections.md).

    `auth_kind` is "" (none), "basic", "bearer", "api_key" or "oauth2_client_credentials";
    `auth` holds that kind's non-secret fields as JSON; `secret_sealed` its one secret (password,
    token, key value or client secret), sealed like callback signatures and bound to this row and
    kind (connection_secret_aad). Edges never learn of connections: no change is recorded.
    """

    id = peewee.CharField(max_length=26, primary_key=True)
    company = peewee.ForeignKeyField(Company, on_delete="CASCADE", backref="connections")
    name = peewee.CharField(max_length=63)  # slug syntax, unique in the company
    base_url = peewee.TextField()
    default_headers = peewee.TextField()  # JSON object
    timeout_ms = peewee.IntegerField()
    rate_limit_per_minute = peewee.IntegerField()  # 0: unlimited
    auth_kind = peewee.CharField(max_length=32)
    auth = peewee.TextField()  # JSON object of the kind's non-secret fields ("{}": none)
    secret_sealed = peewee.BlobField(null=True)
    version = peewee.IntegerField()  # 1 at creation, +1 on every update
    created_at = peewee.DateTimeField()
    updated_at = peewee.DateTimeField()

    class Meta:
        indexes = ((("company", "name"), True),)

    @property
    def secret(self) -> str:
        """The secret, opened with the process's secret key ("" when none)."""
        if not self.secret_sealed:
            return ""
        aad = connection_secret_aad(self.id, self.auth_kind)
        return secrets.box().open(self.secret_sealed, aad)

    def set_secret(self, secret: str) -> None:
        """Seals `secret` for this row and its `auth_kind` (both set first); "" forgets it."""
        aad = connection_secret_aad(self.id, self.auth_kind)
        self.secret_sealed = secrets.box().seal(secret, aad) if secret else None


def connection_secret_aad(connection_id: str, kind: str) -> str:
    """What a sealed connection secret is bound to: its row and its kind, so it opens neither on
    another row nor as another kind's secret (a token read as a password)."""
    return f"connection/{connection_id}/{kind}"


ALL_MODELS: list[type[BaseModel]] = [
    Company,
    Environment,
    Flow,
    FlowVersion,
    Deployment,
    Callback,
    ApiKey,
    RevisionCounter,
    Change,
    EdgeState,
    Run,
    RunTask,
    QuotaSetting,
    KeptAnswer,
    AnswerUsage,
    Connection,
]
