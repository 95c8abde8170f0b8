"""The pure parts behind the HTTP surface: answer content types, log redaction, private logs,
deep JSON bodies (docs/http.md)."""

from __future__ import annotations

import io
import logging
import stat

import pytest

from boomerang.local import open_private_log
from control_plane.engine.payloads import body_payload
from edge.content_types import answer_content_type
from edge.redact import REDACTED, RedactSignatures, redact

SIG = "gjnc4k2x7q1abcdefghijklmnopqrstuvwxyz0123456789abcd"


@pytest.mark.parametrize(
    ("given", "sent"),
    [
        ("text/plain", "text/plain; charset=utf-8"),
        ("text/csv", "text/csv; charset=utf-8"),
        ("TEXT/HTML", "TEXT/HTML; charset=utf-8"),
        ("text/plain; format=flowed", "text/plain; format=flowed; charset=utf-8"),
        ("text/plain; charset=iso-8859-1", "text/plain; charset=iso-8859-1"),
        ("text/plain;CHARSET=utf-8", "text/plain;CHARSET=utf-8"),
        ("application/json", "application/json"),
        ("application/xml", "application/xml"),
        ("", "application/json"),
    ],
)
def test_text_types_get_utf8_unless_they_name_a_charset(given, sent):
    assert answer_content_type(given) == sent


@pytest.mark.parametrize(
    "line",
    [
        f"GET /api/v1/acme/cb?patchworks_signature={SIG}&sku=1 HTTP/1.1",
        f"GET /api/v1/acme/cb?PATCHWORKS%5Fsignature%3D{SIG}",
        f"headers: patchworks-signature: {SIG}",
        f"[('host', 'x'), ('patchworks-signature', '{SIG}')]",
        f"{{'patchworks-signature': '{SIG}'}}",
        f"(b'patchworks-signature', b'{SIG}')",
    ],
)
def test_redact_blanks_signature_values(line):
    assert SIG not in redact(line)
    assert REDACTED in redact(line)


def test_the_filter_scrubs_messages_arguments_and_tracebacks():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactSignatures())
    logger = logging.getLogger("test.redact")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("url %s", f"/cb?patchworks_signature={SIG}")
        try:
            raise ValueError(f"Bad URL: /cb?patchworks_signature={SIG}")
        except ValueError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = out.getvalue()
    assert SIG not in text
    assert "ValueError: Bad URL: /cb?patchworks_signature=[redacted]" in text


def test_logs_are_private_and_older_ones_are_tightened(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir(mode=0o755)
    logs.chmod(0o755)
    old = logs / "edge.log"
    old.write_text("before\n")
    old.chmod(0o644)
    with open_private_log(old) as f:
        f.write(b"after\n")
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert stat.S_IMODE(logs.stat().st_mode) == 0o700
    assert old.read_text() == "before\nafter\n"  # appended to, not replaced
    with open_private_log(tmp_path / "new" / "x.log"):
        pass
    assert stat.S_IMODE((tmp_path / "new" / "x.log").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


@pytest.mark.parametrize("depth", [5_000, 100_000])
def test_json_nested_past_the_parser_is_taken_as_text(depth):
    body = b"[" * depth + b"]" * depth
    assert body_payload(body, ()) == body.decode()
    assert body_payload(body, (("content-type", "application/json"),)) == body.decode()
    assert body_payload(b"[[[1]]]", ()) == [[[1]]]


def test_install_puts_the_filter_on_every_handler():
    from edge import redact as redact_module

    logger = logging.getLogger("test.redact.install")
    handlers = [logging.StreamHandler(io.StringIO()), logging.StreamHandler(io.StringIO())]
    for handler in handlers:
        logger.addHandler(handler)
    try:
        redact_module.install(logger)
        assert all(
            any(isinstance(f, RedactSignatures) for f in handler.filters) for handler in handlers
        )
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
