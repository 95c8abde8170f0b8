"""The session store's bounds (idle and absolute expiry, the most sessions held) and its
cookies, and the console's settings; no processes needed."""

from __future__ import annotations

import pytest

from console.config import ConsoleSettings
from console.sessions import SessionStore


class FakeClient:
    """Stands in for the SDK client only to see it closed (the store never calls it)."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def store(clock: Clock, **kw) -> SessionStore:
    kw = {"idle_s": 60, "max_s": 300, "max_sessions": 3, **kw}
    return SessionStore(clock=clock, **kw)


def test_a_cookie_names_its_session_and_nothing_else_does():
    sessions = store(Clock())
    session, cookie = sessions.create(FakeClient(), installation_wide=True, company="")
    assert sessions.get(cookie) is session
    session_id, signature = cookie.rsplit(".", 1)
    assert session_id == session.id
    # Another first character of the signature (the last one's low bits are padding in base64).
    other = "B" if signature[0] == "A" else "A"
    for forged in (session_id, f"{session_id}.{other}{signature[1:]}", f"x{cookie}", "", None):
        assert sessions.get(forged) is None
    # Another process's cookies (another secret) are not this one's.
    assert store(Clock()).get(cookie) is None


def test_sessions_end_when_idle_and_at_their_age_limit():
    clock = Clock()
    sessions = store(clock)
    idle_client, busy_client = FakeClient(), FakeClient()
    _, idle = sessions.create(idle_client, installation_wide=False, company="a")
    _, busy = sessions.create(busy_client, installation_wide=False, company="a")
    for _ in range(4):  # busy is used every 50 s; idle never again
        clock.now += 50
        assert sessions.get(busy) is not None
    assert sessions.get(idle) is None and idle_client.closed
    clock.now += 50  # 250 s after sign-in, still fine; then past 300 s, however busy
    assert sessions.get(busy) is not None
    clock.now += 51
    assert sessions.get(busy) is None and busy_client.closed
    assert len(sessions) == 0


def test_signing_in_past_the_limit_ends_the_least_recently_used_session():
    clock = Clock()
    sessions = store(clock)
    clients = [FakeClient() for _ in range(4)]
    cookies = [sessions.create(c, installation_wide=True, company="")[1] for c in clients[:3]]
    sessions.get(cookies[0])  # the first is used again: the second is now the oldest
    sessions.create(clients[3], installation_wide=True, company="")
    assert len(sessions) == 3
    assert sessions.get(cookies[1]) is None and clients[1].closed
    assert sessions.get(cookies[0]) is not None and not clients[0].closed


def test_sweep_and_end_close_channels():
    clock = Clock()
    sessions = store(clock)
    a, b = FakeClient(), FakeClient()
    session_a, _ = sessions.create(a, installation_wide=True, company="")
    sessions.create(b, installation_wide=True, company="")
    sessions.end(session_a)
    assert a.closed and len(sessions) == 1
    clock.now += 61
    assert sessions.sweep() == 1 and b.closed


def test_settings_from_the_environment():
    settings = ConsoleSettings.from_env(
        {"CONSOLE_PORT": "9000", "BOOMERANG_CONTROL_PLANE": "cp:1", "CONSOLE_SECURE_COOKIES": "1"}
    )
    assert (settings.port, settings.control_plane_target, settings.secure_cookies) == (
        9000,
        "cp:1",
        True,
    )
    assert ConsoleSettings.from_env({}).port == 8090


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONSOLE_PORT": "http"}, "CONSOLE_PORT must be a number"),
        ({"CONSOLE_PORT": "70000"}, "CONSOLE_PORT must be 0-65535"),
        ({"CONSOLE_SESSION_IDLE_S": "5"}, "CONSOLE_SESSION_IDLE_S"),
        ({"CONSOLE_SESSION_MAX_S": "100"}, "CONSOLE_SESSION_MAX_S"),
        ({"CONSOLE_MAX_SESSIONS": "0"}, "CONSOLE_MAX_SESSIONS"),
        ({"CONSOLE_SECURE_COOKIES": "maybe"}, "CONSOLE_SECURE_COOKIES must be 1 or 0"),
        ({"BOOMERANG_TLS_CA": "/no/such/ca.pem"}, "no such file"),
        ({"BOOMERANG_TLS_CLIENT_CERT": "/x.pem"}, "go together"),
    ],
)
def test_bad_settings_are_refused_naming_the_variable(env, message):
    with pytest.raises(ValueError, match=message):
        ConsoleSettings.from_env(env)
