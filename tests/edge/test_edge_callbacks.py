"""What a caller of a callback URL sees, over real HTTP against a real edge (docs/design.md §1)."""

from __future__ import annotations

import asyncio

from edge_fakes import (
    CB_BREAK,
    CB_BUDGET,
    CB_BUSY,
    CB_DISABLED,
    CB_FAIL,
    CB_NOCB,
    CB_OK,
    CB_SLOW,
    CB_UNDEPLOYED,
    CB_WAIT,
    ENV_UK,
    OTHER_SIGNATURE,
    RUN_ID,
    SIGNATURE,
    callback_url,
    dead_target,
    error,
    signed,
    snapshot,
    wait_for,
)


async def test_success_with_query_signature(edge, runner):
    fake, _ = runner
    r = await edge.client.get(signed(CB_OK, x="1", empty=""), headers={"x-caller": "c"})

    assert r.status_code == 201
    assert r.headers["content-type"] == "application/vnd.acme+json"
    assert r.headers["x-extra"] == "yes"
    assert r.headers[RUN_ID] == "run-1"
    assert r.json() == [{"version": "v-ok", "body": ""}]
    # Framing stays the edge's; a header value with CR/LF is dropped, not injected.
    assert r.headers["content-length"] == str(len(r.content))
    assert "x-evil" not in r.headers and "set-cookie" not in r.headers

    (start,) = fake.starts
    assert (start.company, start.callback_id, start.flow_id) == ("acme", CB_OK, f"flow-{CB_OK}")
    assert (start.environment_id, start.version_id, start.method) == ("", "v-ok", "GET")
    assert start.timeout_ms == 5000
    assert [(q.name, q.value) for q in start.query] == [("x", "1"), ("empty", "")]
    assert ("x-caller", "c") in [(h.name, h.value) for h in start.headers]


async def test_success_with_header_signature(edge, runner):
    fake, _ = runner
    r = await edge.client.post(
        callback_url(CB_OK, q="2"),
        content=b'{"sku": 7}',
        headers={"patchworks-signature": SIGNATURE, "content-type": "application/json"},
    )

    assert r.status_code == 201
    assert r.json() == [{"version": "v-ok", "body": '{"sku": 7}'}]
    assert r.headers[RUN_ID] == "run-1"
    (start,) = fake.starts
    assert start.method == "POST" and start.body == b'{"sku": 7}'
    names = [h.name for h in start.headers]
    assert "patchworks-signature" not in names and "content-type" in names
    assert SIGNATURE not in str(start)


async def test_missing_signature_is_401(edge, runner):
    error(await edge.client.get(callback_url(CB_OK)), 401, "missing_signature")
    error(
        await edge.client.get(callback_url(CB_OK, patchworks_signature="")),
        401,
        "missing_signature",
    )
    assert runner[0].starts == []


async def test_wrong_signature_and_unknown_callback_look_the_same(edge, runner):
    wrong = await edge.client.get(callback_url(CB_OK, patchworks_signature=OTHER_SIGNATURE))
    unknown = await edge.client.get(signed("01unknown00000000000000000"))
    other_company = await edge.client.get(
        callback_url(CB_OK, company="globex", patchworks_signature=SIGNATURE)
    )
    for r in (wrong, unknown, other_company):
        error(r, 403, "forbidden")
    assert wrong.content == unknown.content == other_company.content
    assert runner[0].starts == []


async def test_ve_prefix_selects_the_environments_deployment(edge, runner):
    r = await edge.client.get(signed(CB_OK, "uk"))

    assert r.status_code == 201
    assert r.json()[0]["version"] == "v-ok-uk"
    (start,) = runner[0].starts
    assert (start.environment_id, start.version_id) == (ENV_UK, "v-ok-uk")


async def test_unknown_prefix_is_404_but_only_after_authentication(edge):
    error(await edge.client.get(signed(CB_OK, "nope")), 404, "unknown_environment")
    # Another company's prefix is unknown to this company.
    error(await edge.client.get(signed(CB_OK, "eu")), 404, "unknown_environment")
    wrong = callback_url(CB_OK, "nope", patchworks_signature=OTHER_SIGNATURE)
    error(await edge.client.get(wrong), 403, "forbidden")


async def test_not_deployed_and_disabled_are_503(edge, runner):
    error(await edge.client.get(signed(CB_OK, "de")), 503, "not_deployed")
    error(await edge.client.get(signed(CB_UNDEPLOYED)), 503, "not_deployed")
    error(await edge.client.post(signed(CB_DISABLED)), 503, "disabled")
    assert runner[0].starts == []


async def test_body_over_the_limit_is_413_json(edge, runner):
    # Just over the edge's limit (checked by the route) and far over it (Sanic's reader stops).
    error(await edge.client.post(signed(CB_OK), content=b"x" * 1025), 413, "body_too_large")
    error(await edge.client.post(signed(CB_OK), content=b"x" * 100_000), 413, "body_too_large")
    r = await edge.client.post(signed(CB_OK), content=b"x" * 1024)
    assert r.status_code == 201
    assert len(runner[0].starts) == 1


async def test_flow_failure_is_502_with_run_id(edge):
    error(await edge.client.get(signed(CB_FAIL)), 502, "flow_failed", run_id="run-1")


async def test_finishing_without_callback_is_502_no_callback(edge):
    error(await edge.client.post(signed(CB_NOCB)), 502, "no_callback", run_id="run-1")


