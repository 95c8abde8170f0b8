"""Sessions: kept in this process's memory, named by a random id in a signed cookie.

The API key a user signs in with lives only here, inside the session's SDK client; the cookie
carries nothing but the session id (32 random bytes) and itsdangerous's signature over it, made
with a secret drawn when the process starts. So a cookie reveals nothing, cannot be forged, and
stops working when the console restarts (everyone signs in again: sessions are the only state
the console has, and it does not keep them on disk). See docs/console.md.

Bounds: a session ends after `idle_s` without a request and `max_s` after sign-in, whichever
comes first; at most `max_sessions` are held, and signing in past that ends the least recently
used one. Ending a session closes its gRPC channel.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from itsdangerous import BadSignature, Signer

from boomerang.sdk import Client

#: The session cookie's name; `__Host-` is added under TLS (the browser then insists on Secure,
#: path "/" and no Domain, so no other host can plant one).
COOKIE = "boomerang_session"
#: The cookie that carries the sign-in form's CSRF token (before any session exists).
SIGN_IN_COOKIE = "boomerang_sign_in"


@dataclass
class Session:
    id: str
    client: Client
    #: Sent with every form and checked on every change (console/csrf.py).
    csrf_token: str
    #: True for an installation-wide key (it may see every company and the edges).
    installation_wide: bool
    #: The companies this key sees when it is a company key (one slug), for the navigation.
    company: str
    created: float
    last_seen: float
    #: One-shot messages shown on the next page ("Flow created.").
    flashes: list[str] = field(default_factory=list)


class SessionStore:
    """Sessions by id, least recently used first; safe to use from the event loop's thread."""

    def __init__(
        self,
        *,
        idle_s: float,
        max_s: float,
        max_sessions: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.idle_s = idle_s
        self.max_s = max_s
        self.max_sessions = max_sessions
        self._clock = clock
        self._sessions: OrderedDict[str, Session] = OrderedDict()
        self._lock = threading.Lock()
        # A fresh secret per process: sessions do not outlive it, so neither need cookies.
        self._signer = Signer(secrets.token_bytes(32), salt="boomerang-console-session")

    def __len__(self) -> int:
        return len(self._sessions)

    def create(
        self, client: Client, *, installation_wide: bool, company: str
    ) -> tuple[Session, str]:
        """A new session for `client`; returns it and the cookie value that names it."""
        now = self._clock()
        session = Session(
            id=secrets.token_urlsafe(32),
            client=client,
            csrf_token=secrets.token_urlsafe(32),
            installation_wide=installation_wide,
            company=company,
            created=now,
            last_seen=now,
        )
        evicted: list[Session] = []
        with self._lock:
            self._sessions[session.id] = session
            while len(self._sessions) > self.max_sessions:
                evicted.append(self._sessions.popitem(last=False)[1])
        for old in evicted:
            old.client.close()
        return session, self.sign(session.id)

    def sign(self, value: str) -> str:
        return self._signer.sign(value).decode()

    def unsign(self, cookie: str | None) -> str | None:
        """The value a cookie this process signed carries, or None (absent, forged, garbled)."""
        if not cookie:
            return None
        try:
            return self._signer.unsign(cookie).decode()
        except (BadSignature, UnicodeDecodeError):
            return None

    def get(self, cookie: str | None) -> Session | None:
        """The live session a cookie names, its idle clock reset; None when there is none."""
        session_id = self.unsign(cookie)
        if session_id is None:
            return None
        now = self._clock()
        with self._lock:
            session = self._sessions.get(session_id)
            if session is None:
                return None
            if now - session.last_seen > self.idle_s or now - session.created > self.max_s:
                del self._sessions[session_id]
                expired = session
            else:
                session.last_seen = now
                self._sessions.move_to_end(session_id)
                return session
        expired.client.close()
        return None

    def end(self, session: Session) -> None:
        with self._lock:
            self._sessions.pop(session.id, None)
        session.client.close()

    def sweep(self) -> int:
        """Ends every expired session; returns how many (run now and then by the app)."""
        now = self._clock()
        with self._lock:
            expired = [
                s
                for s in self._sessions.values()
                if now - s.last_seen > self.idle_s or now - s.created > self.max_s
            ]
            for s in expired:
                del self._sessions[s.id]
        for s in expired:
            s.client.close()
        return len(expired)

    def close(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
            self._sessions.clear()
        for s in sessions:
            s.client.close()
