"""The runner limits a company's runs in flight to its runs_in_flight quota, set with SetQuotas
(no restart, no environment variable): past it, callers get 429, and other companies do not."""

from __future__ import annotations

import threading
import time

import pytest
from google.protobuf.field_mask_pb2 import FieldMask

from boomerang.v1 import company_service_pb2 as cs
from boomerang.v1 import resources_pb2 as r
from tests.e2e.conftest import Api, call_concurrently, eventually, shapes, start_stack

pytestmark = pytest.mark.e2e


def test_runs_in_flight_follow_the_company_quota(tmp_path, stack_database):
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
        # The other company follows the default (50): untouched by the busy one's limit.
        assert call_concurrently(stack.edge_url, [calm_call])[0].status == 200
        thread.join(30)
        got = sorted((a.status, a.error) for a in answers)
        assert got == [(200, None)] * 3 + [(429, "too_many_runs")] * 3
    finally:
        api.channel.close()
        stack.stop()
