"""Issue 7's validation gaps, each closed: the documented error (docs/errors.md), and no change.

Trailing newlines that `$` let through, control and bidi characters in names, NaN/Infinity and
deep nesting in definitions, out-of-range timestamps, garbage page tokens, present-but-empty
definitions, and malformed stream openings. Each case runs against a company holding one of
every object, and the whole database must be the same after it.
"""

from __future__ import annotations

import asyncio
import struct as struct_module
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf import struct_pb2, timestamp_pb2
from google.protobuf.message import Message

from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import callback_service_pb2 as cbs
from boomerang.v1 import callback_sync_service_pb2 as sync
from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import environment_service_pb2 as es
from boomerang.v1 import flow_service_pb2 as fs
from boomerang.v1 import resources_pb2 as r
from boomerang.v1 import run_service_pb2 as rs
from boomerang.v1 import runner_service_pb2 as rns
from control_plane.grpckit import deep
from control_plane.grpckit.deep import first_too_deep
from control_plane.store import changes
from tests.api.helpers import (
    Failure,
    Stubs,
    Tenant,
    build_tenant,
    database_state,
    failure,
    method,
    outcome,
    struct,
)

INVALID = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
BAD = "INVALID_ARGUMENT"
BAD_DEFINITION = "INVALID_DEFINITION"
TRIGGER = {"id": "trigger", "type": "trigger"}
# Every kind of character a name refuses: NUL, other C0/C1 controls, line separators, and the
# bidi embeddings, overrides and isolates that make text display as something it is not.
UNPRINTABLE = ["a\x00b", "a\nb", "tab\there", "\x1b[31mred", "a\x85b", "a\u2028b"] + [
    f"invoice{chr(c)}fdp.exe" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]
]


def nested(depth: int) -> dict:
    """{"a": {"a": ... {"x": 1}}}: `depth` objects in all."""
    doc: dict = {"x": 1}
    for _ in range(depth - 1):
        doc = {"a": doc}
    return doc


def with_number(value: float) -> struct_pb2.Struct:
    """A definition carrying `value` at definition.shapes[1].payload.deep[0].x."""
    payload = {"deep": [{"x": value}]}
    return struct({"shapes": [TRIGGER, {"id": "m", "type": "manual_payload", "payload": payload}]})


def ts(seconds: int, nanos: int = 0) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


@dataclass(frozen=True)
class Case:
    rpc: str
    request: Callable[[Tenant], Message]
    code: grpc.StatusCode
    reason: str
    fields: tuple[str, ...] = ()


def _name_cases() -> list[Case]:
    cases = []
    for bad in UNPRINTABLE:
        cases += [
            Case(
                "companies.CreateCompany",
                lambda t, b=bad: cs.CreateCompanyRequest(name=b, slug="new"),
                INVALID,
                BAD,
                ("name",),
            ),
            Case(
                "environments.CreateEnvironment",
                lambda t, b=bad: es.CreateEnvironmentRequest(
                    company=t.slug, name=b, url_prefix="n"
                ),
                INVALID,
                BAD,
                ("name",),
            ),
            Case(
                "flows.CreateFlow",
                lambda t, b=bad: fs.CreateFlowRequest(company=t.slug, name=b),
                INVALID,
                BAD,
                ("name",),
            ),
            Case(
                "callbacks.CreateCallback",
                lambda t, b=bad: cbs.CreateCallbackRequest(flow_id=t.flow, name=b),
                INVALID,
                BAD,
                ("name",),
            ),
            Case(
                "callbacks.UpdateCallback",
                lambda t, b=bad: cbs.UpdateCallbackRequest(
                    id=t.callback, name=b, update_mask=["name"]
                ),
                INVALID,
                BAD,
                ("name",),
            ),
            Case(
                "keys.CreateApiKey",
                lambda t, b=bad: aks.CreateApiKeyRequest(company=t.slug, name=b),
                INVALID,
                BAD,
                ("name",),
            ),
            Case(
                "flows.UpdateDraft",
                lambda t, b=bad: fs.UpdateDraftRequest(
                    flow_id=t.flow, definition=struct({"shapes": [{**TRIGGER, "name": b}]})
                ),
                INVALID,
                BAD_DEFINITION,
                ("definition.shapes[0].name",),
            ),
        ]
    return cases


