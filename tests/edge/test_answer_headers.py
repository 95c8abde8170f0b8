"""Reading Idempotency-Key and Prefer, the request fingerprint, and keeping status tokens out of
logs (edge/idempotency.py, edge/answers.py, edge/errors.py): no server needed."""

from __future__ import annotations

import pytest

from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge import errors
from edge.answers import prefers_async
from edge.idempotency import fingerprint, parse_key


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ("abc", "abc"),
        ('"abc"', "abc"),
        ("  8e03978e-40d5-43e8-bc93-6894a57f9324\t", "8e03978e-40d5-43e8-bc93-6894a57f9324"),
        ('"a\\"b\\\\c"', 'a"b\\c'),  # sf-string escapes
        ("k" * 255, "k" * 255),
        ('"' + "k" * 255 + '"', "k" * 255),
        ("a:b/c=d;e", "a:b/c=d;e"),
        ("~!#$%&'*+-.^_`|", "~!#$%&'*+-.^_`|"),
    ],
)
def test_good_keys(value: str, key: str) -> None:
    assert parse_key([value]) == key


@pytest.mark.parametrize(
    "values",
    [
        [""],
        ['""'],
        ["k" * 256],
        ['"' + "k" * 256 + '"'],
        ["a b"],  # a space is not visible
        ['"a b"'],
        ["a,b"],  # two keys joined by a proxy
        ['"abc'],
        ['"a"b"'],
        ['"a\\b"'],  # only \" and \\ are escapes
        ['"abc\\"'],
        ['a"b'],
        ["a\\b"],
        ["caf\u00e9"],
        ["a\x00b"],
        ["a\x7fb"],
        ["one", "two"],  # the header twice
        [],
    ],
)
def test_bad_keys_are_400(values: list[str]) -> None:
    with pytest.raises(errors.InvalidIdempotencyKey) as raised:
        parse_key(values)
    assert (raised.value.status_code, raised.value.reason) == (400, "invalid_idempotency_key")


def start(method="POST", env="", query=(), body=b"") -> runner_pb2.RunStart:
    s = runner_pb2.RunStart(method=method, environment_id=env, body=body)
    for name, value in query:
        s.query.add(name=name, value=value)
    return s


def test_the_fingerprint_ignores_query_order_and_everything_but_the_four_parts() -> None:
    a = start(query=[("a", "1"), ("b", "2")], body=b"x")
    b = start(query=[("b", "2"), ("a", "1")], body=b"x")
    b.headers.add(name="x-trace", value="123")
    b.company, b.callback_id, b.version_id, b.timeout_ms = "c", "cb", "v", 9
    assert fingerprint(a) == fingerprint(b)
    assert len(fingerprint(a)) == 32


@pytest.mark.parametrize(
    "other",
    [
        start(method="GET", query=[("a", "1")], body=b"x"),
        start(env="01envuk0000000000000000000", query=[("a", "1")], body=b"x"),
        start(query=[("a", "2")], body=b"x"),
        start(query=[("a", "1"), ("a", "1")], body=b"x"),
        start(query=[("a", "1")], body=b"y"),
        start(query=[("a", "1")], body=b""),
        # Framing: moving bytes between parts changes the fingerprint.
        start(query=[("a", "1x")], body=b""),
        start(query=[("a1", "")], body=b"x"),
        start(query=[], body=b"a1x"),
    ],
)
def test_each_part_counts_and_framing_is_unambiguous(other: runner_pb2.RunStart) -> None:
    assert fingerprint(start(query=[("a", "1")], body=b"x")) != fingerprint(other)


@pytest.mark.parametrize(
    ("values", "wanted"),
    [
        (["respond-async"], True),
        (["Respond-Async"], True),
        (["return=minimal, respond-async"], True),
        (["respond-async; foo=bar"], True),
        (["wait=10", "respond-async"], True),
        ([" respond-async ,wait=5"], True),
        (["respond-async=1"], True),  # a value it does not define is ignored (RFC 7240 §2)
        (["return=minimal"], False),
        (["respond-asynchronously"], False),
        (["foo=respond-async"], False),
        ([""], False),
        ([], False),
    ],
)
def test_prefer_respond_async(values: list[str], wanted: bool) -> None:
    assert prefers_async(values) is wanted


def test_logs_show_a_status_token_only_up_to_its_run_id() -> None:
    run_id = "01jd5kzq8m3r4s5t6v7w8x9y0z"
    token = run_id + "a" * 52
    assert errors.loggable_path(f"/api/v1/acme/runs/{token}") == f"/api/v1/acme/runs/{run_id}..."
    # Not a status URL, or nothing secret in it: unchanged.
    for path in (
        "/api/v1/acme/01cbok00000000000000000000",
        "/api/v1/runs/01cbok00000000000000000000",
        "/api/v1/runs/01cbok00000000000000000000/uk",
        "/api/v1/acme/runs/short",
    ):
        assert errors.loggable_path(path) == path
