"""Checks of the callback settings issue 8 added: HMAC, allowed origins (CORS), mode,
async_after_ms and RegenerateSignature's grace period (docs/callback-security.md).

Each check adds what is wrong to a `Violations` and returns the value to store, so an
UpdateCallback with several bad fields names them all at once, as the other settings do.
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from control_plane.domain.errors import Violations, echo

# HmacScheme values (resources.proto), stored as they are.
HMAC_NONE, HMAC_PATCHWORKS, HMAC_STANDARD_WEBHOOKS = 0, 1, 2
# CallbackMode values (resources.proto): UNSPECIFIED and SYNC behave the same.
MODES = (0, 1, 2)

PATCHWORKS_SECRET_BYTES = (16, 256)
WHSEC_PREFIX = "whsec_"
WHSEC_KEY_BYTES = (24, 64)

MAX_ORIGINS = 20
ANY_ORIGIN = "*"
# What a browser sends in `Origin`: scheme://host[:port], lowercase, no path. A host is DNS labels
# or a bracketed IPv6 address; anything else could never match a real Origin header, so it is
# refused rather than stored as a silent no-op.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
ORIGIN_RE = re.compile(
    rf"(?P<scheme>https?)://(?P<host>{_LABEL}(?:\.{_LABEL})*|\[[0-9a-f:.]+\])(?::(?P<port>[0-9]{{1,5}}))?"
)
_DEFAULT_PORTS = {"http": 80, "https": 443}

MAX_ASYNC_AFTER_MS = 300_000
MAX_GRACE_MS = 30 * 24 * 3600 * 1000  # 30 days


def hmac_secret(v: Violations, scheme: int, secret: str) -> str:
    """The secret to store for `scheme` ("" when the scheme is none)."""
    if scheme == HMAC_NONE:
        if secret:
            v.add("hmac_secret", "must be empty when hmac_scheme is UNSPECIFIED (no HMAC check)")
        return ""
    if scheme == HMAC_PATCHWORKS:
        low, high = PATCHWORKS_SECRET_BYTES
        if not low <= len(secret.encode()) <= high:
            # Never quote the secret back: errors are logged and shown.
            v.add("hmac_secret", f"must be {low}-{high} bytes of UTF-8 text for PATCHWORKS")
        return secret
    low, high = WHSEC_KEY_BYTES
    rule = f'must be "{WHSEC_PREFIX}" and the base64 of {low}-{high} bytes for STANDARD_WEBHOOKS'
    if not secret.startswith(WHSEC_PREFIX):
        v.add("hmac_secret", rule)
        return secret
    try:
        key = base64.b64decode(secret[len(WHSEC_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        v.add("hmac_secret", rule)
        return secret
    if not low <= len(key) <= high:
        v.add("hmac_secret", rule)
    return secret


def allowed_origins(v: Violations, origins: list[str]) -> str:
    """The origins as stored (a JSON list), each checked against what browsers send."""
    if len(origins) > MAX_ORIGINS:
        v.add("allowed_origins", f"at most {MAX_ORIGINS} entries")
        return "[]"
    if ANY_ORIGIN in origins and len(origins) > 1:
        v.add("allowed_origins", f'"{ANY_ORIGIN}" must be the only entry')
    seen: set[str] = set()
    for i, origin in enumerate(origins):
        path = f"allowed_origins[{i}]"
        if origin in seen:
            v.add(path, f"duplicate of an earlier entry {echo(origin)}")
            continue
        seen.add(origin)
        if origin == ANY_ORIGIN:
            continue
        m = ORIGIN_RE.fullmatch(origin)
        if m is None:
            v.add(
                path,
                f"{echo(origin)} must be scheme://host[:port] with scheme http or https, a "
                'lowercase host, no path or trailing slash (or the single entry "*")',
            )
            continue
        port = m.group("port")
        if port is not None and not 1 <= int(port) <= 65535:
            v.add(path, f"{echo(origin)}: port must be 1-65535")
        elif port is not None and int(port) == _DEFAULT_PORTS[m.group("scheme")]:
            # Browsers leave the default port out of Origin: this entry would never match.
            v.add(path, f"{echo(origin)}: leave out the scheme's default port")
    return json.dumps(list(origins))


def mode(v: Violations, value: int) -> int:
    if value not in MODES:
        v.add(
            "mode", "must be CALLBACK_MODE_UNSPECIFIED, CALLBACK_MODE_SYNC or CALLBACK_MODE_WEBHOOK"
        )
    return value


def async_after_ms(v: Violations, value: int) -> int:
    """0 (never), or 1..MAX_ASYNC_AFTER_MS; `below_timeout` checks it against the timeout."""
    if not 0 <= value <= MAX_ASYNC_AFTER_MS:
        v.add("async_after_ms", f"must be 0 (never) or 1-{MAX_ASYNC_AFTER_MS}")
    return value


def below_timeout(v: Violations, async_ms: int, timeout_ms: int, field: str) -> None:
    """A 202 after `async_ms` only makes sense before the 504 at `timeout_ms`."""
    if async_ms and async_ms >= timeout_ms:
        v.add(
            field,
            f"async_after_ms ({async_ms}) must be below timeout_ms ({timeout_ms}): the caller "
            "would get 504 first",
        )


def grace_ms(v: Violations, ms: int) -> int:
    if not 0 <= ms <= MAX_GRACE_MS:
        v.add("grace_period", "must be between 0 and 30 days")
    return ms


def origins_list(stored: str) -> list[str]:
    return json.loads(stored or "[]")