CASES = [
    # `$` matched before a final newline: "acme\n" would have been a second company.
    Case(
        "companies.CreateCompany",
        lambda t: cs.CreateCompanyRequest(name="Acme again", slug=t.slug + "\n"),
        INVALID,
        BAD,
        ("slug",),
    ),
    Case(
        "environments.CreateEnvironment",
        lambda t: es.CreateEnvironmentRequest(company=t.slug, name="Live", url_prefix="live\n"),
        INVALID,
        BAD,
        ("url_prefix",),
    ),
    *[
        Case(
            "callbacks.CreateCallback",
            lambda t, m=mime: cbs.CreateCallbackRequest(
                flow_id=t.flow, content_type=cbs.CONTENT_TYPE_CUSTOM, custom_content_type=m
            ),
            INVALID,
            BAD,
            ("custom_content_type",),
        )
        # A newline anywhere in a MIME type would split the Content-Type header it becomes.
        for mime in ["application/json\n", "text/plain;\ncharset=utf-8", "a/b\r\nx-evil: 1"]
    ],
    *_name_cases(),
    # NaN and ±Infinity have no JSON form; the path names where they are.
    *[
        Case(
            rpc,
            lambda t, n=number, rpc=rpc: (
                fs.CreateFlowRequest(company=t.slug, name="f", definition=with_number(n))
                if rpc == "flows.CreateFlow"
                else fs.UpdateDraftRequest(flow_id=t.flow, definition=with_number(n))
            ),
            INVALID,
            BAD_DEFINITION,
            ("definition.shapes[1].payload.deep[0].x",),
        )
        for number in (float("nan"), float("inf"), float("-inf"))
        for rpc in ("flows.CreateFlow", "flows.UpdateDraft")
    ],
    # Nesting the decoder accepts but responses could not carry back: refused with its path.
    Case(
        "flows.UpdateDraft",
        lambda t: fs.UpdateDraftRequest(
            flow_id=t.flow,
            definition=struct(
                {"shapes": [TRIGGER, {"id": "m", "type": "manual_payload", "payload": nested(25)}]}
            ),
        ),
        INVALID,
        BAD_DEFINITION,
        ("definition.shapes[1].payload" + ".a" * 21,),
    ),
    # Present but empty is not absent: refused, not silently the default definition.
    Case(
        "flows.CreateFlow",
        lambda t: fs.CreateFlowRequest(company=t.slug, name="f", definition=struct_pb2.Struct()),
        INVALID,
        BAD_DEFINITION,
        ("definition.shapes",),
    ),
    # Timestamps outside 0001-9999 cannot become datetimes.
    Case(
        "runs.ListRuns",
        lambda t: rs.ListRunsRequest(company=t.slug, start_time_from=ts(10**15)),
        INVALID,
        BAD,
        ("start_time_from",),
    ),
    Case(
        "runs.ListRuns",
        lambda t: rs.ListRunsRequest(company=t.slug, start_time_to=ts(-(10**13))),
        INVALID,
        BAD,
        ("start_time_to",),
    ),
    Case(
        "runs.ListRuns",
        lambda t: rs.ListRunsRequest(
            company=t.slug, start_time_from=ts(0, -5), start_time_to=ts(0, 10**9)
        ),
        INVALID,
        BAD,
        ("start_time_from.nanos", "start_time_to.nanos"),
    ),
    # Page tokens that are not ours: garbage, NUL, a megabyte.
    *[
        Case(
            "flows.ListFlows",
            lambda t, tok=token: fs.ListFlowsRequest(company=t.slug, page_token=tok),
            INVALID,
            BAD,
            ("page_token",),
        )
        for token in ["!!!", "\x00", "x" * 1_000_000, "AAAA", "w6k=", "=" * 40]
    ],
    Case(
        "flows.ListFlows",
        lambda t: fs.ListFlowsRequest(company=t.slug, page_size=2**31 - 1),
        INVALID,
        BAD,
        ("page_size",),
    ),
    Case(
        "runs.ListRuns",
        lambda t: rs.ListRunsRequest(company=t.slug, page_size=-(2**31)),
        INVALID,
        BAD,
        ("page_size",),
    ),
    # A string that is not a slug names no company: NOT_FOUND, without reaching the database
    # (PostgreSQL refuses NUL in any string it is sent).
    *[
        Case(
            rpc,
            lambda t, s=slug, rpc=rpc: {
                "companies.GetCompany": lambda: cs.GetCompanyRequest(slug=s),
                "flows.ListFlows": lambda: fs.ListFlowsRequest(company=s),
                "flows.CreateFlow": lambda: fs.CreateFlowRequest(company=s, name="f"),
            }[rpc](),
            NOT_FOUND,
            "COMPANY_NOT_FOUND",
        )
        for slug in ["acme\x00", "acme\n", "x" * 1_000_000]
        for rpc in ("companies.GetCompany", "flows.ListFlows", "flows.CreateFlow")
    ],
    # Ids: NUL or wrong length is named as malformed, never looked up.
    *[
        Case("flows.GetFlow", lambda t, i=bad_id: fs.GetFlowRequest(id=i), INVALID, BAD, ("id",))
        for bad_id in ["\x00" * 26, "0" * 25, "0" * 27, "0" * 25 + "\n", "Z" * 26]
    ],
]


