"""boomerang.grpc_io: the services' gRPC connections run on iomgr's TCP code, not EventEngine's,
unless the operator sets GRPC_EXPERIMENTS. In child interpreters: gRPC core reads the setting
once per process, when grpc is imported.

Which code carried the bytes is read from gRPC core's own `tcp` trace: iomgr's endpoint logs
from tcp_posix.cc, EventEngine's from event_engine/posix_engine/*endpoint.cc."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# One call over loopback, with a server and a client in the process.
CALL = """
import asyncio, os, sys
{before}
import grpc
{after}
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

async def main():
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{{port}}") as channel:
        await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    await server.stop(None)
    print("experiments:", os.environ.get("GRPC_EXPERIMENTS"))

asyncio.run(main())
"""


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`code` in a child interpreter whose environment has no GRPC_EXPERIMENTS but `env`'s."""
    child_env = {k: v for k, v in os.environ.items() if k != "GRPC_EXPERIMENTS"}
    child_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env,
        check=False,
    )


def _call(before: str = "", after: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    code = CALL.format(before=before, after=after)
    return _python(code, GRPC_VERBOSITY="debug", GRPC_TRACE="tcp", **env)


def _iomgr(out: subprocess.CompletedProcess[str]) -> bool:
    assert out.returncode == 0, out.stderr[-2000:]
    iomgr, event_engine = "tcp_posix.cc" in out.stderr, "endpoint.cc" in out.stderr
    assert iomgr != event_engine, "expected the trace of exactly one of the two"
    return iomgr


def test_imported_first_it_puts_connections_on_iomgr() -> None:
    out = _call(before="from boomerang import grpc_io")
    assert _iomgr(out)
    assert "experiments: -event_engine_client," in out.stdout


def test_without_it_grpc_uses_event_engine() -> None:
    # The control: shows the trace tells the two apart, and that the default is EventEngine.
    assert not _iomgr(_call())


def test_the_operators_setting_wins_and_empty_means_grpcs_defaults() -> None:
    assert not _iomgr(_call(before="from boomerang import grpc_io", GRPC_EXPERIMENTS=""))


def test_imported_after_grpc_it_refuses_rather_than_do_nothing() -> None:
    out = _call(after="from boomerang import grpc_io")
    assert out.returncode != 0
    assert "boomerang.grpc_io must be imported before grpc" in out.stderr


@pytest.mark.parametrize("module", ["edge.__main__", "control_plane.__main__"])
def test_the_services_import_it_before_grpc(module: str) -> None:
    # Importing the entry point fails if something it imports loaded grpc before grpc_io ran.
    code = f"import os, {module}, grpc; print(os.environ['GRPC_EXPERIMENTS'])"
    out = _python(code)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("-event_engine_client,")
