"""`python -m edge` as an operator runs it: one process, env configuration, clean SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import httpx
from edge_fakes import API_KEY, CB_OK, EPOCH, signed, wait_for


async def test_python_m_edge_serves_and_stops_on_sigterm(sync, runner, tmp_path):
    env = {
        **os.environ,
        "BOOMERANG_API_KEY": API_KEY,
        "BOOMERANG_CONTROL_PLANE": sync[1],
        "BOOMERANG_RUNNER": runner[1],
        "EDGE_PORT": "0",
        "EDGE_STATE_DIR": str(tmp_path / "state"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "edge", env=env, stdout=asyncio.subprocess.PIPE
    )
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert " listening on http://127.0.0.1:" in line
        url = line.rsplit(" ", 1)[1].strip()
        await wait_for(lambda: (EPOCH, 1) in sync[0].acks, within_s=10)
        async with httpx.AsyncClient(base_url=url) as client:
            await wait_for(lambda: runner[0].streams_opened == 1)
            r = await client.get(signed(CB_OK))
            assert r.status_code == 201
        assert sync[0].hellos[0].edge_id == (tmp_path / "state" / "edge_id").read_text().strip()

        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