async def test_bad_input_gets_its_documented_error_and_changes_nothing(plane):
    s, md = Stubs.on(plane.channel), plane.metadata()
    t = await build_tenant(s, md, "acme")
    before = database_state()
    head = changes.head()

    wrong = []
    for case in CASES:
        got = await outcome(method(s, case.rpc)(case.request(t), metadata=md))
        expected = Failure(case.code, f"ERROR_REASON_{case.reason}", list(case.fields))
        if got != expected:
            wrong.append(f"{case.rpc} {case.request(t)!s:.120}: got {got}, expected {expected}")
        elif database_state() != before:
            wrong.append(f"{case.rpc} ({case.fields}) changed the database")
            before = database_state()

    assert not wrong, "\n".join(wrong)
    assert changes.head() == head


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def too_deep_create_flow(company: str, depth: int) -> bytes:
    """A CreateFlowRequest whose definition nests `depth` objects, encoded by hand: protobuf's
    own encoder (and Struct.update) refuse what its decoder would refuse."""
    struct = b""
    for _ in range(depth):
        value = _field(5, struct)  # Value.struct_value
        entry = _field(1, b"a") + _field(2, value)  # map<string, Value> entry
        struct = _field(1, entry)  # Struct.fields
    return _field(1, company.encode()) + _field(2, b"deep") + _field(3, struct)


async def test_nesting_beyond_the_decoder_is_refused_with_its_path(plane):
    """protobuf stops decoding at 100 nested messages (about 33 JSON levels) before any servicer
    runs; grpc would answer UNKNOWN naming protobuf internals. The path is found in the raw
    bytes (grpckit/decode.py, grpckit/deep.py), as for nesting that does decode."""
    s, md = Stubs.on(plane.channel), plane.metadata()
    await s.companies.CreateCompany(cs.CreateCompanyRequest(name="Acme", slug="acme"), metadata=md)
    before = database_state()
    raw = plane.channel.unary_unary(
        "/boomerang.v1.FlowService/CreateFlow",
        request_serializer=lambda b: b,
        response_deserializer=fs.CreateFlowResponse.FromString,
    )
    for depth in (40, 100, 1000):
        try:
            await raw(too_deep_create_flow("acme", depth), metadata=md)
        except grpc.aio.AioRpcError as err:
            got = failure(err)
            too_deep = "definition" + ".a" * 24  # the 25th object
            assert got == Failure(INVALID, "ERROR_REASON_INVALID_DEFINITION", [too_deep])
            assert "protobuf" not in (err.details() or "")
        else:
            raise AssertionError(f"depth {depth} was accepted")
    # And bytes that are no message at all: the request as a whole is named.
    garbage = plane.channel.unary_unary(
        "/boomerang.v1.CompanyService/GetCompany",
        request_serializer=lambda b: b,
        response_deserializer=cs.GetCompanyResponse.FromString,
    )
    try:
        await garbage(b"\xff\xff\xff", metadata=md)
    except grpc.aio.AioRpcError as err:
        assert failure(err) == Failure(INVALID, "ERROR_REASON_INVALID_ARGUMENT", ["request"])
    else:
        raise AssertionError("garbage bytes were accepted")
    assert database_state() == before


async def test_a_too_deep_message_on_a_stream_is_invalid_argument(plane):
    """The same on the streaming RPCs: RunFlow's start events carry no Struct, but undecodable
    bytes are refused as a whole request, not UNKNOWN."""
    md = plane.metadata()
    raw = plane.channel.stream_stream(
        "/boomerang.v1.RunnerService/RunFlow",
        request_serializer=lambda b: b,
        response_deserializer=rns.RunFlowResponse.FromString,
    )
    call = raw(iter([b"\x0a\xff\xff\xff\xff\x0f"]), metadata=md)
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as err:
        assert failure(err) == Failure(INVALID, "ERROR_REASON_INVALID_ARGUMENT", ["request"])
    else:
        raise AssertionError("the stream ended without an error")


