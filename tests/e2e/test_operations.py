"""What an operator sees: `make run` under a terminal and Ctrl-C, and a port that is taken.

Real processes: `make run` is driven through a pseudo-terminal, because Ctrl-C is the terminal
sending SIGINT to its foreground process group, make included.
"""

from __future__ import annotations

import os
import pty
import select
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from boomerang.local import EDGE_KEY_NAME, free_port
from boomerang.sdk import Client
from tests.e2e.conftest import ADMIN_KEY, start_stack

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


def _read_until(fd: int, needle: bytes | None, timeout: float) -> bytes:
    """Reads the terminal until `needle` appears, EOF, or `timeout`; returns what was read."""
    out = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        out += chunk
        if needle is not None and needle in out:
            break
    return out


def test_make_run_stops_cleanly_on_ctrl_c(tmp_path):
    # A Makefile of its own so the state lands in tmp_path, run by the real make like `make run`.
    (tmp_path / "Makefile").write_text(f"run:\n\t{sys.executable} {REPO / 'scripts' / 'run.py'}\n")
    env = {
        **os.environ,
        "BOOMERANG_PORT": str(free_port()),
        "EDGE_PORT": str(free_port()),
        "CONSOLE_PORT": str(free_port()),
    }
    # As from a user's shell, not from inside `make test` (a sub-make prints "Leaving directory").
    for name in ("MAKELEVEL", "MAKEFLAGS", "MFLAGS"):
        env.pop(name, None)
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes make, on the pseudo-terminal
        os.chdir(tmp_path)
        os.execvpe("make", ["make", "run"], env)
    try:
        started = _read_until(fd, b"Ctrl-C stops them all", 60)
        assert b"Demo callback URL" in started, started.decode(errors="replace")
        assert f"console (web):        http://127.0.0.1:{env['CONSOLE_PORT']}".encode() in started
        os.write(fd, b"\x03")  # what the terminal does on Ctrl-C
        rest = _read_until(fd, None, 30)
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    text = rest.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, text
    lines = [line for line in text.replace("^C", "").splitlines() if line.strip()]
    assert lines == ["Boomerang stopped."], text
    for log in ("edge.log", "console.log"):
        assert "Traceback" not in (tmp_path / ".boomerang" / "logs" / log).read_text()


@pytest.fixture
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _one_line_error(command: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(
        command,
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_control_plane_on_a_taken_port_says_so_in_one_line(tmp_path, taken_port):
    line = _one_line_error(
        [sys.executable, "-m", "control_plane", "serve", "--migrate"],
        {
            "DATABASE_URL": f"sqlite:///{tmp_path}/b.db",
            "BOOMERANG_LISTEN": f"127.0.0.1:{taken_port}",
        },
        tmp_path,
    )
    assert f"127.0.0.1:{taken_port}" in line and "BOOMERANG_LISTEN" in line


def test_edge_on_a_taken_port_says_so_in_one_line(tmp_path, taken_port):
    line = _one_line_error(
        [sys.executable, "-m", "edge"],
        {"BOOMERANG_API_KEY": "bmk_unused", "EDGE_PORT": str(taken_port)},
        tmp_path,
    )
    assert f"127.0.0.1:{taken_port}" in line and "EDGE_PORT" in line


def test_make_run_on_a_taken_port_names_the_setting(tmp_path, taken_port):
    line = _one_line_error(
        [sys.executable, str(REPO / "scripts" / "run.py")],
        {
            "BOOMERANG_PORT": str(free_port()),
            "EDGE_PORT": str(taken_port),
            "CONSOLE_PORT": str(free_port()),
        },
        tmp_path,
    )
    assert str(taken_port) in line and "EDGE_PORT" in line


def test_restarting_a_stack_leaves_one_live_edge_key(tmp_path):
    stack = start_stack(tmp_path)
    try:
        first = stack.edge_key
        stack.stop()
        stack.edge_key = ""  # a new `make run`: the stack object starts afresh
        stack.start_control_plane()
        stack.start_edge()  # serves with the new key: the old one is revoked
        assert stack.edge_key != first
        with Client(stack.control_target, ADMIN_KEY) as client:
            live = [
                k
                for k in client.list_api_keys()
                if k.name == EDGE_KEY_NAME and not k.HasField("revoke_time")
            ]
        assert len(live) == 1
    finally:
        stack.stop()