async def test_company_busy_is_429_with_retry_after_and_no_run(edge, runner):
    r = await edge.client.post(signed(CB_BUSY))

    error(r, 429, "too_many_runs")
    assert r.headers["retry-after"] == "1"
    assert len(runner[0].starts) == 1  # not tried elsewhere: the limit is the company's


async def test_budget_reason_is_502_naming_the_budget(edge):
    r = await edge.client.post(signed(CB_BUDGET))

    error(r, 502, "budget_expression_steps", run_id="run-1")
    assert "expression step budget" in r.json()["message"]


async def test_timeout_is_504_with_run_id_and_cancels_the_run(edge, runner):
    fake, _ = runner
    loop = asyncio.get_running_loop()
    began = loop.time()
    r = await edge.client.get(signed(CB_SLOW))
    took = loop.time() - began

    error(r, 504, "timeout", run_id="run-1")
    assert 0.25 <= took < 2.0  # the callback's timeout is 300 ms
    (ref,) = fake.run_ids
    await wait_for(lambda: fake.cancels == [ref])
    assert fake.cancel_statuses == {ref: 504}  # what the caller got
    assert edge.app.ctx.runners.open_runs == 0


async def test_caller_leaving_cancels_the_run_with_499(edge, runner):
    fake, _ = runner
    _, writer = await asyncio.open_connection(edge.server.host, edge.server.port)
    writer.write(f"GET {signed(CB_WAIT)} HTTP/1.1\r\nhost: edge\r\n\r\n".encode())
    await writer.drain()
    await wait_for(lambda: len(fake.run_ids) == 1)
    await wait_for(lambda: edge.app.ctx.runners.open_runs == 1)
    writer.close()  # the caller gives up before the callback

    (ref,) = fake.run_ids
    await wait_for(lambda: fake.cancel_statuses == {ref: 499})
    assert edge.app.ctx.runners.open_runs == 0
    await writer.wait_closed()


async def test_runner_unreachable_is_503(start_edge, sync):
    edge = await start_edge(sync_target=sync[1], runner_target=dead_target(), wait=False)
    await wait_for(lambda: edge.app.ctx.cache.live)

    error(await edge.client.get(signed(CB_OK)), 503, "runner_unavailable")


async def test_runner_stream_breaking_fails_open_runs_then_reconnects(edge, runner):
    fake, _ = runner
    # v-break: accepted, then the runner's stream dies; the slow run (not answered) dies with it.
    slow = asyncio.create_task(edge.client.get(signed(CB_SLOW)))
    await wait_for(lambda: len(fake.starts) == 1)
    broken = await edge.client.get(signed(CB_BREAK))

    error(broken, 502, "run_lost", run_id="run-2")
    error(await slow, 502, "run_lost", run_id="run-1")
    await wait_for(lambda: edge.app.ctx.runners.connected and fake.streams_opened == 2)
    assert (await edge.client.get(signed(CB_OK))).status_code == 201


async def test_concurrent_requests_share_one_batched_stream(edge, runner):
    fake, _ = runner
    responses = await asyncio.gather(*(edge.client.get(signed(CB_OK, n=str(i))) for i in range(30)))

    assert [r.status_code for r in responses] == [201] * 30
    assert len({r.headers[RUN_ID] for r in responses}) == 30
    assert fake.streams_opened == 1
    assert sum(fake.batch_sizes) == 30


async def test_head_authenticates_without_running(edge, runner):
    ok = await edge.client.head(signed(CB_OK))
    assert ok.status_code == 204 and ok.content == b""
    assert (await edge.client.head(callback_url(CB_OK))).status_code == 401
    assert (await edge.client.head(signed(CB_DISABLED))).status_code == 503
    assert runner[0].starts == []


async def test_options_lists_the_methods(edge, runner):
    r = await edge.client.options(callback_url(CB_OK))
    assert r.status_code == 204
    assert r.headers["allow"] == "GET, POST, HEAD, OPTIONS"
    assert runner[0].starts == []


async def test_unknown_routes_and_methods_get_json_errors(edge):
    error(await edge.client.get("/nope?patchworks_signature=" + SIGNATURE), 404, "not_found")
    error(await edge.client.get("/api/v1/acme"), 404, "not_found")
    r = await edge.client.put(signed(CB_OK))
    error(r, 405, "method_not_allowed")
    assert "Traceback" not in r.text


async def test_unknown_version_at_the_runner_is_502(edge, sync):
    fake_sync, _ = sync
    changed = snapshot(revision=2)
    changed.callbacks[0].deployments[0].version_id = "v-missing"
    fake_sync.push(changed)
    await wait_for(lambda: edge.app.ctx.cache.state.revision == 2)

    error(await edge.client.get(signed(CB_OK)), 502, "flow_failed")


async def test_a_burst_of_large_bodies_reaches_the_runner_in_messages_of_at_most_4_mib(
    start_edge, sync, runner
):
    fake, target = runner
    edge = await start_edge(sync_target=sync[1], runner_target=target, max_body_bytes=2 << 20)
    body = b"x" * (1 << 20)
    responses = await asyncio.gather(
        *(edge.client.post(signed(CB_NOCB), content=body) for _ in range(10))
    )

    assert [r.status_code for r in responses] == [502] * 10  # no_callback: the run did start
    assert sum(fake.batch_sizes) == 10 and fake.streams_opened == 1
    assert max(fake.batch_bytes) <= 4 << 20
