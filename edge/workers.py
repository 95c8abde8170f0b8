"""EDGE_WORKERS > 1: several edge processes on one port, and the process that looks after them.

One edge process is one event loop, so one core at most; the edge's work per request is CPU
(Sanic's parsing, the RunFlow stream), so an edge on a machine with more cores serves more with
more processes. `python -m edge` with EDGE_WORKERS=N starts N children, each `python -m edge`
with EDGE_WORKERS=1, EDGE_REUSE_PORT=1 (they all bind the port with SO_REUSEPORT and the kernel
spreads new connections over them), and per child i:

- EDGE_ID `<edge id>-<i>`: each child has its own sync stream, so the control plane lists each
  (ListEdges) and confirms each one's revision apart;
- EDGE_STATE_DIR `<state dir>/worker-<i>`: its own last-known-good file (two processes must not
  replace the same file), from which it serves while the control plane is down;
- its own RunFlow streams to every runner, its own cache, rate-limit buckets and connection cap.

Rate limits (a callback's rate_limit_per_minute) are kept per process, so with N workers a
callback may get up to N times its limit through one edge, as with N edges (docs/http.md).

This process only supervises: it forwards SIGTERM and SIGINT to the children (each drains as a
single edge does) and waits for them. A child that exits while not asked to is started again
after RESTART_DELAY_S, so one crash does not take a share of the port's connections down for good
(the kernel sends new connections only to processes that listen); one that cannot start (exit
status 2: its settings, its port) stops them all, since it would fail again the same way.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from edge.config import EdgeSettings, private_state_dir

log = logging.getLogger(__name__)

#: Wait before starting again a child that exited on its own.
RESTART_DELAY_S = 1.0
#: How long children may take to drain after SIGTERM before they are killed.
STOP_GRACE_S = 30.0
_POLL_S = 0.2
#: The exit status of `python -m edge` for bad settings or a port it cannot listen on.
CANNOT_START = 2


@dataclass
class _Child:
    index: int
    process: subprocess.Popen | None = None
    exited_at: float = 0.0


def child_env(settings: EdgeSettings, index: int, env: dict[str, str]) -> dict[str, str]:
    """The environment of worker `index`: the parent's, made into one edge of the group."""
    state_dir = settings.state_dir / f"worker-{index}"
    return {
        **env,
        "EDGE_WORKERS": "1",
        "EDGE_REUSE_PORT": "1",
        "EDGE_ID": f"{settings.edge_id}-{index}",
        "EDGE_STATE_DIR": str(state_dir),
        "EDGE_PORT": str(settings.port),
    }


def supervise(settings: EdgeSettings) -> int:
    """Runs settings.workers edge processes until SIGTERM or SIGINT; returns the exit status."""
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    children = [_Child(i) for i in range(settings.workers)]
    env = dict(os.environ)
    for child in children:
        private_state_dir(settings.state_dir / f"worker-{child.index}")
        _start(child, settings, env)
    print(
        f"edge {settings.edge_id}: {settings.workers} worker processes on "
        f"{settings.host}:{settings.port}",
        flush=True,
    )
    while not stopping:
        time.sleep(_POLL_S)
        now = time.monotonic()
        for child in children:
            process = child.process
            if process is not None and process.poll() is not None:
                if process.returncode == CANNOT_START:
                    # Its settings or its port: starting it again would fail the same way.
                    log.error("edge worker %d cannot start; stopping the others", child.index)
                    _stop_all(children)
                    return CANNOT_START
                log.warning(
                    "edge worker %d exited (%s); starting it again", child.index, process.returncode
                )
                child.process, child.exited_at = None, now
            if child.process is None and now - child.exited_at >= RESTART_DELAY_S and not stopping:
                _start(child, settings, env)
    return _stop_all(children)


def _start(child: _Child, settings: EdgeSettings, env: dict[str, str]) -> None:
    child.process = subprocess.Popen(
        [sys.executable, "-m", "edge"], env=child_env(settings, child.index, env)
    )


def _stop_all(children: list[_Child]) -> int:
    running = [c.process for c in children if c.process is not None and c.process.poll() is None]
    for process in running:
        process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    status = 0
    for process in running:
        try:
            code = process.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            code = process.wait()
        status = status or (code if code and code > 0 else 0)
    return status
