"""How fast a regenerated signature reaches the edge: RegenerateSignature → old URL refused.

For each of N regenerations: call RegenerateSignature through the SDK, then from the moment the
RPC returns, poll the edge in a tight loop (HEAD over one keep-alive connection) with the OLD
signature until it answers 403. That interval is the window in which a revoked URL still works.
Then a GET with the NEW signature must answer 200 with the flow's body. HEAD is used for polling
because the edge authenticates it exactly like a GET but answers 204 without running the flow,
so the polls neither add runs nor load the runner.

`python bench/propagation.py [--count 100]` starts its own stack; bench/callback_path.py runs
`measure()` on its stack after the load rounds.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field

from stack import (
    EXPECTED_BODY,
    BenchStack,
    KeepAlive,
    bench_stack,
    percentile,
)

#: A regeneration not seen by the edge within this long counts as a failure.
GIVE_UP_S = 10.0


@dataclass
class Propagation:
    #: Seconds from the RPC's return until the edge first refused the old signature.
    delays: list[float] = field(default_factory=list)
    #: Seconds the RegenerateSignature RPC itself took.
    rpc: list[float] = field(default_factory=list)
    #: Regenerations whose old signature was already refused at the first poll.
    first_poll: int = 0
    polls: int = 0
    new_accepted: int = 0
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures and self.new_accepted == len(self.delays)


def measure(bench: BenchStack, count: int) -> Propagation:
    result = Propagation()
    with KeepAlive(bench.stack.edge_url) as http:
        for i in range(count):
            old = bench.signature
            called = time.perf_counter()
            callback = bench.client.regenerate_signature(bench.callback_id)
            returned = time.perf_counter()
            result.rpc.append(returned - called)
            polls = 0
            while True:
                status = http.request("HEAD", bench.url(old))[0]
                polls += 1
                if status == 403:
                    result.delays.append(time.perf_counter() - returned)
                    break
                if status != 204:
                    result.failures.append(f"#{i}: HEAD with the old signature answered {status}")
                    break
                if time.perf_counter() - returned > GIVE_UP_S:
                    result.failures.append(f"#{i}: old signature still accepted after {GIVE_UP_S}s")
                    break
            result.polls += polls
            result.first_poll += polls == 1
            bench.signature = callback.signature
            status, _, body = http.request("GET", bench.url())
            if status == 200 and body == EXPECTED_BODY:
                result.new_accepted += 1
            else:
                result.failures.append(f"#{i}: GET with the new signature: {status} {body!r}")
    return result


def report(result: Propagation) -> None:
    n = len(result.delays)
    print(f"\nRegenerate → edge propagation ({len(result.rpc)} regenerations)")
    if n:

        def ms(values: list[float], p: float) -> str:
            return f"{percentile(values, p) * 1000:7.2f}"

        print("                                          p50 ms   p99 ms   max ms")
        print(
            "  RPC return → old signature refused    "
            f"{ms(result.delays, 50)}  {ms(result.delays, 99)}  {ms(result.delays, 100)}"
        )
        print(
            "  RegenerateSignature RPC (for scale)   "
            f"{ms(result.rpc, 50)}  {ms(result.rpc, 99)}  {ms(result.rpc, 100)}"
        )
        print(
            f"  old signature already refused at the first poll: {result.first_poll}/{n}; "
            f"{result.polls / n:.1f} polls per regeneration on average"
        )
    print(f"  new signature accepted after each (GET 200, same body): {result.new_accepted}/{n}")
    for failure in result.failures[:10]:
        print(f"  FAIL {failure}")
    print(f"  propagation check: {'ok' if result.ok else 'FAILED'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100, help="regenerations (default 100)")
    args = parser.parse_args()
    with bench_stack() as bench:
        result = measure(bench, args.count)
    report(result)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
