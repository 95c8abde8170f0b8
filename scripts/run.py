"""`make run`: the control plane and the edge on SQLite, with a demo callback to try.

State lives in .boomerang/ (database, the admin key, the key that seals callback signatures,
the edge's last-known-good copy), readable by you only. The edge gets an EDGE-scoped key of its
own, made at start (docs/security.md). Ports:
BOOMERANG_PORT (gRPC, default 50051) and EDGE_PORT (HTTP, default 8080). Ctrl-C stops both.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
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


def main() -> int:
    STATE.mkdir(mode=0o700, exist_ok=True)
    STATE.chmod(0o700)  # this checkout's own directory: private even if an older run made it 0755
    key = admin_key()
    stack = LocalStack(
        state_dir=STATE,
        admin_key=key,
        control_port=int(os.environ.get("BOOMERANG_PORT", "50051")),
        edge_port=int(os.environ.get("EDGE_PORT", "8080")),
        log_dir=STATE / "logs",
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        stack.start_control_plane()
        with Client(stack.control_target, key) as client:
            url = ensure_demo(client)
        stack.start_edge()
        print(
            f"\nBoomerang is running (logs in {STATE / 'logs'}).\n"
            f"  control plane (gRPC): {stack.control_target}"
            f"   authenticate with: authorization: Bearer {key}\n"
            f"  edge (HTTP):          {stack.edge_url}\n"
            f"\nDemo callback URL:\n{url}\n"
            f"\nTry it:\ncurl '{url}&sku=XYZ-9'\n"
            "\nCtrl-C stops both.",
            flush=True,
        )
        while stack.control.poll() is None and stack.edge.poll() is None:
            time.sleep(0.5)
        print("a process exited; see the logs", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()


if __name__ == "__main__":
    sys.exit(main())
