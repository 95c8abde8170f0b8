"""Engine worker processes die with their runner: a runner killed with SIGKILL (a crash, the
OOM killer) must not leave workers behind, blocked on their queue, each holding its memory."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

RUNNER = textwrap.dedent(
    """
    import asyncio, json, time
    from control_plane.engine import Progress, RunInput
    from control_plane.engine.budgets import Budgets
    from control_plane.runs import checkpoint
    from control_plane.runs.workers import EngineWorkers

    SOURCE = json.dumps({"shapes": [{"id": "t", "type": "trigger"},
                                    {"id": "m", "type": "map", "expression": "payload"}]})

    async def main():
        workers = EngineWorkers(1, 1024)
        run_input = RunInput("r", "c", "f", "cb", "", "POST", (), (), b"")
        progress = Progress(position=1, bucket=[1])
        state = checkpoint.dump(run_input, progress)
        await workers.run_shape(0, "v", SOURCE, run_input, progress, state, Budgets(), None)
        print(*workers._pools[0]._processes, flush=True)
        time.sleep(60)

    if __name__ == "__main__":
        asyncio.run(main())
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def test_workers_do_not_outlive_a_killed_runner(tmp_path) -> None:
    script = tmp_path / "runner.py"
    script.write_text(RUNNER)
    runner = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(pid) for pid in runner.stdout.readline().split()]
        assert workers and all(_alive(pid) for pid in workers)
        runner.kill()
        runner.wait(10)
        deadline = time.monotonic() + 5
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(pid) for pid in workers), "a worker outlived its runner"
    finally:
        runner.kill()
        for pid in workers if "workers" in locals() else []:
            if _alive(pid):
                os.kill(pid, 9)
