"""Every example in docs/flows.md is a test: each `flow-example` block's definition is validated
and run through the engine with its request, and the caller must get its answer (status, the
headers it names, the body as JSON or text) and the run must write its notices, if it names
them. A block with "upstream" (a connector's) runs against a real HTTP server on loopback standing
for the host it names, through the runner's own outbound client with loopback allowed. A block
may carry "skip_doc_test" (a reason) when its shape needs a system the engine cannot reach; the
test insists that every shape type has an example that runs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from control_plane.engine import CallbackResponse, RunInput, execute, validate_definition
from control_plane.engine.shapes import SHAPE_TYPES
from control_plane.outbound.client import Outbound
from control_plane.outbound.egress import parse_allow
from control_plane.outbound.settings import OutboundSettings
from tests.outbound.upstream import Reply, Upstream

DOC = Path(__file__).resolve().parents[2] / "docs" / "flows.md"
_BLOCK = re.compile(r"^```flow-example\n(.*?)^```", re.DOTALL | re.MULTILINE)


def _examples() -> list[dict[str, Any]]:
    return [json.loads(block) for block in _BLOCK.findall(DOC.read_text("utf-8"))]


EXAMPLES = _examples()


def _ids() -> list[str]:
    names = []
    for example in EXAMPLES:
        types = [s["type"] for s in example["definition"]["shapes"][1:]]
        names.append("+".join(types) or "trigger")
    return names


def _request(request: dict[str, Any]) -> RunInput:
    headers = tuple((k, v) for k, v in request.get("headers", {}).items())
    query = []
    for name, value in request.get("query", {}).items():
        for one in value if isinstance(value, list) else [value]:
            query.append((name, one))
    body = b""
    if "body" in request:
        content_type = request.get("headers", {}).get("Content-Type", "application/json")
        raw = request["body"]
        if content_type.startswith("text/") and isinstance(raw, str):
            body = raw.encode()
        else:
            body = json.dumps(raw).encode()
    return RunInput(
        "run-doc", "acme", "flow-doc", "cb-doc", "", request["method"], headers, tuple(query), body
    )


async def _accept_child(shape_id: str, flow: str, bucket: list, variables: dict) -> str:
    """run_flow's runner side, accepting every child (runs/children.py is tested apart)."""
    return "child"


def test_every_shape_type_has_a_runnable_example():
    ran = {
        s["type"]
        for example in EXAMPLES
        if "skip_doc_test" not in example
        for s in _walk(example["definition"]["shapes"])
    }
    assert ran == set(SHAPE_TYPES)


def _walk(shapes: list[dict]) -> list[dict]:
    found = []
    for shape in shapes:
        found.append(shape)
        for path in shape.get("paths", []):
            found += _walk(path["shapes"])
        for key in ("otherwise", "try", "catch"):
            found += _walk(shape.get(key, []))
    return found


@pytest.mark.parametrize("example", EXAMPLES, ids=_ids())
async def test_doc_example(example: dict[str, Any]) -> None:
    if "skip_doc_test" in example:
        pytest.skip(example["skip_doc_test"])
    upstream, outbound = None, None
    if "upstream" in example:
        upstream, outbound = _upstream(example)
    try:
        definition = validate_definition(example["definition"])
        responses: list[CallbackResponse] = []
        result = await execute(
            definition,
            _request(example["request"]),
            responses.append,
            start_child=_accept_child,
            outbound=outbound,
        )
    finally:
        if upstream is not None:
            await outbound.aclose()
            upstream.close()
    assert result.status == "succeeded", result.error
    expected = example["answer"]
    [response] = responses
    assert response.status == expected["status"]
    for name, value in expected.get("headers", {}).items():
        assert (name, value) in response.headers
    try:
        body = json.loads(response.body)
    except ValueError:
        body = response.body.decode()
    assert body == expected["body"]
    if "notices" in example:
        got = [{"level": n["level"], "message": n["message"]} for n in result.notices]
        assert got == example["notices"]


def _upstream(example: dict[str, Any]) -> tuple[Upstream, Outbound]:
    """Starts the example's upstream and points the definition's URLs at it (in place)."""
    spec = example["upstream"]
    server = Upstream()
    server.route(spec["path"], Reply(**spec["reply"]))
    text = json.dumps(example["definition"]).replace(spec["host"], server.url)
    example["definition"] = json.loads(text)

    async def no_connections(company: str, name: str):
        return None

    allow = OutboundSettings(egress_allow=parse_allow("127.0.0.1/32"))
    return server, Outbound(allow, no_connections)
