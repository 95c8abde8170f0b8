"""One tenant cannot slow, break or see another: hostile flows fail their own runs with a reason
naming the budget, while another company's callback keeps its latency, the control plane's
memory stays bounded, and the shared run stream survives. Real processes; the runner shares its
process (and event loop) with the API, the harder case."""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path

import httpx
import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import resources_pb2 as r
from tests.e2e.conftest import (
    Api,
    answer,
    call_concurrently,
    eventually,
    get_run,
    mapping,
    shapes,
    start_stack,
)

pytestmark = pytest.mark.e2e

HOSTILE = {
    # Each map doubles the logical size: 2^30 references to the request by the end.
    "doubling": (
        shapes(*[mapping("[@, @]") | {"id": f"m{i}"} for i in range(30)], callback={}),
        b"{}",
    ),
    # Eight copies of a 300 KB payload kept as variables.
    "variables": (
        shapes(
            {
                "id": "v",
                "type": "set_variables",
                "variables": {f"v{i}": "payload" for i in range(8)},
            },
            callback={},
        ),
        json.dumps("x" * 300_000).encode(),
    ),
    # A 900 KB body answered five times over: over the 4 MiB callback budget.
    "callback": (
        shapes(mapping("[payload, payload, payload, payload, payload]"), callback={}),
        json.dumps("y" * 900_000).encode(),
    ),
    # (JSON nested deeper than the parser's stack is no longer hostile: it is taken as text,
    # like any body that does not parse; tests/edge/test_edge_http_parts.py runs it.)
    # 100 levels: parsed, and over the 64-level nesting budget.
    "nested": (shapes(callback={}), b"[" * 100 + b"]" * 100),
}
EXPECTED = {
    "doubling": {"budget_value_size", "budget_expression_steps"},
    "variables": {"budget_variables_size"},
    "callback": {"budget_callback_size"},
    "nested": {"budget_value_size"},
}


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


class _Prober(threading.Thread):
    """Calls the well-behaved company's callback again and again, timing each answer."""

    def __init__(self, url: str, path: str, signature: str) -> None:
        super().__init__(daemon=True)
        self.url, self.path, self.signature = url, path, signature
        self.latencies: list[float] = []
        self.statuses: list[int] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as http:
            while not self.stop.is_set():
                started = time.perf_counter()
                response = http.get(self.path, params={"patchworks_signature": self.signature})
                self.latencies.append(time.perf_counter() - started)
                self.statuses.append(response.status_code)
                time.sleep(0.01)


def test_hostile_flows_fail_alone_and_others_keep_their_latency(tmp_path):
    stack = start_stack(tmp_path, extra_env={"EDGE_MAX_BODY_BYTES": str(2 << 20)})
    api = Api(stack.control_target)
    try:
        api.company("good")
        api.company("evil")
        flow, good = api.flow_with_callback(
            "good", "g", shapes(mapping("{ok: `true`}"), callback={})
        )
        api.deploy(flow.id)
        hostile = {}
        for name, (definition, body) in HOSTILE.items():
            flow, cb = api.flow_with_callback("evil", name, definition)
            api.deploy(flow.id)
            hostile[name] = (cb, body)

        prober = _Prober(stack.edge_url, f"/api/v1/good/{good.id}", good.signature)
        with httpx.Client(base_url=stack.edge_url, timeout=30) as http:
            from tests.e2e.conftest import eventually

            eventually(
                lambda: (
                    http.get(
                        f"/api/v1/good/{good.id}", params={"patchworks_signature": good.signature}
                    ).status_code
                    == 200
                ),
                timeout=15,
            )
            # The good company's latency alone, for reference.
            prober.start()
            time.sleep(1.0)
            quiet = list(prober.latencies)
            answers = {}
            for _round in range(3):
                for name, (cb, body) in hostile.items():
                    response = http.post(
                        f"/api/v1/evil/{cb.id}",
                        params={"patchworks_signature": cb.signature},
                        content=body,
                        headers={"content-type": "application/json"},
                    )
                    answers.setdefault(name, []).append(answer(response))
            loud_from = len(quiet)
            time.sleep(0.2)
            prober.stop.set()
            prober.join(10)

        for name, got in answers.items():
            for a in got:
                assert a.status == 502 and a.error in EXPECTED[name], (name, a)
                run = get_run(api, a.run_id)
                assert run.status == r.RUN_STATUS_FAILED and run.response_status == 502
                assert run.reason != r.RUN_REASON_FLOW_FAILED, (name, run.error)

        loud = prober.latencies[loud_from:]
        print(
            f"good company: quiet p50 {statistics.median(quiet) * 1000:.1f} ms; under attack "
            f"p50 {statistics.median(loud) * 1000:.1f} ms, max {max(loud) * 1000:.1f} ms over "
            f"{len(loud)} calls; control plane peak RSS {_peak_rss_mb(stack.control.pid):.0f} MB"
        )
        assert set(prober.statuses) == {200}
        assert len(loud) > 20
        p50_quiet, worst = statistics.median(quiet), max(loud)
        # A loop stalled by one hostile run would keep the good caller waiting for seconds.
        assert worst < 0.5, f"good company's slowest answer {worst * 1000:.0f} ms"
        assert statistics.median(loud) < max(0.1, 10 * p50_quiet)
        assert _peak_rss_mb(stack.control.pid) < 1024
    finally:
        api.channel.close()
        stack.stop()


