from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from boomerang import event_loop
from edge.backoff import Backoff
from edge.config import EdgeSettings
from edge.workers import child_env


def test_runner_defaults_to_the_control_plane(tmp_path: Path) -> None:
    env = {
        "BOOMERANG_API_KEY": "k",
        "EDGE_STATE_DIR": str(tmp_path),
        "BOOMERANG_CONTROL_PLANE": "cp:9",
    }
    assert EdgeSettings.from_env(env).runner_targets == ("cp:9",)
    assert EdgeSettings.from_env({**env, "BOOMERANG_RUNNER": ""}).runner_targets == ("cp:9",)


def test_defaults(tmp_path: Path) -> None:
    s = EdgeSettings.from_env({"BOOMERANG_API_KEY": "k", "EDGE_STATE_DIR": str(tmp_path)})
    assert (s.host, s.port) == ("127.0.0.1", 8080)
    assert s.control_plane_target == "127.0.0.1:50051"
    assert s.runner_targets == ("127.0.0.1:50051",)
    assert (s.max_body_bytes, s.staleness_limit_s) == (1024 * 1024, 0.0)
    assert (s.header_timeout_s, s.body_timeout_s, s.keep_alive_timeout_s) == (10, 30, 75)
    assert s.max_connections == 1000
    assert (s.workers, s.reuse_port) == (1, False)
    assert s.runflow_coalesce_ms == 2.0
    assert s.lkg_path == tmp_path / "lkg.binpb"


def test_every_variable_is_read(tmp_path: Path) -> None:
    s = EdgeSettings.from_env(
        {
            "BOOMERANG_API_KEY": "k",
            "EDGE_ID": "edge-7",
            "EDGE_HOST": "0.0.0.0",
            "EDGE_PORT": "9000",
            "BOOMERANG_CONTROL_PLANE": "cp:1",
            "BOOMERANG_RUNNER": "runner-a:2, runner-b:3",
            "EDGE_STATE_DIR": str(tmp_path),
            "EDGE_MAX_BODY_BYTES": "10",
            "EDGE_STALENESS_LIMIT_S": "2.5",
            "EDGE_HEADER_TIMEOUT_S": "3",
            "EDGE_BODY_TIMEOUT_S": "4.5",
            "EDGE_KEEP_ALIVE_TIMEOUT_S": "61",
            "EDGE_MAX_CONNECTIONS": "20",
            "EDGE_WORKERS": "3",
            "EDGE_REUSE_PORT": "1",
            "EDGE_RUNFLOW_COALESCE_MS": "0.5",
        }
    )
    assert s == EdgeSettings(
        api_key="k",
        edge_id="edge-7",
        host="0.0.0.0",
        port=9000,
        control_plane_target="cp:1",
        runner_targets=("runner-a:2", "runner-b:3"),
        state_dir=tmp_path,
        max_body_bytes=10,
        staleness_limit_s=2.5,
        header_timeout_s=3,
        body_timeout_s=4.5,
        keep_alive_timeout_s=61,
        max_connections=20,
        workers=3,
        reuse_port=True,
        runflow_coalesce_ms=0.5,
    )


def test_body_limit_goes_up_to_8_mib(tmp_path: Path) -> None:
    env = {"BOOMERANG_API_KEY": "k", "EDGE_STATE_DIR": str(tmp_path)}
    s = EdgeSettings.from_env({**env, "EDGE_MAX_BODY_BYTES": str(8 << 20)})
    assert s.max_body_bytes == 8 << 20
    with pytest.raises(ValueError, match=r"at most 8388608 \(8 MiB\), not 8388609"):
        EdgeSettings.from_env({**env, "EDGE_MAX_BODY_BYTES": str((8 << 20) + 1)})


