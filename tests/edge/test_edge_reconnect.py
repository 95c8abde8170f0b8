"""A runner and control plane that come back after a long outage are in use again within 2 s."""

from __future__ import annotations

import asyncio

from edge_fakes import CB_OK, FakeRunner, FakeSync, LoopbackServer, signed, wait_for

#: Long enough for gRPC's default reconnect backoff (1 s, x1.6 per attempt, up to 120 s) to
#: have grown past several seconds: with it, the edge would notice the return only seconds late.
OUTAGE_S = 10.0
BACK_WITHIN_S = 2.0


async def test_runner_and_control_plane_are_used_again_within_2_s_of_coming_back(start_edge):
    sync = LoopbackServer(sync=FakeSync())
    runner = LoopbackServer(runner=FakeRunner())
    await sync.start()
    await runner.start()
    try:
        edge = await start_edge(sync_target=sync.target, runner_target=runner.target)
        ctx = edge.app.ctx
        await sync.stop()
        await runner.stop()
        await wait_for(lambda: not ctx.runners.connected and not ctx.cache.live)
        await asyncio.sleep(OUTAGE_S)

        loop = asyncio.get_running_loop()
        back = loop.time()
        await runner.start()  # same ports
        await sync.start()
        runner_after = sync_after = None
        while runner_after is None or sync_after is None:
            now = loop.time() - back
            if runner_after is None and ctx.runners.connected:
                runner_after = now
            if sync_after is None and ctx.cache.live:
                sync_after = now
            assert now < 10, "not back within 10 s"
            await asyncio.sleep(0.01)
        # Shown with -s: how close to the bound this machine runs.
        print(f"\nin use again after: runner {runner_after:.3f} s, sync {sync_after:.3f} s")

        assert runner_after < BACK_WITHIN_S
        assert sync_after < BACK_WITHIN_S
        assert (await edge.client.get(signed(CB_OK))).status_code == 201
    finally:
        await runner.stop()
        await sync.stop()
