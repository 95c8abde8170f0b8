"""Operating the edge: metrics, health, logs without secrets, errors without internals."""

from __future__ import annotations

import logging

from edge_fakes import CB_FAIL, CB_OK, SIGNATURE, callback_url, signed
from prometheus_client.parser import text_string_to_metric_families

from edge import answers


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def test_metrics_count_requests_by_status_and_show_sync_state(edge):
    await edge.client.get(signed(CB_OK))
    await edge.client.get(signed(CB_OK))
    await edge.client.get(signed(CB_FAIL))
    await edge.client.get(callback_url(CB_OK))
    await edge.client.get("/healthz")

    r = await edge.client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    m = samples(r.text)
    assert m[("boomerang_edge_requests_total", (("code", "201"),))] == 2
    assert m[("boomerang_edge_requests_total", (("code", "502"),))] == 1
    assert m[("boomerang_edge_requests_total", (("code", "401"),))] == 1
    assert ("boomerang_edge_requests_total", (("code", "200"),)) not in m  # /healthz
    assert m[("boomerang_edge_request_duration_seconds_count", ())] == 4
    assert m[("boomerang_edge_sync_revision", ())] == 1
    assert m[("boomerang_edge_control_plane_connected", ())] == 1
    assert m[("boomerang_edge_runner_connected", ())] == 1


async def test_logs_never_show_the_signature(edge, caplog):
    caplog.set_level(logging.DEBUG)
    await edge.client.get(signed(CB_OK, other="1"))
    await edge.client.get(callback_url(CB_OK), headers={"patchworks-signature": SIGNATURE})
    await edge.client.get(signed(CB_OK, "nope"))
    await edge.client.get("/nowhere?patchworks_signature=" + SIGNATURE)

    edge.app.ctx.access_log.flush()
    access = [
        line
        for r in caplog.records
        if r.name == "edge.access"
        for line in r.getMessage().splitlines()
    ]
    assert len(access) == 4
    assert f"GET /api/v1/acme/{CB_OK} 201" in access[0] and "run=run-1" in access[0]
    assert "other=1" not in access[0]
    assert f"GET /api/v1/acme/{CB_OK}/nope 404" in access[2]
    # Everything the edge process logs (the test's own HTTP client logs its URLs, of course).
    for record in caplog.records:
        if record.name.startswith(("httpx", "httpcore")):
            continue
        assert SIGNATURE not in record.getMessage()
        assert SIGNATURE not in str(record.args)


async def test_internal_errors_are_json_without_internals(edge, caplog, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(answers, "callback_response", broken)
    caplog.set_level(logging.ERROR)
    r = await edge.client.get(signed(CB_OK))

    assert r.status_code == 500
    assert r.json() == {"error": "internal", "message": "Internal error.", "run_id": None}
    assert "internal detail" not in r.text and "Traceback" not in r.text
    (logged,) = [rec for rec in caplog.records if rec.name == "edge.errors"]
    assert logged.exc_info is not None
    assert SIGNATURE not in logged.getMessage()


async def test_healthz_is_always_ok(edge):
    r = await edge.client.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