def _busy_company_is_capped_at_three(stack, api: Api) -> None:
    """With company "busy" limited to 3 runs in flight: 6 slow calls get 3 answers and 3 429s,
    while company "calm" (the default limit) is served meanwhile."""
    slow_flow, slow = api.flow_with_callback(
        "busy", "slow", shapes({"id": "w", "type": "wait", "seconds": 2}, callback={})
    )
    api.deploy(slow_flow.id)
    calm_flow, calm = api.flow_with_callback("calm", "c", shapes(callback={}))
    api.deploy(calm_flow.id)
    calm_call = (f"/api/v1/calm/{calm.id}", {"patchworks_signature": calm.signature})
    eventually(lambda: call_concurrently(stack.edge_url, [calm_call])[0].status == 200, 15)
    busy_call = (f"/api/v1/busy/{slow.id}", {"patchworks_signature": slow.signature})
    answers: list = []
    thread = threading.Thread(
        target=lambda: answers.extend(call_concurrently(stack.edge_url, [busy_call] * 6))
    )
    thread.start()
    time.sleep(0.5)
    assert call_concurrently(stack.edge_url, [calm_call])[0].status == 200
    thread.join(30)
    got = sorted((a.status, a.error) for a in answers)
    assert got == [(200, None)] * 3 + [(429, "too_many_runs")] * 3
    assert all(a.run_id is None for a in answers if a.status == 429)


def test_runs_in_flight_are_limited_per_company(tmp_path):
    # The installation default, from the environment (the older variable's name, still read).
    stack = start_stack(tmp_path, extra_env={"BOOMERANG_COMPANY_RUNS_IN_FLIGHT": "3"})
    api = Api(stack.control_target)
    try:
        api.company("busy")
        api.company("calm")
        _busy_company_is_capped_at_three(stack, api)
    finally:
        api.channel.close()
        stack.stop()


def test_runs_in_flight_follow_the_company_quota(tmp_path, stack_database):
    # One company's quota, set with SetQuotas: no restart, and the other company keeps 50.
    stack = start_stack(tmp_path, database_url=stack_database)
    api = Api(stack.control_target)
    try:
        api.company("busy")
        api.company("calm")
        api.companies.SetQuotas(
            cs.SetQuotasRequest(
                company="busy",
                quotas=r.Quotas(runs_in_flight=3),
                update_mask=FieldMask(paths=["runs_in_flight"]),
            ),
            metadata=api.md,
        )
        _busy_company_is_capped_at_three(stack, api)
    finally:
        api.channel.close()
        stack.stop()
