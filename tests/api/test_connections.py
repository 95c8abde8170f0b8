"""ConnectionService over a real in-process server, both backends (docs/connections.md).

Create / get / list / update / delete; every validation rule with the field path it names, and
a refusal changes nothing; names unique per company; the `connections` quota; company keys vs
the installation's key; secrets write-only (never in an answer, an error, a log line, or the
database in clear) and the runner's `resolve_connection` opening them.
"""

from __future__ import annotations

import logging

import grpc
import pytest
from google.protobuf import duration_pb2

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import connection_service_pb2 as conns
from control_plane.domain.connections import resolve_connection
from control_plane.domain.errors import echo
from control_plane.grpckit.status import clip
from control_plane.outbound.credentials import (
    ApiKeyCredentials,
    BasicCredentials,
    BearerCredentials,
    OAuth2ClientCredentials,
)
from control_plane.store.db import database
from tests.api.helpers import Failure, Stubs, database_state, failure, new_callback, outcome
from tests.api.test_quotas import refused, set_quotas
from tests.sync.test_sync_protocol import EdgeStream

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
OK = grpc.StatusCode.OK

# Distinctive values: a test finding one of them anywhere has found a leak.
PASSWORD = "pw-7f3a9c1e-never-shown"
TOKEN = "tok-2b8d4e6f-never-shown"
KEY_VALUE = "key-9e1c5a7b-never-shown"
CLIENT_SECRET = "cs-4d6f8a2c-never-shown"
SECRETS = (PASSWORD, TOKEN, KEY_VALUE, CLIENT_SECRET)

AUTHS = {
    "basic": conns.ConnectionAuth(basic=conns.BasicAuth(username="svc", password=PASSWORD)),
    "bearer": conns.ConnectionAuth(bearer=conns.BearerAuth(token=TOKEN)),
    "api_key": conns.ConnectionAuth(
        api_key=conns.ApiKeyAuth(name="key", location=conns.API_KEY_LOCATION_QUERY, value=KEY_VALUE)
    ),
    "oauth2_client_credentials": conns.ConnectionAuth(
        oauth2_client_credentials=conns.OAuth2ClientCredentials(
            token_url="https://auth.example.com/token",
            client_id="client-1",
            client_secret=CLIENT_SECRET,
            scopes=["read", "write:orders"],
            audience="https://api.example.com",
        )
    ),
}


def seconds(value: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromMilliseconds(round(value * 1000))
    return d


async def company(s: Stubs, md, slug: str) -> None:
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name=slug, slug=slug), metadata=md)


async def create(s: Stubs, md, **fields) -> conns.Connection:
    request = conns.CreateConnectionRequest(
        **{"company": "acme", "name": "erp", "base_url": "https://erp.example.com/api", **fields}
    )
    return (await s.connections.CreateConnection(request, metadata=md)).connection


def resolve(company_slug: str, name: str):
    database.connect(reuse_if_open=True)  # this thread's own connection
    return resolve_connection(company_slug, name)


def assert_no_secret(*texts: bytes | str) -> None:
    for text in texts:
        data = text.encode() if isinstance(text, str) else text
        for secret in SECRETS:
            assert secret.encode() not in data, f"{secret} leaked"


