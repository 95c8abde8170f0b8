"""One run of a flow: the request that started it, the response it gives, and its state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from control_plane.engine.budgets import Meter
from control_plane.engine.payloads import Pairs, body_payload, headers_object, pairs_object

#: Notices (notify shapes) a run keeps; later ones are only counted.
MAX_NOTICES: Final = 100

#: Starts a child run (run_flow): (shape id, flow id, bucket, variables) → the child's run id.
#: Given by the runner (control_plane/runs/children.py); None where no runner is (tools).
StartChild = Callable[[str, str, list[Any], dict[str, Any]], Awaitable[str]]


@dataclass(frozen=True, slots=True)
class RunInput:
    """The triggering HTTP request, as the edge received it."""

    run_id: str
    company: str
    flow_id: str
    callback_id: str
    environment_id: str  # "" for the default environment
    method: str
    headers: Pairs  # without the signature header
    query: Pairs  # without the signature parameter
    body: bytes


@dataclass(frozen=True, slots=True)
class CallbackResponse:
    """What the waiting caller receives; its Content-Type comes from the callback's settings."""

    status: int
    headers: Pairs
    body: bytes


class RunState:
    """What shapes read and change besides the bucket, for one run on one runner.

    `vars`, `responded`, `notices` and `children` are copied in from the run's Progress before
    a shape runs and back out after it succeeds (executor.run_shape), so a failed or interrupted
    shape leaves the checkpointed progress as it was. Shapes replace them, never mutate them.
    """

    __slots__ = (
        "_meta",
        "_query",
        "bucket_bytes",
        "children",
        "input",
        "meter",
        "notices",
        "notices_dropped",
        "outbound",
        "responded",
        "response",
        "start_child",
        "vars",
    )

    def __init__(self, run_input: RunInput, meter: Meter, outbound: Any = None) -> None:
        self.input = run_input
        self.meter = meter
        #: The runner's outbound client (control_plane.outbound.client.Outbound) for connector
        #: shapes; None where no calls may be made (engine workers run no async shapes).
        self.outbound = outbound
        self.responded = False
        #: Set by the first callback shape reached; taken by the executor.
        self.response: CallbackResponse | None = None
        # Replaced, never mutated: a payload may be this very dict (a map of `vars`).
        self.vars: dict[str, Any] = {}
        self._query: dict[str, Any] | None = None
        self._meta: dict[str, Any] | None = None
        #: Approximate JSON size of the bucket after the last shape (0 before any).
        self.bucket_bytes = 0
        self.notices: list[dict[str, Any]] = []
        self.notices_dropped = 0
        #: Child runs started by run_flow shapes so far.
        self.children = 0
        self.start_child: StartChild | None = None

    def notice(self, notice: dict[str, Any]) -> None:
        """Keeps a notify shape's notice: the first MAX_NOTICES, then only counts them."""
        if len(self.notices) >= MAX_NOTICES:
            self.notices_dropped += 1
        else:
            self.notices = [*self.notices, notice]

    def idempotency_key(self, shape_id: str) -> str:
        """The same for every attempt at one shape of one run (a resumed run repeats the shape
        it was in), so a receiver can tell a repeat from a new request."""
        return f"{self.input.run_id}.{shape_id}"

    def respond(self, response: CallbackResponse) -> None:
        self.response = response
        self.responded = True

    @property
    def query(self) -> dict[str, Any]:
        if self._query is None:
            self._query = pairs_object(self.input.query)
        return self._query

    def first_payload(self) -> Any:
        """The request body, or the query object when there is no body (a GET)."""
        if self.input.body:
            max_depth = self.meter.budgets.max_depth
            return body_payload(self.input.body, self.input.headers, max_depth, self.meter)
        return self.query

    @property
    def meta(self) -> dict[str, Any]:
        # Built on first use: flows without expressions (trigger → callback) never pay for it.
        if self._meta is None:
            run_input = self.input
            self._meta = {
                "method": run_input.method,
                "headers": headers_object(run_input.headers),
                "query": self.query,
                "callback_id": run_input.callback_id,
                "environment_id": run_input.environment_id,
                "run_id": run_input.run_id,
                "company": run_input.company,
                "flow_id": run_input.flow_id,
            }
        return self._meta

    def context(self, payload: Any, bucket: list[Any]) -> dict[str, Any]:
        """The document expressions are evaluated against."""
        return {"payload": payload, "payloads": bucket, "meta": self.meta, "vars": self.vars}
