"""Field rules shared by every request: slugs, names, ids, timestamps, pages.

Every rule matches the whole value (re.fullmatch): `$` would also match before a final newline,
and `acme\\n` would become a second company next to `acme`.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata

from google.protobuf import timestamp_pb2

from control_plane.domain.errors import Violations, invalid

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
ULID_RE = re.compile(r"[0-9a-hjkmnp-tv-z]{26}")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
MAX_NAME_CHARS = 200
# A page token is a base64 ULID (36 characters); anything much longer is not one of ours.
MAX_PAGE_TOKEN_CHARS = 64
# Timestamp's own documented range: 0001-01-01T00:00:00Z to 9999-12-31T23:59:59.999999999Z.
MIN_TIMESTAMP_SECONDS = -62_135_596_800
MAX_TIMESTAMP_SECONDS = 253_402_300_799

# Bidirectional formatting characters: they reorder how the text around them is displayed, so a
# name could render as something other than what it is (CVE-2021-42574, "Trojan Source").
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
# Cc: C0/C1 controls, NUL included (PostgreSQL cannot store it at all); Zl/Zp: line breaks.
_REFUSED_CATEGORIES = frozenset({"Cc", "Zl", "Zp", "Cs"})


def is_slug(value: str) -> bool:
    return SLUG_RE.fullmatch(value) is not None


def is_id(value: str) -> bool:
    return ULID_RE.fullmatch(value) is not None


def check_slug(v: Violations, field_name: str, value: str) -> None:
    if not is_slug(value):
        v.add(
            field_name,
            "must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
        )


def unprintable(value: str) -> str:
    """Why `value` cannot be shown as a name ("" if it can): control or bidi characters."""
    for ch in value:
        if ch in _BIDI_CONTROLS:
            return f"must not contain bidirectional formatting characters (U+{ord(ch):04X})"
        if unicodedata.category(ch) in _REFUSED_CATEGORIES:
            return f"must not contain control characters (U+{ord(ch):04X})"
    return ""


def check_name(v: Violations, field_name: str, value: str, *, required: bool = True) -> None:
    if len(value) > MAX_NAME_CHARS:
        v.add(field_name, f"must be at most {MAX_NAME_CHARS} characters")
    elif required and not value.strip():
        v.add(field_name, "must not be empty")
    elif why := unprintable(value):
        v.add(field_name, why)


def require_id(field_name: str, value: str) -> None:
    """Ids are lowercase ULIDs; anything else can only be a mistake, so say which field."""
    if not is_id(value):
        raise invalid([(field_name, "must be a lowercase ULID (26 characters)")])


def check_timestamp(v: Violations, field_name: str, value: timestamp_pb2.Timestamp) -> None:
    """Timestamps outside Timestamp's documented range cannot become a datetime at all."""
    if not MIN_TIMESTAMP_SECONDS <= value.seconds <= MAX_TIMESTAMP_SECONDS:
        v.add(field_name, "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z")
    elif not 0 <= value.nanos <= 999_999_999:
        v.add(f"{field_name}.nanos", "must be between 0 and 999999999")


def page(page_size: int, page_token: str) -> tuple[int, str]:
    """Returns (limit, after_id). Tokens are the last id of the previous page, opaque to callers."""
    v = Violations()
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        v.add("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    after = ""
    if page_token:
        after = _token_id(page_token)
        if not is_id(after):
            v.add("page_token", "is not a token returned by this list")
    v.raise_if_any()
    return (page_size or DEFAULT_PAGE_SIZE), after


def _token_id(page_token: str) -> str:
    """The id inside a page token, or "" when it cannot be one."""
    if len(page_token) > MAX_PAGE_TOKEN_CHARS:
        return ""
    try:
        return base64.urlsafe_b64decode(page_token.encode()).decode()
    except (ValueError, binascii.Error, UnicodeError):
        return ""


def paginate(query, limit: int) -> tuple[list, str]:
    """Runs an ordered query for one page; the token is empty on the last page.

    One row more than the page is read, so a page that happens to end the list says so instead
    of sending the caller for an empty page.
    """
    rows = list(query.limit(limit + 1))
    if len(rows) <= limit:
        return rows, ""
    rows = rows[:limit]
    return rows, base64.urlsafe_b64encode(rows[-1].id.encode()).decode()