@pytest.fixture
async def acme(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    await company(s, md, "acme")
    return s, md


async def test_create_get_list_update_delete(acme):
    s, md = acme
    made = await create(
        s,
        md,
        default_headers={"Accept": "application/json", "X-Tenant": "acme"},
        timeout=seconds(2.5),
        rate_limit_per_minute=120,
        auth=AUTHS["basic"],
    )
    assert (made.company, made.name, made.base_url) == (
        "acme",
        "erp",
        "https://erp.example.com/api",
    )
    assert dict(made.default_headers) == {"Accept": "application/json", "X-Tenant": "acme"}
    assert made.timeout.ToMilliseconds() == 2500 and made.rate_limit_per_minute == 120
    assert made.auth.WhichOneof("kind") == "basic" and made.auth.basic.username == "svc"
    assert made.auth.basic.password == "" and made.secret_set
    assert made.create_time == made.update_time and made.create_time.seconds > 0

    got = await s.connections.GetConnection(conns.GetConnectionRequest(id=made.id), metadata=md)
    assert got.connection == made

    # Unset timeout: 30 s. No credentials: nothing stored.
    plain = await create(s, md, name="plain", base_url="http://10.0.0.1:8080")
    assert plain.timeout.ToMilliseconds() == 30_000 and not plain.secret_set
    assert plain.auth.WhichOneof("kind") is None

    listed = await s.connections.ListConnections(
        conns.ListConnectionsRequest(company="acme", page_size=1), metadata=md
    )
    assert [c.name for c in listed.connections] == ["erp"] and listed.next_page_token
    rest = await s.connections.ListConnections(
        conns.ListConnectionsRequest(company="acme", page_token=listed.next_page_token),
        metadata=md,
    )
    assert [c.name for c in rest.connections] == ["plain"] and not rest.next_page_token

    updated = (
        await s.connections.UpdateConnection(
            conns.UpdateConnectionRequest(
                id=made.id,
                name="erp-v2",
                base_url="https://erp2.example.com",
                timeout=seconds(60),
                update_mask=["name", "base_url", "timeout"],
            ),
            metadata=md,
        )
    ).connection
    assert (updated.name, updated.base_url, updated.timeout.seconds) == (
        "erp-v2",
        "https://erp2.example.com",
        60,
    )
    # Fields outside the mask are kept, the secret too.
    assert dict(updated.default_headers) == dict(made.default_headers)
    assert updated.rate_limit_per_minute == 120 and updated.secret_set
    assert updated.auth == made.auth
    assert updated.update_time.ToNanoseconds() >= made.update_time.ToNanoseconds()

    await s.connections.DeleteConnection(conns.DeleteConnectionRequest(id=made.id), metadata=md)
    gone = await outcome(
        s.connections.GetConnection(conns.GetConnectionRequest(id=made.id), metadata=md)
    )
    assert gone == Failure(NOT_FOUND, "ERROR_REASON_CONNECTION_NOT_FOUND", [])
    again = await outcome(
        s.connections.DeleteConnection(conns.DeleteConnectionRequest(id=made.id), metadata=md)
    )
    assert again == gone
    # The name is free again.
    assert (await create(s, md, name="erp-v2")).name == "erp-v2"


LONG_NAME = "X-" + "a" * 127


def _headers(n: int) -> dict[str, str]:
    return {f"X-H{i}": "v" for i in range(n)}


# (request fields, the field path refused). Each alone is the request's only fault.
BAD_CREATES = [
    ({"name": ""}, "name"),
    ({"name": "Upper"}, "name"),
    ({"name": "a" * 64}, "name"),
    ({"name": "erp\n"}, "name"),
    ({"base_url": ""}, "base_url"),
    ({"base_url": "ftp://erp.example.com"}, "base_url"),
    ({"base_url": "/relative/path"}, "base_url"),
    ({"base_url": "https://"}, "base_url"),
    ({"base_url": "https://user:pw@erp.example.com"}, "base_url"),
    ({"base_url": "https://erp.example.com/#top"}, "base_url"),
    ({"base_url": "https://erp.example.com/?v=1"}, "base_url"),
    ({"base_url": "https://erp.example.com:99999"}, "base_url"),
    ({"base_url": "https://[::1/x"}, "base_url"),
    ({"base_url": "https://erp.example.com/a b"}, "base_url"),
    ({"base_url": "https://erp.example.com/\r\nX: y"}, "base_url"),
    ({"base_url": "https://érp.example.com"}, "base_url"),
    ({"base_url": "https://erp.example.com/" + "a" * 2048}, "base_url"),
    ({"default_headers": _headers(51)}, "default_headers"),
    ({"default_headers": {"X-Big": "v" * 4097}}, "default_headers['X-Big']"),
    ({"default_headers": {f"X-{i}": "v" * 4000 for i in range(5)}}, "default_headers"),
    ({"default_headers": {"Bad Name": "v"}}, "default_headers['Bad Name']"),
    ({"default_headers": {"": "v"}}, "default_headers['']"),
    # A long name is quoted cut short (domain/errors.echo), then clipped (grpckit/status.py).
    ({"default_headers": {LONG_NAME: "v"}}, clip(f"default_headers[{echo(LONG_NAME)}]", 80)),
    ({"default_headers": {"X-A": "a\r\nInjected: yes"}}, "default_headers['X-A']"),
    ({"default_headers": {"X-A": "a\nb"}}, "default_headers['X-A']"),
    ({"default_headers": {"X-A": "a\x00b"}}, "default_headers['X-A']"),
    ({"default_headers": {"X-A": "caf\u00e9"}}, "default_headers['X-A']"),
    ({"default_headers": {"Host": "evil.example.com"}}, "default_headers['Host']"),
    ({"default_headers": {"content-length": "5"}}, "default_headers['content-length']"),
    ({"default_headers": {"Transfer-Encoding": "chunked"}}, "default_headers['Transfer-Encoding']"),
    ({"default_headers": {"Connection": "close"}}, "default_headers['Connection']"),
    ({"default_headers": {"Authorization": "Bearer x"}}, "default_headers['Authorization']"),
    # Map order is protobuf's: whichever of the two comes second is named.
    (
        {"default_headers": {"X-A": "1", "x-a": "2"}},
        {"default_headers['x-a']", "default_headers['X-A']"},
    ),
    ({"timeout": seconds(0.05)}, "timeout"),
    ({"timeout": seconds(60.001)}, "timeout"),
    ({"timeout": duration_pb2.Duration(seconds=-1)}, "timeout"),
    ({"timeout": duration_pb2.Duration(seconds=1, nanos=1)}, "timeout"),
    ({"rate_limit_per_minute": -1}, "rate_limit_per_minute"),
    ({"rate_limit_per_minute": 1_000_001}, "rate_limit_per_minute"),
    (
        {"auth": conns.ConnectionAuth(basic=conns.BasicAuth(password="p"))},
        "auth.basic.username",
    ),
    (
        {"auth": conns.ConnectionAuth(basic=conns.BasicAuth(username="a:b", password="p"))},
        "auth.basic.username",
    ),
    ({"auth": conns.ConnectionAuth(basic=conns.BasicAuth(username="u"))}, "auth.basic.password"),
    (
        {"auth": conns.ConnectionAuth(basic=conns.BasicAuth(username="u", password="p" * 8193))},
        "auth.basic.password",
    ),
    ({"auth": conns.ConnectionAuth(bearer=conns.BearerAuth())}, "auth.bearer.token"),
    (
        {"auth": conns.ConnectionAuth(bearer=conns.BearerAuth(token="t\r\nX-Evil: 1"))},
        "auth.bearer.token",
    ),
    ({"auth": conns.ConnectionAuth(api_key=conns.ApiKeyAuth(value="v"))}, "auth.api_key.name"),
    (
        {"auth": conns.ConnectionAuth(api_key=conns.ApiKeyAuth(name="a b", value="v"))},
        "auth.api_key.name",
    ),
    (
        {"auth": conns.ConnectionAuth(api_key=conns.ApiKeyAuth(name="Host", value="v"))},
        "auth.api_key.name",
    ),
    (
        {"auth": conns.ConnectionAuth(api_key=conns.ApiKeyAuth(name="k", location=7, value="v"))},
        "auth.api_key.location",
    ),
    ({"auth": conns.ConnectionAuth(api_key=conns.ApiKeyAuth(name="k"))}, "auth.api_key.value"),
    (
        {"auth": conns.ConnectionAuth(api_key=conns.ApiKeyAuth(name="k", value="cl\u00e9"))},
        "auth.api_key.value",
    ),
    (
        {"auth": conns.ConnectionAuth(bearer=conns.BearerAuth(token="t\u2028x"))},
        "auth.bearer.token",
    ),
    (
        {
            "auth": conns.ConnectionAuth(
                oauth2_client_credentials=conns.OAuth2ClientCredentials(
                    token_url="auth.example.com/token", client_id="c", client_secret="s"
                )
            )
        },
        "auth.oauth2_client_credentials.token_url",
    ),
    (
        {
            "auth": conns.ConnectionAuth(
                oauth2_client_credentials=conns.OAuth2ClientCredentials(
                    token_url="https://a.example.com/t", client_secret="s"
                )
            )
        },
        "auth.oauth2_client_credentials.client_id",
    ),
    (
        {
            "auth": conns.ConnectionAuth(
                oauth2_client_credentials=conns.OAuth2ClientCredentials(
                    token_url="https://a.example.com/t", client_id="c"
                )
            )
        },
        "auth.oauth2_client_credentials.client_secret",
    ),
    (
        {
            "auth": conns.ConnectionAuth(
                oauth2_client_credentials=conns.OAuth2ClientCredentials(
                    token_url="https://a.example.com/t",
                    client_id="c",
                    client_secret="s",
                    scopes=["ok", "not ok"],
                )
            )
        },
        "auth.oauth2_client_credentials.scopes[1]",
    ),
    (
        {
            "auth": conns.ConnectionAuth(
                oauth2_client_credentials=conns.OAuth2ClientCredentials(
                    token_url="https://a.example.com/t",
                    client_id="c",
                    client_secret="s",
                    scopes=[f"s{i}" for i in range(51)],
                )
            )
        },
        "auth.oauth2_client_credentials.scopes",
    ),
    (
        {
            "auth": conns.ConnectionAuth(
                oauth2_client_credentials=conns.OAuth2ClientCredentials(
                    token_url="https://a.example.com/t",
                    client_id="c",
                    client_secret="s",
                    audience="a\nb",
                )
            )
        },
        "auth.oauth2_client_credentials.audience",
    ),
]


async def test_every_bad_field_is_refused_with_its_path_and_changes_nothing(acme):
    s, md = acme
    existing = await create(s, md, name="existing", auth=AUTHS["bearer"])
    before = database_state()
    wrong = []

    def refused(got: Failure, paths: str | set[str]) -> bool:
        paths = {paths} if isinstance(paths, str) else paths
        return any(got == Failure(INVALID, "ERROR_REASON_INVALID_ARGUMENT", [p]) for p in paths)

    for fields, path in BAD_CREATES:
        got = await outcome(create(s, md, **fields))
        if not refused(got, path):
            wrong.append(f"{fields!r:.80}: {got}")
        # The same value through UpdateConnection names the same path.
        request = conns.UpdateConnectionRequest(id=existing.id, update_mask=list(fields), **fields)
        got = await outcome(s.connections.UpdateConnection(request, metadata=md))
        if not refused(got, path):
            wrong.append(f"update {fields!r:.80}: {got}")
    assert not wrong, "\n".join(wrong)
    assert database_state() == before


async def test_every_violation_is_reported_at_once(acme):
    s, md = acme
    got = await outcome(
        create(
            s,
            md,
            name="Bad",
            base_url="nope",
            timeout=seconds(61),
            rate_limit_per_minute=-5,
            auth=conns.ConnectionAuth(bearer=conns.BearerAuth()),
        )
    )
    assert got.code == INVALID
    assert got.fields == [
        "name",
        "base_url",
        "timeout",
        "rate_limit_per_minute",
        "auth.bearer.token",
    ]


async def test_limits_at_their_edges_are_accepted(acme):
    s, md = acme
    made = await create(
        s,
        md,
        name="a" * 63,
        base_url="https://erp.example.com/" + "a" * (2048 - 24),
        default_headers=_headers(50),
        timeout=seconds(0.1),
        rate_limit_per_minute=1_000_000,
        auth=conns.ConnectionAuth(
            api_key=conns.ApiKeyAuth(name="Authorization", value="Token " + "k" * 8186)
        ),
    )
    assert len(made.base_url) == 2048 and len(made.default_headers) == 50
    assert made.timeout.ToMilliseconds() == 100
    # UNSPECIFIED location means HEADER.
    assert made.auth.api_key.location == conns.API_KEY_LOCATION_HEADER
    # A key in the query may be any text (it is percent-encoded); header values may hold tabs.
    query_key = conns.ApiKeyAuth(name="key", location=conns.API_KEY_LOCATION_QUERY, value="clé")
    made = await create(
        s,
        md,
        name="query-key",
        default_headers={"X-A": "a\tb ~"},
        auth=conns.ConnectionAuth(api_key=query_key),
    )
    assert made.secret_set and made.default_headers["X-A"] == "a\tb ~"
    slow = await create(s, md, name="slow", timeout=seconds(60), rate_limit_per_minute=0)
    assert slow.timeout.seconds == 60 and slow.rate_limit_per_minute == 0


async def test_update_mask_rules(acme):
    s, md = acme
    made = await create(s, md)
    before = database_state()
    for mask, fields in (
        ([], []),
        (["nope"], ["update_mask[0]"]),
        (["name", "x"], ["update_mask[1]"]),
    ):
        request = conns.UpdateConnectionRequest(id=made.id, name="ok", update_mask=mask)
        got = await outcome(s.connections.UpdateConnection(request, metadata=md))
        assert got == Failure(INVALID, "ERROR_REASON_INVALID_ARGUMENT", fields or ["update_mask"])
    assert database_state() == before
    # Fields the mask does not name are not read: their values can be anything.
    ignored = conns.UpdateConnectionRequest(
        id=made.id,
        name="renamed",
        base_url="ftp://x",
        timeout=duration_pb2.Duration(seconds=-1),
        auth=conns.ConnectionAuth(api_key=conns.ApiKeyAuth(location=9)),
        update_mask=["name"],
    )
    answer = (await s.connections.UpdateConnection(ignored, metadata=md)).connection
    assert (answer.name, answer.base_url, answer.timeout.seconds) == ("renamed", made.base_url, 30)


async def test_names_are_unique_per_company(acme):
    s, md = acme
    await company(s, md, "globex")
    first = await create(s, md)
    await create(s, md, name="other")
    before = database_state()
    taken = Failure(grpc.StatusCode.ALREADY_EXISTS, "ERROR_REASON_CONNECTION_NAME_TAKEN", [])
    assert await outcome(create(s, md)) == taken
    rename = conns.UpdateConnectionRequest(id=first.id, name="other", update_mask=["name"])
    assert await outcome(s.connections.UpdateConnection(rename, metadata=md)) == taken
    assert database_state() == before
    # Renaming to its own name is no conflict; another company may use the name.
    same = conns.UpdateConnectionRequest(id=first.id, name="erp", update_mask=["name"])
    assert (await s.connections.UpdateConnection(same, metadata=md)).connection.name == "erp"
    assert (await create(s, md, company="globex")).company == "globex"


async def test_the_connections_quota(acme):
    s, md = acme
    await set_quotas(s, md, "acme", connections=2)
    await create(s, md, name="one")
    second = await create(s, md, name="two")
    await refused(create(s, md, name="three"), "connections", 2, 2)
    # A delete makes room.
    await s.connections.DeleteConnection(conns.DeleteConnectionRequest(id=second.id), metadata=md)
    assert (await create(s, md, name="three")).name == "three"
    await refused(create(s, md, name="four"), "connections", 2, 2)


async def test_company_keys_and_the_installation_key(acme, plane):
    s, admin = acme
    await company(s, admin, "globex")
    key = await s.keys.CreateApiKey(
        aks.CreateApiKeyRequest(company="acme", name="k"), metadata=admin
    )
    own = plane.metadata(key.secret)
    # A company key manages its own company's connections.
    made = await create(s, own, auth=AUTHS["bearer"])
    assert made.company == "acme" and made.auth.bearer.token == ""
    request = conns.UpdateConnectionRequest(
        id=made.id, rate_limit_per_minute=5, update_mask=["rate_limit_per_minute"]
    )
    assert (
        await s.connections.UpdateConnection(request, metadata=own)
    ).connection.rate_limit_per_minute == 5
    # Another company's connection is NOT_FOUND to it, exactly as a missing one.
    theirs = await create(s, admin, company="globex")
    missing = Failure(NOT_FOUND, "ERROR_REASON_CONNECTION_NOT_FOUND", [])
    get = conns.GetConnectionRequest(id=theirs.id)
    assert await outcome(s.connections.GetConnection(get, metadata=own)) == missing
    no_company = Failure(NOT_FOUND, "ERROR_REASON_COMPANY_NOT_FOUND", [])
    assert await outcome(create(s, own, company="globex")) == no_company
    assert await outcome(create(s, own, company="nowhere")) == no_company
    # The installation's key sees every company's.
    assert (await s.connections.GetConnection(get, metadata=admin)).connection.company == "globex"
    listed = await s.connections.ListConnections(
        conns.ListConnectionsRequest(company="acme"), metadata=admin
    )
    assert [c.id for c in listed.connections] == [made.id]


async def test_deleting_the_company_deletes_its_connections(acme):
    s, md = acme
    made = await create(s, md, auth=AUTHS["bearer"])
    await s.companies.DeleteCompany(cs.DeleteCompanyRequest(slug="acme"), metadata=md)
    assert database_state()["Connection"] == []
    gone = await outcome(
        s.connections.GetConnection(conns.GetConnectionRequest(id=made.id), metadata=md)
    )
    assert gone.reason == "ERROR_REASON_CONNECTION_NOT_FOUND"


# -- secrets ------------------------------------------------------------------------------------


async def test_secrets_are_never_answered_logged_or_stored_in_clear(acme, caplog):
    caplog.set_level(logging.DEBUG)  # peewee logs every query with its parameters at DEBUG
    s, md = acme
    answers: list[bytes] = []
    made = {}
    for kind, auth in AUTHS.items():
        connection = await create(s, md, name=kind.replace("_", "-"), auth=auth)
        made[kind] = connection
        answers.append(connection.SerializeToString())
        assert connection.secret_set and connection.auth.WhichOneof("kind") == kind
    for connection in made.values():
        got = await s.connections.GetConnection(
            conns.GetConnectionRequest(id=connection.id), metadata=md
        )
        answers.append(got.SerializeToString())
        updated = await s.connections.UpdateConnection(
            conns.UpdateConnectionRequest(
                id=connection.id, base_url="https://x.example.com", update_mask=["base_url"]
            ),
            metadata=md,
        )
        answers.append(updated.SerializeToString())
    listed = await s.connections.ListConnections(
        conns.ListConnectionsRequest(company="acme"), metadata=md
    )
    answers.append(listed.SerializeToString())
    # Non-secret fields come back as given.
    oauth = made["oauth2_client_credentials"].auth.oauth2_client_credentials
    assert (oauth.token_url, oauth.client_id, list(oauth.scopes), oauth.audience) == (
        "https://auth.example.com/token",
        "client-1",
        ["read", "write:orders"],
        "https://api.example.com",
    )
    assert made["api_key"].auth.api_key.name == "key"
    assert made["api_key"].auth.api_key.location == conns.API_KEY_LOCATION_QUERY
    # Refusals do not quote a secret either.
    bad = conns.ConnectionAuth(bearer=conns.BearerAuth(token=TOKEN + "\n"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(s, md, name="bad", auth=bad)
    assert failure(caught.value).fields == ["auth.bearer.token"]
    answers.append(str(caught.value.details()).encode())
    answers.extend(
        v.encode() if isinstance(v, str) else v for _, v in caught.value.trailing_metadata()
    )

    assert_no_secret(*answers)
    assert "SELECT" in caplog.text  # the queries were logged, parameters and all
    assert_no_secret(caplog.text)
    # In the database only sealed: no column of any row holds a secret.
    stored = repr(database_state()).encode()
    assert_no_secret(stored)
    sealed = [
        row for row in database_state()["Connection"] if any(isinstance(v, bytes) for v in row)
    ]
    assert len(sealed) == 4


async def test_resolve_connection_opens_the_secret_for_the_runner(acme):
    s, md = acme
    await company(s, md, "globex")
    for kind, auth in AUTHS.items():
        await create(
            s,
            md,
            name=kind.replace("_", "-"),
            default_headers={"Accept": "application/json"},
            timeout=seconds(1.5),
            rate_limit_per_minute=60,
            auth=auth,
        )
    await create(s, md, name="none")
    basic = resolve("acme", "basic")
    assert basic.credentials == BasicCredentials("svc", PASSWORD)
    assert (basic.company, basic.name, basic.base_url) == (
        "acme",
        "basic",
        "https://erp.example.com/api",
    )
    assert basic.default_headers == (("Accept", "application/json"),)
    assert (basic.timeout_s, basic.rate_limit_per_minute) == (1.5, 60)
    assert resolve("acme", "bearer").credentials == BearerCredentials(TOKEN)
    assert resolve("acme", "api-key").credentials == ApiKeyCredentials("key", "query", KEY_VALUE)
    assert resolve("acme", "oauth2-client-credentials").credentials == OAuth2ClientCredentials(
        "https://auth.example.com/token",
        "client-1",
        CLIENT_SECRET,
        ("read", "write:orders"),
        "https://api.example.com",
    )
    assert resolve("acme", "none").credentials is None
    # The repr the runner might log hides the secret.
    assert_no_secret(repr(basic), repr(resolve("acme", "oauth2-client-credentials")))
    # Unknown names and companies, and another company's connection: None.
    assert resolve("acme", "missing") is None
    assert resolve("nowhere", "basic") is None
    assert resolve("globex", "basic") is None
    assert resolve("acme", "BAD NAME\n") is None


async def test_updates_keep_the_secret_unless_auth_is_replaced(acme):
    s, md = acme
    made = await create(s, md, auth=AUTHS["basic"])
    first = resolve("acme", "erp")

    request = conns.UpdateConnectionRequest(
        id=made.id,
        base_url="https://new.example.com",
        default_headers={"X-A": "1"},
        update_mask=["base_url", "default_headers"],
    )
    await s.connections.UpdateConnection(request, metadata=md)
    kept = resolve("acme", "erp")
    assert kept.credentials == BasicCredentials("svc", PASSWORD)
    assert kept.base_url == "https://new.example.com" and kept.default_headers == (("X-A", "1"),)
    assert kept.revision != first.revision  # caches of the old connection start afresh

    # "auth" replaces the credentials whole: another kind, then none.
    replace = conns.UpdateConnectionRequest(id=made.id, auth=AUTHS["bearer"], update_mask=["auth"])
    answer = (await s.connections.UpdateConnection(replace, metadata=md)).connection
    assert answer.auth.WhichOneof("kind") == "bearer" and answer.secret_set
    assert resolve("acme", "erp").credentials == BearerCredentials(TOKEN)
    cleared = conns.UpdateConnectionRequest(id=made.id, update_mask=["auth"])
    answer = (await s.connections.UpdateConnection(cleared, metadata=md)).connection
    assert answer.auth.WhichOneof("kind") is None and not answer.secret_set
    assert resolve("acme", "erp").credentials is None
    assert [
        row for row in database_state()["Connection"] if any(isinstance(v, bytes) for v in row)
    ] == []


async def test_edges_never_hear_of_connections(acme):
    """The sync stream (snapshot and changes) carries nothing of a connection: no secret, not
    even its name or URL."""
    s, md = acme
    callback = await new_callback(s, md, "globex")
    await create(s, md, name="snapshot-conn", auth=AUTHS["oauth2_client_credentials"])
    edge = EdgeStream(s, md)
    await edge.hello()
    messages = [await edge.next()]
    while messages[-1].more:
        messages.append(await edge.next())
    assert messages[0].snapshot and [c.id for c in messages[0].callbacks] == [callback.id]
    await edge.ack(messages[-1])

    # Connection writes, then a callback change: the next message is the callback's alone.
    made = await create(s, md, name="change-conn", auth=AUTHS["basic"])
    update = conns.UpdateConnectionRequest(id=made.id, auth=AUTHS["bearer"], update_mask=["auth"])
    await s.connections.UpdateConnection(update, metadata=md)
    await s.connections.DeleteConnection(conns.DeleteConnectionRequest(id=made.id), metadata=md)
    await s.callbacks.UpdateCallback(
        cbs.UpdateCallbackRequest(id=callback.id, timeout_ms=1000, update_mask=["timeout_ms"]),
        metadata=md,
    )
    change = await edge.next()
    messages.append(change)
    assert [c.id for c in change.callbacks] == [callback.id]
    assert change.revision == messages[0].revision + 1  # no revision for the connections
    await edge.close()

    wire = b"".join(m.SerializeToString() for m in messages)
    assert_no_secret(wire)
    for text in ("snapshot-conn", "change-conn", "erp.example.com", "auth.example.com"):
        assert text.encode() not in wire
