"""The console as an operator starts it: `python -m console` on its own, and a port that is
taken, refused in one line naming the setting (alone, and from `make run`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from boomerang.local import free_port

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def taken_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def _one_line_error(command: list[str], env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(
        command, env={**os.environ, **env}, cwd=cwd, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(errors) == 1, proc.stderr
    return errors[0]


def test_console_on_a_taken_port_says_so_in_one_line(tmp_path, taken_port):
    line = _one_line_error(
        [sys.executable, "-m", "console"], {"CONSOLE_PORT": str(taken_port)}, tmp_path
    )
    assert f"127.0.0.1:{taken_port}" in line and "CONSOLE_PORT" in line


def test_console_refuses_bad_settings_in_one_line(tmp_path):
    line = _one_line_error(
        [sys.executable, "-m", "console"], {"CONSOLE_SESSION_IDLE_S": "1"}, tmp_path
    )
    assert line.startswith("console: CONSOLE_SESSION_IDLE_S")


def test_make_run_on_a_taken_console_port_names_the_setting(tmp_path, taken_port):
    line = _one_line_error(
        [sys.executable, str(REPO / "scripts" / "run.py")],
        {
            "BOOMERANG_PORT": str(free_port()),
            "EDGE_PORT": str(free_port()),
            "CONSOLE_PORT": str(taken_port),
        },
        tmp_path,
    )
    assert str(taken_port) in line and "CONSOLE_PORT" in line


def test_console_runs_on_its_own_and_stops_on_sigterm(tmp_path):
    """Without a control plane it still serves its sign-in page (a sign-in then says the
    control plane cannot be reached), and SIGTERM stops it with status 0."""
    port = free_port()
    env = {**os.environ, "CONSOLE_PORT": str(port), "BOOMERANG_CONTROL_PLANE": "127.0.0.1:9"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "console"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/sign-in", timeout=1) as r:
                    assert r.status == 200 and b"API key" in r.read()
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "the console did not start"
                time.sleep(0.1)
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert f"console listening on http://127.0.0.1:{port}" in out
    assert "Traceback" not in out
