"""A run's checkpoint: the request it answers and its progress, as one JSON document.

Written after the callback and after every later shape, so another runner can resume the run
where it was (at-least-once per shape). The request body is left out: only the trigger reads it,
and the trigger is the first shape, always run before the callback (the first checkpoint), so a
resumed run never needs it; it would also be rewritten with every shape (measured with
bench/priority.py: 195 KB bodies made each checkpoint ~0.5 MB).

One checkpoint has it: a webhook-mode run's first one, at position 0, written before the flow
starts (`with_body`), so a runner that dies before the trigger ran leaves a run another runner
can start over (docs/answers.md). Base64 in the JSON: the body is any bytes.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from control_plane.engine import Progress, RunInput
from control_plane.engine.payloads import encode_json


class CheckpointError(ValueError):
    """The progress holds a value JSON cannot carry (NaN, ±Infinity from to_number)."""


def dump(run_input: RunInput, progress: Progress, *, with_body: bool = False) -> str:
    doc: dict[str, Any] = {
        "input": {
            "run_id": run_input.run_id,
            "company": run_input.company,
            "flow_id": run_input.flow_id,
            "callback_id": run_input.callback_id,
            "environment_id": run_input.environment_id,
            "method": run_input.method,
            "headers": run_input.headers,
            "query": run_input.query,
        },
        "progress": progress.to_doc(),
    }
    if with_body:
        doc["input"]["body_b64"] = base64.b64encode(run_input.body).decode("ascii")
    try:
        return encode_json(doc).decode("utf-8")
    except ValueError as exc:
        raise CheckpointError(f"a value cannot be written as JSON: {exc}") from None


def load(text: str) -> tuple[RunInput, Progress]:
    doc = json.loads(text)
    raw = doc["input"]
    run_input = RunInput(
        run_id=raw["run_id"],
        company=raw["company"],
        flow_id=raw["flow_id"],
        callback_id=raw["callback_id"],
        environment_id=raw["environment_id"],
        method=raw["method"],
        headers=tuple((n, v) for n, v in raw["headers"]),
        query=tuple((n, v) for n, v in raw["query"]),
        body=base64.b64decode(raw["body_b64"]) if "body_b64" in raw else b"",
    )
    return run_input, Progress.from_doc(doc["progress"])
