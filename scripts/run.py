"""`make run`: the control plane, the edge and the web console on SQLite, with a demo callback.

State lives in .boomerang/ (database, the admin key, the key that seals callback signatures,
the edge's last-known-good copy), readable by you only. The edge gets an EDGE-scoped key of its
own, made at start (docs/security.md). Ports:
BOOMERANG_PORT (gRPC, default 50051), EDGE_PORT (HTTP, default 8080) and CONSOLE_PORT (the
console, HTTP, default 8090; sign in with the admin key). Ctrl-C stops them all.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

from boomerang.demo import ensure_demo
from boomerang.local import LocalStack
from boomerang.sdk import Client

STATE = Path(".boomerang")


def admin_key() -> str:
    """The installation-wide key for this checkout, made once and kept readable only by you."""
    path = STATE / "admin-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("bmk_" + secrets.token_urlsafe(32))
    return path.read_text().strip()


class Stop(Exception):
    """Ctrl-C or SIGTERM: stop the services and say goodbye."""


def _stop(*_) -> None:
    raise Stop


def busy(port: int) -> str:
    """Why 127.0.0.1:`port` cannot be listened on, or "" when it can."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the servers bind
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as e:
            return os.strerror(e.errno) if e.errno else str(e)
    return ""


def take_terminal() -> Callable[[], None]:
    """Makes this process group the terminal's foreground, so Ctrl-C reaches this script and
    its services but not `make`: make dies of a SIGINT it receives itself (GNU make re-raises
    it), which would turn a clean stop into an error. Returns what gives the terminal back."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR)
        previous = os.tcgetpgrp(tty)
    except OSError:
        return lambda: None  # no terminal (CI, tests): nothing to take
    if previous != os.getpgrp() or os.getpid() == os.getpgrp():
        os.close(tty)
        return lambda: None  # not the foreground, or already leading a group (run directly)

    def hand_over(group: int) -> None:
        old = signal.signal(signal.SIGTTOU, signal.SIG_IGN)  # a background group may set it
        try:
            os.tcsetpgrp(tty, group)
        finally:
            signal.signal(signal.SIGTTOU, old)

    os.setpgid(0, 0)
    hand_over(os.getpgrp())

    def give_back() -> None:
        try:
            hand_over(previous)
        except OSError:
            pass  # make is gone; the shell takes the terminal back itself
        os.close(tty)

    return give_back


def main() -> int:
    ports = {
        "BOOMERANG_PORT": int(os.environ.get("BOOMERANG_PORT", "50051")),
        "EDGE_PORT": int(os.environ.get("EDGE_PORT", "8080")),
        "CONSOLE_PORT": int(os.environ.get("CONSOLE_PORT", "8090")),
    }
    for setting, port in ports.items():
        problem = busy(port)
        if problem:
            print(
                f"cannot listen on 127.0.0.1:{port} ({problem}); set {setting} to another port, "
                f"e.g. {setting}={port + 1} make run",
                file=sys.stderr,
            )
            return 2
    STATE.mkdir(mode=0o700, exist_ok=True)
    STATE.chmod(0o700)  # this checkout's own directory: private even if an older run made it 0755
    key = admin_key()
    stack = LocalStack(
        state_dir=STATE,
        admin_key=key,
        control_port=ports["BOOMERANG_PORT"],
        edge_port=ports["EDGE_PORT"],
        console_port=ports["CONSOLE_PORT"],
        log_dir=STATE / "logs",
    )
    give_back = take_terminal()
    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    try:
        stack.start_control_plane()
        with Client(stack.control_target, key) as client:
            url = ensure_demo(client)
        stack.start_edge()
        stack.start_console()
        print(
            f"\nBoomerang is running (logs in {STATE / 'logs'}).\n"
            f"  control plane (gRPC): {stack.control_target}"
            f"   authenticate with: authorization: Bearer {key}\n"
            f"  edge (HTTP):          {stack.edge_url}\n"
            f"  console (web):        {stack.console_url}"
            f"   sign in with the admin key ({STATE / 'admin-key'})\n"
            f"\nDemo callback URL:\n{url}\n"
            f"\nTry it:\ncurl '{url}&sku=XYZ-9'\n"
            "\nCtrl-C stops them all.",
            flush=True,
        )
        services = {"control plane": stack.control, "edge": stack.edge, "console": stack.console}
        while all(process.poll() is None for process in services.values()):
            time.sleep(0.5)
        # They all got Ctrl-C too and may have exited before this process ran its handler.
        time.sleep(0.5)
        name = next(name for name, process in services.items() if process.poll() is not None)
        print(f"the {name} exited; see {STATE / 'logs'}", file=sys.stderr)
        return 1
    except Stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the stop
        stack.stop()
        print("Boomerang stopped.", flush=True)
        return 0
    finally:
        stack.stop()
        give_back()


if __name__ == "__main__":
    sys.exit(main())
