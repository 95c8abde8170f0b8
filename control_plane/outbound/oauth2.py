"""OAuth2 client credentials: access tokens fetched with authlib, cached until they expire.

Tokens are cached per connection id and revision (an updated connection starts afresh), shared
by every run on this runner; one fetch at a time per connection (the others wait for its
token). A token is used until `LEEWAY_S` before its `expires_in`, or for `MAX_TOKEN_AGE_S` when
the server gives none; a 401 from the API drops it (`forget`) so the next call fetches anew.

The token request goes through the runner's guarded transport: the token endpoint obeys the
same egress rule and response cap as any call, asks for an unencoded answer (so its size is
its size), and is bounded by the caller's timeout.
"""

from __future__ import annotations

import asyncio
import collections
import time
from dataclasses import dataclass

import httpx
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError

from control_plane.outbound.credentials import OAuth2ClientCredentials

LEEWAY_S = 30
MAX_TOKEN_AGE_S = 3600
#: Connections whose tokens a runner keeps (least recently used out).
MAX_CACHED = 1024
_HEADERS = {
    "Accept": "application/json",
    "Accept-Encoding": "identity",
    "Content-Type": "application/x-www-form-urlencoded;charset=UTF-8",
}


class TokenError(Exception):
    """The token endpoint did not give a token; `status` is its HTTP status when it answered."""

    type = "oauth2_token"

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class _Entry:
    lock: asyncio.Lock
    token: str = ""
    expires: float = 0.0  # time.monotonic()


class _Shared(httpx.AsyncBaseTransport):
    """The runner's transport lent to authlib's client: closing the client leaves it open."""

    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = transport

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.transport.handle_async_request(request)

    async def aclose(self) -> None:
        pass


class TokenCache:
    def __init__(self, transport: httpx.AsyncBaseTransport) -> None:
        self.transport = _Shared(transport)
        self.entries: collections.OrderedDict[tuple[str, str], _Entry] = collections.OrderedDict()
        #: Tokens fetched so far (for tests and logs: how often the cache missed).
        self.fetches = 0

    async def token(
        self, key: tuple[str, str], credentials: OAuth2ClientCredentials, timeout_s: float
    ) -> str:
        """A valid access token for the connection `key` (id, revision)."""
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = _Entry(asyncio.Lock())
            while len(self.entries) > MAX_CACHED:
                self.entries.popitem(last=False)
        self.entries.move_to_end(key)
        async with entry.lock:
            if not entry.token or time.monotonic() >= entry.expires:
                entry.token, entry.expires = await self._fetch(credentials, timeout_s)
            return entry.token

    def forget(self, key: tuple[str, str], token: str) -> None:
        """Drops `token` (refused by the API) unless another call already replaced it."""
        entry = self.entries.get(key)
        if entry is not None and entry.token == token:
            entry.token, entry.expires = "", 0.0

    async def _fetch(self, credentials: OAuth2ClientCredentials, timeout_s: float):
        client = AsyncOAuth2Client(
            client_id=credentials.client_id,
            client_secret=credentials.client_secret,
            scope=" ".join(credentials.scopes) or None,
            transport=self.transport,
            trust_env=False,
            follow_redirects=False,
        )
        extra = {"audience": credentials.audience} if credentials.audience else {}
        started = time.monotonic()
        try:
            async with client, asyncio.timeout(timeout_s):
                token = await client.fetch_token(
                    credentials.token_url,
                    grant_type="client_credentials",
                    headers=_HEADERS,
                    timeout=timeout_s,
                    **extra,
                )
        except TimeoutError:
            raise TokenError(
                f"the OAuth2 token endpoint did not answer within {timeout_s:g} s"
            ) from None
        except OAuthError as exc:
            raise TokenError(f"the OAuth2 token endpoint refused: {_short(str(exc))}") from None
        except httpx.HTTPStatusError as exc:
            status = exc.response.status_code
            raise TokenError(f"the OAuth2 token endpoint answered {status}", status) from None
        except httpx.HTTPError as exc:  # refused, reset, timed out, an encoded answer
            what = _short(str(exc)) or type(exc).__name__
            raise TokenError(f"cannot reach the OAuth2 token endpoint: {what}") from None
        except ValueError as exc:  # not a JSON object
            raise TokenError(f"the OAuth2 token endpoint's answer: {_short(str(exc))}") from None
        self.fetches += 1
        access = token.get("access_token")
        if not isinstance(access, str) or not access:
            raise TokenError("the OAuth2 token endpoint's answer has no access_token")
        expires_in = token.get("expires_in")
        age = MAX_TOKEN_AGE_S
        if isinstance(expires_in, int | float) and not isinstance(expires_in, bool):
            age = min(age, float(expires_in) - LEEWAY_S)
        return access, started + age


def _short(text: str) -> str:
    return text if len(text) <= 300 else text[:300] + "…"
