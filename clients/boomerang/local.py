"""A local Boomerang: the control plane, the edge and the console as child processes on loopback.

Used by `make run` (with the demo callback), by the end-to-end tests and by the benchmarks, so
all three start the product the same way a user does: `python -m control_plane serve` and
`python -m edge` (and `python -m console`), configured only through their environment variables.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from boomerang.sdk.channel import tls_credentials
from boomerang.v1 import api_key_service_pb2 as aks
from boomerang.v1 import api_key_service_pb2_grpc as aks_grpc
from boomerang.v1 import resources_pb2 as r

#: The name of the EDGE key a stack makes for its edge.
EDGE_KEY_NAME = "local edge"


#: The ports `free_port` handed out lately. The kernel only avoids ports that are bound: one
#: handed out and not yet bound by its process could come back at the next call, and then two
#: servers of one stack were given one port (seen in CI: the edge's /readyz was answered by a
#: runner's HTTP/2). A stack takes a handful of ports and binds them within seconds.
_handed_out: deque[int] = deque(maxlen=256)


def free_port() -> int:
    """A loopback port no socket is bound to, and not handed out by this process lately."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.append(port)
            return port


def open_private_log(path: Path) -> BinaryIO:
    """`path` opened for appending, readable by this user only, in a directory only this user
    can enter: logs say which callbacks exist and what failed (docs/http.md). A file or
    directory an older version made with looser modes is tightened."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.parent.chmod(0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    return os.fdopen(fd, "ab")


@dataclass
class LocalStack:
    state_dir: Path
    admin_key: str
    database_url: str = ""
    control_port: int = 0
    edge_port: int = 0
    console_port: int = 0
    extra_env: dict[str, str] = field(default_factory=dict)
    # Where the children's output goes (inherit the terminal when None).
    log_dir: Path | None = None
    # Run the runner as its own process (role "runner") instead of inside the control plane.
    separate_runner: bool = False
    # How many runner processes, when separate (the edge gets all their addresses).
    runner_count: int = 1
    runner_ports: list[int] = field(default_factory=list)
    # Edge processes sharing the edge port (EDGE_WORKERS; edge/workers.py).
    edge_workers: int = 1
    control: subprocess.Popen | None = None
    runners: list[subprocess.Popen | None] = field(default_factory=list)
    edge: subprocess.Popen | None = None
    console: subprocess.Popen | None = None
    #: The EDGE-scoped key the edge uses, made with the admin key once the control plane is up
    #: (an edge needs no more: docs/security.md). Empty until then: the admin key is used.
    edge_key: str = ""

    def __post_init__(self) -> None:
        # It will hold the database and the secret key: this user only.
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.database_url = self.database_url or f"sqlite:///{self.state_dir / 'boomerang.db'}"
        self.control_port = self.control_port or free_port()
        self.edge_port = self.edge_port or free_port()
        self.console_port = self.console_port or free_port()
        if self.separate_runner and not self.runner_ports:
            self.runner_ports = [free_port() for _ in range(self.runner_count)]
        self.runners = [None] * len(self.runner_ports)

    @property
    def control_target(self) -> str:
        return f"127.0.0.1:{self.control_port}"

    @property
    def runner(self) -> subprocess.Popen | None:
        return self.runners[0] if self.runners else None

    def runner_address(self, index: int = 0) -> str:
        return f"127.0.0.1:{self.runner_ports[index]}"

    @property
    def runner_target(self) -> str:
        """What the edge is given: every runner's address, or the control plane's."""
        if not self.separate_runner:
            return self.control_target
        return ",".join(self.runner_address(i) for i in range(len(self.runner_ports)))

    @property
    def edge_url(self) -> str:
        return f"http://127.0.0.1:{self.edge_port}"

    @property
    def console_url(self) -> str:
        return f"http://127.0.0.1:{self.console_port}"

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            BOOMERANG_LISTEN=self.control_target,
            BOOMERANG_ADMIN_KEY=self.admin_key,
            BOOMERANG_PUBLIC_BASE_URL=self.edge_url,
            BOOMERANG_CONTROL_PLANE=self.control_target,
            BOOMERANG_RUNNER=self.runner_target,
            BOOMERANG_API_KEY=self.edge_key or self.admin_key,
            BOOMERANG_STATE_DIR=str(self.state_dir),
            EDGE_HOST="127.0.0.1",
            EDGE_PORT=str(self.edge_port),
            EDGE_STATE_DIR=str(self.state_dir / "edge"),
            CONSOLE_HOST="127.0.0.1",
            CONSOLE_PORT=str(self.console_port),
            EDGE_WORKERS=str(self.edge_workers),
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    def _spawn(
        self, name: str, args: list[str], env: dict[str, str] | None = None, **popen: object
    ) -> subprocess.Popen:
        command = [sys.executable, *args]
        full_env = {**self._env(), **(env or {})}
        if self.log_dir is None:
            return subprocess.Popen(command, env=full_env, **popen)
        # The child holds its own descriptor; the parent's closes when this block ends.
        with open_private_log(self.log_dir / f"{name}.log") as out:
            return subprocess.Popen(
                command, env=full_env, stdout=out, stderr=subprocess.STDOUT, **popen
            )

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "-m", "control_plane", "migrate"],
            env=self._env(),
            check=True,
            stdout=subprocess.DEVNULL if self.log_dir else None,
        )

    def start_control_plane(self, timeout: float = 30.0) -> None:
        role = "control" if self.separate_runner else "all"
        self.control = self._spawn(
            "control-plane", ["-m", "control_plane", "serve", "--migrate", "--role", role]
        )
        self._wait_healthy(self.control, "control plane", self.control_target, timeout)
        if not self.edge_key:
            self.edge_key = self._create_edge_key()

    def channel(self, target: str) -> grpc.Channel:
        """A channel to one of the stack's processes, over TLS when the stack's environment
        configures it (BOOMERANG_TLS_CA, BOOMERANG_TLS_CLIENT_CERT/_KEY, as the edge's)."""
        env = self._env()
        ca, cert, key = (
            env.get(f"BOOMERANG_TLS_{name}") or None for name in ("CA", "CLIENT_CERT", "CLIENT_KEY")
        )
        if not (ca or cert):
            return grpc.insecure_channel(target)
        return grpc.secure_channel(target, tls_credentials(ca, cert, key))

    def _create_edge_key(self) -> str:
        """A new EDGE key for this stack's edge; the ones earlier starts made are revoked, so
        restarting `make run` leaves one live machine key, not one per start."""
        md = (("authorization", f"Bearer {self.admin_key}"),)
        with self.channel(self.control_target) as channel:
            keys = aks_grpc.ApiKeyServiceStub(channel)
            request = aks.ListApiKeysRequest(page_size=1000)
            while True:
                page = keys.ListApiKeys(request, metadata=md, timeout=10)
                for old in page.api_keys:
                    if old.name == EDGE_KEY_NAME and not old.HasField("revoke_time"):
                        keys.RevokeApiKey(
                            aks.RevokeApiKeyRequest(id=old.id), metadata=md, timeout=10
                        )
                if not page.next_page_token:
                    break
                request.page_token = page.next_page_token
            response = keys.CreateApiKey(
                aks.CreateApiKeyRequest(name=EDGE_KEY_NAME, scope=r.API_KEY_SCOPE_EDGE),
                metadata=md,
                timeout=10,
            )
        return response.secret

    def start_runner(self, timeout: float = 30.0, index: int = 0) -> None:
        """A runner role as its own process (needs a migrated database: start it second)."""
        address = self.runner_address(index)
        name = "runner" if index == 0 else f"runner-{index}"
        process = self._spawn(
            name,
            ["-m", "control_plane", "serve", "--role", "runner"],
            {"BOOMERANG_LISTEN": address},
        )
        self.runners[index] = process
        self._wait_healthy(process, name, address, timeout)

    def start_runners(self, timeout: float = 30.0) -> None:
        for index in range(len(self.runner_ports)):
            self.start_runner(timeout, index)

    def _wait_healthy(
        self, process: subprocess.Popen, name: str, target: str, timeout: float
    ) -> None:
        deadline = time.monotonic() + timeout
        with self.channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while True:
                self._check_alive(process, name)
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                except grpc.RpcError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the {name} did not become healthy")
                time.sleep(0.05)

    def start_edge(self, timeout: float = 30.0, ready: bool = True) -> None:
        """Starts the edge; waits for /readyz (or only /healthz when `ready` is False). Ready
        means in sync with the control plane and connected to a runner: start those first."""
        # Its own process group with workers, so that `stop_edge(kill=True)` kills them all.
        group = {"process_group": 0} if self.edge_workers > 1 else {}
        self.edge = self._spawn("edge", ["-m", "edge"], **group)
        path = "/readyz" if ready else "/healthz"
        # Each request opens a new connection, which the kernel gives to any of the workers: so
        # many answers in a row that every worker has answered, but for a very unlikely draw.
        in_a_row = 1 if self.edge_workers == 1 else 8 * self.edge_workers
        answered = 0
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(self.edge, "edge")
            try:
                with urllib.request.urlopen(self.edge_url + path, timeout=1) as response:
                    answered = answered + 1 if response.status == 200 else 0
            except OSError:
                answered = 0
            if answered >= in_a_row:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"the edge did not answer {path}")
            if not answered:
                time.sleep(0.05)

    def start_console(self, timeout: float = 30.0) -> None:
        """Starts the web console (a client of the control plane: start that first) and waits
        for its /healthz. It gets no key: people sign in with their own (docs/console.md)."""
        # The console never uses a key of its own: it gets none.
        env = {"BOOMERANG_API_KEY": "", "BOOMERANG_ADMIN_KEY": ""}
        self.console = self._spawn("console", ["-m", "console"], env)
        self._wait_http(self.console, "console", self.console_url + "/healthz", timeout)

    def _wait_http(self, process: subprocess.Popen, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(process, name)
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {name} did not answer {url}")
            time.sleep(0.05)

    @staticmethod
    def _check_alive(process: subprocess.Popen | None, name: str) -> None:
        if process is None or process.poll() is not None:
            code = None if process is None else process.returncode
            raise RuntimeError(f"the {name} exited (code {code}); see its log")

    @staticmethod
    def _stop(process: subprocess.Popen | None, sig: int) -> None:
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop_edge(self, kill: bool = False) -> None:
        if kill and self.edge_workers > 1 and self.edge is not None and self.edge.poll() is None:
            os.killpg(self.edge.pid, signal.SIGKILL)  # the supervisor and its workers
            self.edge.wait()
            return
        self._stop(self.edge, signal.SIGKILL if kill else signal.SIGTERM)

    def stop_control_plane(self, kill: bool = False) -> None:
        self._stop(self.control, signal.SIGKILL if kill else signal.SIGTERM)

    def stop_runner(self, kill: bool = False, index: int = 0) -> None:
        self._stop(self.runners[index], signal.SIGKILL if kill else signal.SIGTERM)

    def stop_console(self) -> None:
        self._stop(self.console, signal.SIGTERM)

    def stop(self) -> None:
        self.stop_console()
        self.stop_edge()
        for index in range(len(self.runners)):
            self.stop_runner(index=index)
        self.stop_control_plane()