async def _sync_opening(s: Stubs, md, first: sync.SyncCallbacksRequest) -> Failure:
    async def requests():
        yield first
        await asyncio.sleep(30)  # keep our side open: the server must answer, not we

    call = s.sync.SyncCallbacks(requests(), metadata=md)
    try:
        async for _ in call:
            return Failure(grpc.StatusCode.OK, "", [])
    except grpc.aio.AioRpcError as err:
        return failure(err)
    return Failure(grpc.StatusCode.OK, "", [])


async def test_a_malformed_sync_hello_is_a_protocol_violation(plane):
    """Edge ids and epochs are stored as given (EdgeState: 128 and 32 characters)."""
    s, md = Stubs.on(plane.channel), plane.metadata()
    before = database_state()
    for hello in [
        sync.SyncHello(edge_id="edge\x00one"),
        sync.SyncHello(edge_id="e" * 129),
        sync.SyncHello(edge_id="edge\u202eeno"),
        sync.SyncHello(edge_id="edge", epoch="x" * 33),
        sync.SyncHello(edge_id="edge", epoch="\x00"),
        sync.SyncHello(edge_id="edge", revision=-1),
    ]:
        got = await _sync_opening(s, md, sync.SyncCallbacksRequest(hello=hello))
        assert got == Failure(INVALID, "ERROR_REASON_PROTOCOL_VIOLATION", []), hello
    assert database_state() == before


async def test_runflow_with_malformed_ids_is_refused_as_version_not_found(plane):
    """Malformed ids never reach the database (PostgreSQL would refuse the NUL)."""
    s, md = Stubs.on(plane.channel), plane.metadata()
    t = await build_tenant(s, md, "acme")
    listed = await s.flows.ListVersions(fs.ListVersionsRequest(flow_id=t.flow), metadata=md)
    deployed = listed.versions[-1].id
    before = database_state()
    starts = [rns.RunStart(company="acme", version_id=v) for v in ["\x00" * 26, "x" * 10**5, ""]]
    # A real version, but ids that cannot be stored with the run (PostgreSQL refuses them).
    starts += [
        rns.RunStart(company="acme", version_id=deployed, callback_id=bad, environment_id=env)
        for bad, env in [("\x00", ""), ("x" * 100, ""), (t.callback, "e" * 27)]
    ]
    for start in starts:
        answered = asyncio.Event()

        async def requests(start=start, answered=answered):
            yield rns.RunFlowRequest(events=[rns.RunFlowClientEvent(run_ref=1, start=start)])
            await answered.wait()  # closing our side first would end the stream unanswered

        reasons = []
        async for message in s.runner.RunFlow(requests(), metadata=md):
            reasons += [e.outcome.reason for e in message.events if e.HasField("outcome")]
            if reasons:
                answered.set()
        assert reasons == [r.RUN_REASON_VERSION_NOT_FOUND], start
    assert database_state() == before


def _encode_struct(doc: dict) -> bytes:
    """A Struct's wire bytes, for any depth (protobuf's own encoder stops near 100 levels)."""
    return b"".join(
        _field(1, _field(1, key.encode()) + _field(2, _encode_value(value)))
        for key, value in doc.items()
    )


def _encode_value(value) -> bytes:
    if isinstance(value, dict):
        return _field(5, _encode_struct(value))
    if isinstance(value, list):
        return _field(6, b"".join(_field(1, _encode_value(item)) for item in value))
    if isinstance(value, str):
        return _field(3, value.encode())
    return b"\x11" + struct_module.pack("<d", value)  # number_value: field 2, fixed64


def test_the_raw_walk_names_the_same_path_as_the_decoded_check():
    field = fs.CreateFlowRequest.DESCRIPTOR.fields_by_name["definition"]
    deep_list: list = ["bottom"]
    for _ in range(200):
        deep_list = [1.5, deep_list]
    doc = {"shapes": [TRIGGER, {"id": "m", "type": "manual_payload", "payload": deep_list}]}
    request = _field(1, b"acme") + _field(3, _encode_struct(doc))

    # shapes[1].payload is level 4; each list one more; the 21st list is level 25.
    assert first_too_deep(request, field) == "definition.shapes[1].payload" + "[1]" * 21

    shallow = _field(3, _encode_struct({"shapes": [TRIGGER]}))
    assert first_too_deep(shallow, field) is None
    assert first_too_deep(b"\xff\xff\xff", field) is None  # not protobuf at all: no path
    # Too deep, but only after more fields than it reads: it gives up rather than read 16 MB.
    wide = {**{f"k{i}": 1.0 for i in range(deep.MAX_FIELDS_READ // 3)}, "z": deep_list}
    assert first_too_deep(_field(3, _encode_struct(wide)), field) is None
    assert first_too_deep(_field(3, _encode_struct({"z": deep_list})), field) is not None
