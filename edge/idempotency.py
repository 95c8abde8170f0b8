"""The Idempotency-Key header (IETF draft-ietf-httpapi-idempotency-key-header): reading the key
and the fingerprint of the request it names (docs/answers.md, "At the edge").

The draft makes the key a Structured Field string (`"abc"`); many clients send it bare (`abc`),
so both are taken. After unquoting a key is 1-255 visible ASCII characters (a space is not one):
anything else, or the header given twice, is refused with 400 `invalid_idempotency_key` before a
run starts, because guessing what a malformed key meant could join two different requests.

The control plane claims the key per callback and compares the fingerprint of each repeat with the
first request's (422 `idempotency_key_reused` when they differ). The fingerprint covers what makes
two requests the same run: method, environment, query without the signature, and body. Headers
are left out: proxies add and reorder them (tracing ids, Via, Accept-Encoding). Every part is
length-prefixed, so no two different requests frame to the same bytes (`a=b&c` and `a=b` + `c`
are different requests, and hash differently).
"""

from __future__ import annotations

import hashlib
import struct

from boomerang.v1 import runner_service_pb2 as runner_pb2
from edge import errors

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255

#: Names the framing below; a new framing must change it, so old and new never collide.
_FINGERPRINT_VERSION = b"boomerang idempotency fingerprint v1\n"
_VISIBLE = frozenset(range(0x21, 0x7F))
# A bare key may not hold the characters that would make it something else: a quoted string
# (`"`, `\`) or a list of keys (`,`, which a proxy uses to join two headers into one).
_BARE = _VISIBLE - frozenset(b'"\\,')


def parse_key(values: list[str]) -> str:
    """The key from the header's values (one expected); raises InvalidIdempotencyKey."""
    if len(values) != 1:
        raise errors.InvalidIdempotencyKey
    value = values[0].strip(" \t")
    if value.startswith('"'):
        key = _unquote(value)
    elif value and all(ord(c) in _BARE for c in value):
        key = value
    else:
        key = ""
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise errors.InvalidIdempotencyKey
    return key


def _unquote(value: str) -> str:
    """An sf-string's content (RFC 8941 §3.3.3), or "" when it is not one of visible characters."""
    if len(value) < 2 or not value.endswith('"'):
        return ""
    out: list[str] = []
    chars = iter(value[1:-1])
    for c in chars:
        if c == "\\":
            c = next(chars, "")
            if c not in ('"', "\\"):
                return ""  # only \" and \\ are escapes; a lone backslash ends nothing
        elif c == '"':
            return ""  # an unescaped quote inside: not one string
        if ord(c) not in _VISIBLE:
            return ""
        out.append(c)
    return "".join(out)


def fingerprint(start: runner_pb2.RunStart) -> bytes:
    """SHA-256 of the start's method, environment, query (sorted) and body, each framed."""
    h = hashlib.sha256(_FINGERPRINT_VERSION)
    _field(h, start.method.encode())
    _field(h, start.environment_id.encode())
    query = sorted((q.name, q.value) for q in start.query)
    h.update(struct.pack(">Q", len(query)))
    for name, value in query:
        _field(h, name.encode())
        _field(h, value.encode())
    _field(h, start.body)
    return h.digest()


def _field(h, data: bytes) -> None:
    h.update(struct.pack(">Q", len(data)))
    h.update(data)
