"""Field rules shared by every request: slugs, names, ids, pages."""

from __future__ import annotations

import base64
import re

from control_plane.domain.errors import Violations, invalid

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ULID_RE = re.compile(r"^[0-9a-hjkmnp-tv-z]{26}$")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


def check_slug(v: Violations, field_name: str, value: str) -> None:
    if not SLUG_RE.match(value):
        v.add(
            field_name,
            "must be 1-63 lowercase letters, digits, '_' or '-', starting with a letter or digit",
        )


def check_name(v: Violations, field_name: str, value: str, *, required: bool = True) -> None:
    if required and not value.strip():
        v.add(field_name, "must not be empty")
    elif len(value) > 200:
        v.add(field_name, "must be at most 200 characters")


def require_id(field_name: str, value: str) -> None:
    """Ids are lowercase ULIDs; anything else can only be a mistake, so say which field."""
    if not ULID_RE.match(value):
        raise invalid([(field_name, "must be a lowercase ULID (26 characters)")])


def page(page_size: int, page_token: str) -> tuple[int, str]:
    """Returns (limit, after_id). Tokens are the last id of the previous page, opaque to callers."""
    v = Violations()
    if page_size < 0 or page_size > MAX_PAGE_SIZE:
        v.add("page_size", f"must be between 0 and {MAX_PAGE_SIZE}")
    after = ""
    if page_token:
        try:
            after = base64.urlsafe_b64decode(page_token.encode()).decode()
        except ValueError:
            after = "!"
        if not ULID_RE.match(after):
            v.add("page_token", "is not a token returned by this list")
    v.raise_if_any()
    return (page_size or DEFAULT_PAGE_SIZE), after


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