def test_generated_edge_id_is_kept_in_the_state_dir(tmp_path: Path) -> None:
    env = {"BOOMERANG_API_KEY": "k", "EDGE_STATE_DIR": str(tmp_path / "state")}
    first = EdgeSettings.from_env(env).edge_id
    assert first and EdgeSettings.from_env(env).edge_id == first
    assert (tmp_path / "state" / "edge_id").read_text().strip() == first


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "BOOMERANG_API_KEY"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_PORT": "http"}, "EDGE_PORT"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_PORT": "70000"}, "EDGE_PORT"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_STALENESS_LIMIT_S": "-1"}, "EDGE_STALENESS_LIMIT_S"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_MAX_BODY_BYTES": "8388609"}, "EDGE_MAX_BODY_BYTES"),
        ({"BOOMERANG_API_KEY": "k", "BOOMERANG_RUNNER": "a:1,,b:2"}, "BOOMERANG_RUNNER"),
        ({"BOOMERANG_API_KEY": "k", "BOOMERANG_RUNNER": "a:1,a:1"}, "BOOMERANG_RUNNER"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_HEADER_TIMEOUT_S": "0"}, "EDGE_HEADER_TIMEOUT_S"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_BODY_TIMEOUT_S": "nan"}, "EDGE_BODY_TIMEOUT_S"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_KEEP_ALIVE_TIMEOUT_S": "-1"}, "EDGE_KEEP_ALIVE"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_MAX_CONNECTIONS": "0"}, "EDGE_MAX_CONNECTIONS"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_MAX_CONNECTIONS": "many"}, "EDGE_MAX_CONNECTIONS"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_WORKERS": "0"}, "EDGE_WORKERS must be 1-64, not 0"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_WORKERS": "65"}, "EDGE_WORKERS must be 1-64"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_WORKERS": "two"}, "EDGE_WORKERS must be a number"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_WORKERS": "2", "EDGE_PORT": "0"}, "fixed EDGE_PORT"),
        (
            {"BOOMERANG_API_KEY": "k", "EDGE_RUNFLOW_COALESCE_MS": "-1"},
            "EDGE_RUNFLOW_COALESCE_MS must be 0-20, not -1",
        ),
        ({"BOOMERANG_API_KEY": "k", "EDGE_RUNFLOW_COALESCE_MS": "21"}, "must be 0-20, not 21"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_RUNFLOW_COALESCE_MS": "nan"}, "must be 0-20, not nan"),
        ({"BOOMERANG_API_KEY": "k", "EDGE_REUSE_PORT": "yes"}, "EDGE_REUSE_PORT must be 0 or 1"),
    ],
)
def test_bad_settings_name_the_variable(tmp_path: Path, env, message) -> None:
    with pytest.raises(ValueError, match=message):
        EdgeSettings.from_env({"EDGE_ID": "e", "EDGE_STATE_DIR": str(tmp_path), **env})


def test_backoff_grows_with_full_jitter_up_to_the_cap() -> None:
    top = Backoff(base_s=0.1, cap_s=5.0, rand=lambda: 1.0)
    assert [round(top.next_delay(), 3) for _ in range(8)] == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5, 5]
    top.reset()
    assert top.next_delay() == pytest.approx(0.1)
    assert Backoff(rand=lambda: 0.0).next_delay() == 0.0
    # The default stays within a second, so a peer that is back is in use again within 2 s.
    default = Backoff(rand=lambda: 1.0)
    assert max(default.next_delay() for _ in range(40)) == 1.0


def test_workers_get_their_own_id_state_dir_and_the_shared_port(tmp_path: Path) -> None:
    settings = EdgeSettings.from_env(
        {
            "BOOMERANG_API_KEY": "k",
            "EDGE_ID": "e",
            "EDGE_STATE_DIR": str(tmp_path),
            "EDGE_PORT": "9000",
            "EDGE_WORKERS": "2",
        }
    )
    env = child_env(settings, 1, {"BOOMERANG_API_KEY": "k", "EDGE_WORKERS": "2"})
    worker = EdgeSettings.from_env(env)
    assert (worker.edge_id, worker.state_dir) == ("e-1", tmp_path / "worker-1")
    assert (worker.port, worker.workers, worker.reuse_port) == (9000, 1, True)
    assert worker.lkg_path != settings.lkg_path


@pytest.mark.parametrize(
    ("value", "loop"), [(None, "uvloop"), ("", "uvloop"), ("asyncio", "asyncio")]
)
def test_event_loop_is_uvloop_unless_asked(value: str | None, loop: str) -> None:
    env = {} if value is None else {"BOOMERANG_EVENT_LOOP": value}
    assert event_loop.chosen(env) == loop
    assert (event_loop.runner(env) is asyncio.run) == (loop == "asyncio")


def test_event_loop_refuses_other_names() -> None:
    with pytest.raises(ValueError, match="BOOMERANG_EVENT_LOOP must be one of uvloop, asyncio"):
        event_loop.chosen({"BOOMERANG_EVENT_LOOP": "trio"})
