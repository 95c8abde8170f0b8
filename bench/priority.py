"""Pre-callback work before tails: a light caller's latency, alone and behind a backlog of tails.

One stack (boomerang.local.LocalStack: the control plane with the runner inside, and the edge,
on loopback, SQLite), with the product's defaults (the cap of 50 runs in flight per company
included), and two companies:

- `light`: GET → trigger → map `{sku: payload.sku}` → callback. A small run: it is evaluated
  inline on the runner's event loop and never enters the engine workers.
- `heavy`: POST of a ~200 KB JSON body → trigger → callback → 6 map shapes after the callback,
  each sorting and projecting the body's items (tens of ms of CPU each, within the budgets of
  control_plane/engine/budgets.py). The body is over 64 KiB, so even its pre-callback shapes run
  in the engine workers of the caller lane; its tails go to the tail lane's workers (nice 10).

The light callback is loaded open-loop at a fixed rate (bench/openloop.py: latency from each
request's due time, so a slow server cannot hide behind fewer requests, unlike wrk's closed
loop), (a) alone, and (b) while another open-loop generator keeps POSTing the heavy callback, so
that tails queue up in the engine workers (up to the heavy company's cap of runs in flight; past
it the edge answers 429 too_many_runs, which is counted, not a failure). Rounds alternate a and
b, and the tails a (b) round leaves are let finish before the next (a). The claim measured: the
light caller's p99 with tails queued stays near its quiet value (docs/runs.md: Patchworks' priority
queue for pre-callback work; control_plane/runs/workers.py and journal.py). What the light run
shares with the tails: the machine's two cores (the tail workers run niced), and the journal,
which commits what a caller waits for before any tail checkpoint.

`python bench/priority.py [--rate 200 --heavy-rate 50 --duration 10 --rounds 2]` (`make bench`
runs it after callback_path.py). It prints the figures side by side with their ratio. It exits 1
only when the benchmark itself fails (an answer other than 200 or 429, a wrong light body, a
heavy run that did not succeed, tails that never finish), never because of a figure.
"""

from __future__ import annotations

import argparse
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from stack import (
    ADMIN_KEY,
    KeepAlive,
    cpu_seconds,
    machine_busy_seconds,
    percentile,
    thread_cpu_seconds,
    wait_for_status,
)

from boomerang.local import LocalStack
from boomerang.sdk import Client
from edge.errors import RUN_ID_HEADER

OPENLOOP = Path(__file__).with_name("openloop.py")
#: How many expensive map shapes follow the heavy flow's callback (--tails).
TAILS = 6
#: Items in the heavy document (--items): ~100 bytes each, so ~200 KB, and ~40 ms per tail on
#: this class of machine (~90,000 of the 200,000 expression steps one evaluation may take).
HEAVY_ITEMS = 2000
#: Each tail keeps the items (for the next tail) and adds only a count of what it built, so the
#: bucket stays the size of the document while every tail does the whole sort and projection.
TAIL_EXPRESSION = (
    "{sku: payload.sku, items: payload.items, "
    "built: length(sort_by(payload.items, &n)[*].{n: n, s: join(',', tags)})}"
)
LIGHT_DEFINITION = {
    "shapes": [
        {"id": "trigger", "type": "trigger"},
        {"id": "map", "type": "map", "expression": "{sku: payload.sku}"},
        {"id": "reply", "type": "callback"},
    ]
}
LIGHT_QUERY = "sku=L1"
LIGHT_BODY = b'[{"sku":"L1"}]'
#: The heavy request's body with --items-from flow: the items are in the flow instead.
SMALL_BODY = b'{"sku":"H1"}'


def heavy_document(items: int) -> dict:
    rng = random.Random(7)  # the same document every run
    return {
        "sku": "H1",
        "items": [
            {
                "n": rng.randrange(1_000_000),
                "tags": [f"t{rng.randrange(1000):03d}x" for _ in range(6)],
                "note": "x" * 20,
            }
            for _ in range(items)
        ],
    }


def heavy_definition(tails: int, document: dict | None) -> dict:
    """trigger → callback → `tails` maps; with `document`, a manual_payload of it goes first
    after the callback (the request then stays small: --items-from flow)."""
    after = [{"id": "items", "type": "manual_payload", "payload": document}] if document else []
    after += [
        {"id": f"tail{i}", "type": "map", "expression": TAIL_EXPRESSION}
        for i in range(1, tails + 1)
    ]
    return {
        "shapes": [
            {"id": "trigger", "type": "trigger"},
            {"id": "reply", "type": "callback"},
            *after,
        ]
    }


@dataclass
class Stack:
    stack: LocalStack
    client: Client
    light_url: str
    heavy_url: str
    heavy_company_id: str

    @property
    def db_path(self) -> Path:
        return Path(self.stack.database_url.removeprefix("sqlite:///"))


@contextmanager
def priority_stack(root: Path, heavy: dict, env: dict[str, str] | None = None) -> Iterator[Stack]:
    stack = LocalStack(
        state_dir=root / "state", admin_key=ADMIN_KEY, log_dir=root / "logs", extra_env=env or {}
    )
    try:
        stack.start_control_plane()
        with Client(stack.control_target, ADMIN_KEY) as client:
            urls, company_ids = {}, {}
            for slug, definition in (("light", LIGHT_DEFINITION), ("heavy", heavy)):
                company_ids[slug] = client.create_company(name=slug.title(), slug=slug).id
                flow = client.create_flow(slug, slug, definition).flow
                client.deploy_version(flow.id)
                callback = client.create_callback(flow.id, name=slug)
                urls[slug] = (
                    f"{stack.edge_url}/api/v1/{slug}/{callback.id}"
                    f"?patchworks_signature={callback.signature}"
                )
            stack.start_edge()
            wait_for_status(stack.edge_url, f"{urls['light']}&{LIGHT_QUERY}", 200)
            yield Stack(
                stack,
                client,
                f"{urls['light']}&{LIGHT_QUERY}",
                urls["heavy"],
                company_ids["heavy"],
            )
    finally:
        stack.stop()


@dataclass
class Load:
    """One open-loop generator's answer (bench/openloop.py's JSON)."""

    latencies_ms: list[float]
    codes: list[int]
    statuses: dict[str, int]
    errors: dict[str, int]
    sent: int
    lag_max_ms: float
    unanswered: int

    @classmethod
    def parse(cls, text: str) -> Load:
        doc = json.loads(text)
        return cls(
            [s * 1000 for s in doc["latencies"]],
            doc["codes"],
            doc["statuses"],
            doc["errors"],
            doc["sent"],
            doc["lag_max"] * 1000,
            doc["unanswered"],
        )

    def pct(self, p: float, status: int | None = None) -> float:
        """Latency percentile of the answers (with this status only, if given)."""
        values = [
            ms
            for ms, code in zip(self.latencies_ms, self.codes, strict=True)
            if status is None or code == status
        ]
        return percentile(values, p) if values else float("nan")


def start_load(
    url: str, rate: float, duration: float, body: Path | None = None
) -> subprocess.Popen:
    command = [sys.executable, str(OPENLOOP), url, "--rate", f"{rate:g}"]
    command += ["--duration", f"{duration:g}", "--timeout", "30"]
    if body is not None:
        command += ["--method", "POST", "--body-file", str(body)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def finish_load(process: subprocess.Popen) -> Load:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"the load generator failed ({process.returncode})")
    return Load.parse(out)


def _query(db_path: Path, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10) as db:
        return db.execute(sql, params).fetchall()


def tail_backlog(db_path: Path) -> int:
    """Runs whose caller was answered and whose tail is not done (their task is in the tail lane:
    control_plane/runs/lifecycle.py LANE_TAIL)."""
    return _query(db_path, "SELECT count(*) FROM run_task WHERE lane = 1")[0][0]


def tails_done(db_path: Path, company_id: str) -> int:
    """Tail shapes completed, from the shape log each checkpoint writes to the run record."""
    return _query(
        db_path,
        "SELECT count(*) FROM run, json_each(run.shapes) WHERE run.company_id = ? "
        "AND json_extract(json_each.value, '$.shape_type') = 'map' "
        "AND json_extract(json_each.value, '$.status') = 'ok'",
        company_id,
    )[0][0]


def heavy_runs(db_path: Path, company_id: str) -> dict[str, int]:
    rows = _query(
        db_path,
        "SELECT status || '/' || response_status, count(*) FROM run WHERE company_id = ? "
        "GROUP BY 1",
        company_id,
    )
    return dict(rows)


class BacklogSampler:
    """Samples the tail backlog twice a second on a thread while a round runs."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.samples: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.samples.append(tail_backlog(self.db_path))
            except sqlite3.OperationalError:
                pass  # locked for a moment by a commit: the next sample will do

    def __enter__(self) -> BacklogSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Round:
    light: Load
    heavy: Load | None = None
    backlog: list[int] = field(default_factory=list)
    tails: int = 0  # tail shapes completed during the light load
    cp_cores: float = 0.0
    #: The control plane's main thread: its event loop (API, streams, inline shapes, journal).
    loop_cores: float = 0.0
    edge_cores: float = 0.0
    others: float = 0.0


def measure_round(s: Stack, args: argparse.Namespace, body: Path, heavy: bool) -> Round:
    assert s.stack.control is not None and s.stack.edge is not None
    cp, edge = s.stack.control.pid, s.stack.edge.pid
    heavy_load = None
    if heavy:
        # Heavy first, so the backlog of tails is there before the light load starts, and on
        # until after it ends.
        heavy_load = start_load(
            s.heavy_url, args.heavy_rate, args.lead + args.duration + 1, body=body
        )
        time.sleep(args.lead)
    tails_before = tails_done(s.db_path, s.heavy_company_id)
    cpu = {"cp": cpu_seconds(cp), "edge": cpu_seconds(edge), "loop": _main_thread_seconds(cp)}
    busy, started = machine_busy_seconds(), time.monotonic()
    with BacklogSampler(s.db_path) as sampler:
        light = finish_load(start_load(s.light_url, args.rate, args.duration))
    elapsed = time.monotonic() - started
    busy = machine_busy_seconds() - busy
    used = {
        "cp": cpu_seconds(cp) - cpu["cp"],
        "edge": cpu_seconds(edge) - cpu["edge"],
        "loop": _main_thread_seconds(cp) - cpu["loop"],
    }
    tails = tails_done(s.db_path, s.heavy_company_id) - tails_before
    return Round(
        light,
        finish_load(heavy_load) if heavy_load else None,
        sampler.samples,
        tails,
        used["cp"] / elapsed,
        used["loop"] / elapsed,
        used["edge"] / elapsed,
        # Everything but the two servers: the generators and this script count as others
        # (small for the light one; the heavy one sends ~10 MB/s in (b)).
        max(0.0, busy - used["cp"] - used["edge"]) / elapsed,
    )


def _main_thread_seconds(pid: int) -> float:
    # Python 3.11 does not give its threads OS names, so only the main thread (tid = pid) can be
    # told apart in /proc; the engine, database and gRPC threads are the rest.
    return next(c for name, c in thread_cpu_seconds(pid).items() if name.endswith(f"/{pid}"))


def wait_for_tails(s: Stack, timeout: float) -> tuple[int, float]:
    """Until no tail is left (or `timeout`): (backlog left, seconds waited)."""
    started = time.monotonic()
    while True:
        left = tail_backlog(s.db_path)
        waited = time.monotonic() - started
        if left == 0 or waited > timeout:
            return left, waited
        time.sleep(0.5)


def check_light(s: Stack) -> list[str]:
    with KeepAlive(s.stack.edge_url) as http:
        status, _, body = http.request("GET", s.light_url)
    return [] if (status, body) == (200, LIGHT_BODY) else [f"light answered {status} {body!r}"]


def check_heavy(s: Stack, body: bytes) -> list[str]:
    """One heavy call answers 200 with its body echoed (the bucket), and its run succeeds with
    every tail done: the expressions fit the budgets."""
    with KeepAlive(s.stack.edge_url, timeout=30) as http:
        parts = s.heavy_url.removeprefix(s.stack.edge_url)
        http.conn.request("POST", parts, body=body, headers={"Content-Type": "application/json"})
        response = http.conn.getresponse()
        answer, run_id = response.read(), response.getheader(RUN_ID_HEADER, "")
    if response.status != 200 or json.loads(answer) != [json.loads(body)]:
        return [f"heavy answered {response.status} {answer[:200]!r}"]
    deadline = time.monotonic() + 30
    while tail_backlog(s.db_path) and time.monotonic() < deadline:
        time.sleep(0.1)
    runs = heavy_runs(s.db_path, s.heavy_company_id)
    if runs != {"succeeded/200": 1}:
        return [f"the heavy run did not succeed ({run_id}): {runs}"]
    return []


def shapes_of_one_heavy_run(s: Stack) -> list[tuple[str, int]]:
    rows = _query(
        s.db_path,
        "SELECT shapes FROM run WHERE company_id = ? AND status = 'succeeded' LIMIT 1",
        s.heavy_company_id,
    )
    return [(x["shape_id"], x["duration_us"]) for x in json.loads(rows[0][0])] if rows else []


def _f(v: float, width: int, digits: int = 1) -> str:
    return f"{v:{width}.{digits}f}"


def report(rounds: dict[str, list[Round]], args: argparse.Namespace) -> None:
    print(
        f"\nlight: open-loop GET at {args.rate:g}/s for {args.duration:g} s per round; latency "
        "of its 200s from each request's due time"
    )
    print(
        f"{'':26}{'sent':>6}{'200':>6}{'429':>5}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}"
        f"{'lag ms':>7}{'backlog':>9}{'tails':>6}{'cp':>6}{'loop':>6}{'edge':>6}{'others':>7}"
    )
    labels = {"a": "(a) light alone", "b": "(b) light + heavy tails"}
    for key, rs in rounds.items():
        for i, r in enumerate(rs, 1):
            lt = r.light
            backlog = f"{statistics.median(r.backlog):.0f}/{max(r.backlog)}" if r.backlog else "-"
            print(
                f"  round {i} {key:16}{lt.sent:>6}{lt.statuses.get('200', 0):>6}"
                f"{lt.statuses.get('429', 0):>5}{_f(lt.pct(50, 200), 8, 2)}"
                f"{_f(lt.pct(99, 200), 8, 2)}{_f(lt.pct(100, 200), 8, 1)}{_f(lt.lag_max_ms, 7)}"
                f"{backlog:>9}{r.tails:>6}{_f(r.cp_cores, 6, 2)}{_f(r.loop_cores, 6, 2)}"
                f"{_f(r.edge_cores, 6, 2)}{_f(r.others, 7, 2)}"
            )
    print(f"{'':43}{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}   (medians over the rounds)")
    med = {
        key: [statistics.median(r.light.pct(p, 200) for r in rs) for p in (50, 99, 100)]
        for key, rs in rounds.items()
    }
    for key in rounds:
        print(f"{labels[key]:43}" + "".join(_f(v, 8, 2) for v in med[key]))
    ratios = (b / a for a, b in zip(med["a"], med["b"], strict=True))
    print(f"{'ratio b/a':43}" + "".join(_f(v, 8, 2) for v in ratios))
    print(
        "  429 = light refused: its company had 50 runs in flight (slow runs pile up to the cap);\n"
        "  lag = how late the generator sent (max), included in the latencies; backlog = runs\n"
        "  answered and waiting on tails (run_task rows in the tail lane), median/max of samples\n"
        "  every 0.5 s; tails = tail shapes completed during the light load; cp / loop / edge =\n"
        "  cores used by the control plane (all threads) / its main thread (the event loop) / the\n"
        "  edge; others = cores used by everything else, the load generators included."
    )
    print(
        f"\nheavy: open-loop POST of {args.body_kb:.0f} KB at {args.heavy_rate:g}/s, from "
        f"{args.lead:g} s before the light load to 1 s after it; 429 = the heavy company was at\n"
        "its cap of runs in flight (BOOMERANG_COMPANY_RUNS_IN_FLIGHT, 50): refused, not queued"
    )
    for i, r in enumerate(rounds["b"], 1):
        h = r.heavy
        assert h is not None
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(h.statuses.items()))
        print(
            f"  round {i}: sent {h.sent}, answered {sum(h.statuses.values())} ({statuses}), "
            f"errors {h.errors or 0}, unanswered {h.unanswered}; 200s p50 {h.pct(50, 200):.0f} "
            f"ms, p99 {h.pct(99, 200):.0f} ms; 429s p50 {h.pct(50, 429):.0f} ms; tails done "
            f"during the light load: {r.tails} ({r.tails / args.duration:.1f}/s)"
        )


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200, help="light requests/s (200)")
    parser.add_argument("--heavy-rate", type=float, default=50, help="heavy requests/s (50)")
    parser.add_argument("--duration", type=float, default=10, help="seconds of light load (10)")
    parser.add_argument(
        "--lead", type=float, default=3, help="seconds of heavy load before the light load (3)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of a and b (2)")
    parser.add_argument("--warmup", type=float, default=3, help="light warm-up seconds (3)")
    parser.add_argument(
        "--drain-timeout", type=float, default=120, help="seconds to let tails finish (120)"
    )
    parser.add_argument("--tails", type=int, default=TAILS, help=f"heavy tails ({TAILS})")
    parser.add_argument(
        "--items", type=int, default=HEAVY_ITEMS, help=f"items per tail ({HEAVY_ITEMS})"
    )
    parser.add_argument(
        "--items-from",
        choices=("body", "flow"),
        default="body",
        help="where the heavy items come from: the request body (default) or a manual_payload "
        "after the callback (a small request: separates the cost of large bodies from tails)",
    )
    parser.add_argument("--state-dir", type=Path, help="keep state and logs here (a new dir)")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set in the stack's environment, to try a setting (BOOMERANG_ENGINE_WORKERS=2)",
    )
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="boomerang-priority-") as tmp:
        root = args.state_dir or Path(tmp)
        if (root / "state").exists():
            print(f"error: {root} holds an earlier run's state: give a new directory")
            return 1
        root.mkdir(parents=True, exist_ok=True)
        document = heavy_document(args.items)
        doc_kb = len(json.dumps(document, separators=(",", ":"))) // 1024
        if args.items_from == "body":
            body = json.dumps(document, separators=(",", ":")).encode()
            definition = heavy_definition(args.tails, None)
            args.heavy_what = f"{args.items} items in a {doc_kb} KB body"
        else:
            body = SMALL_BODY
            definition = heavy_definition(args.tails, document)
            args.heavy_what = f"{args.items} items ({doc_kb} KB) set by the flow after the callback"
        args.body_kb = len(body) / 1024
        body_file = root / "heavy-body.json"
        body_file.write_bytes(body)
        env = dict(item.split("=", 1) for item in args.env)
        if env:
            print(f"stack environment: {env}")
        with priority_stack(root, definition, env) as s:
            return measure(s, args, body, body_file)


def measure(s: Stack, args: argparse.Namespace, body: bytes, body_file: Path) -> int:
    problems = check_light(s) + check_heavy(s, body)
    tail_ms = [us / 1000 for sid, us in shapes_of_one_heavy_run(s) if sid.startswith("tail")]
    print(
        f"heavy flow: trigger → callback → {args.tails} tails of {TAIL_EXPRESSION!r} over "
        f"{args.heavy_what}; one run alone: tails took "
        + (", ".join(f"{t:.0f}" for t in tail_ms) or "-")
        + " ms"
    )
    if problems:
        for problem in problems:
            print(f"FAIL {problem}")
        return 1
    finish_load(start_load(s.light_url, args.rate, args.warmup))  # warm the light path
    rounds: dict[str, list[Round]] = {"a": [], "b": []}
    for i in range(args.rounds):
        for key in ("a", "b"):
            r = measure_round(s, args, body_file, heavy=key == "b")
            rounds[key].append(r)
            print(
                f"  round {i + 1} {key}: light p50 {r.light.pct(50, 200):.2f} ms, "
                f"p99 {r.light.pct(99, 200):.2f} ms, answers {r.light.statuses}"
                + (f"; heavy answers {r.heavy.statuses}, tails done {r.tails}" if r.heavy else ""),
                flush=True,
            )
            problems += _light_problems(f"round {i + 1} {key}", r.light)
            if r.heavy is not None:
                problems += _heavy_problems(f"round {i + 1} {key}", r.heavy)
            if key == "b":
                left, waited = wait_for_tails(s, args.drain_timeout)
                print(f"    tails left after the round finished in {waited:.1f} s", flush=True)
                if left:
                    problems.append(f"round {i + 1}: {left} runs still on their tails")
    report(rounds, args)

    runs = heavy_runs(s.db_path, s.heavy_company_id)
    answered = sum(r.heavy.statuses.get("200", 0) for r in rounds["b"] if r.heavy) + 1
    print(f"\nheavy runs recorded: {runs} for {answered} heavy requests answered 200")
    # Every heavy answer made a run that must now have finished all its tails; a request the
    # generator gave up on may have made one too.
    unanswered = sum(r.heavy.unanswered for r in rounds["b"] if r.heavy)
    done = runs.get("succeeded/200", 0)
    if set(runs) - {"succeeded/200"} or not answered <= done <= answered + unanswered:
        problems.append(f"heavy runs: {runs} for {answered} answered 200")
    quiet, busy = (statistics.median(r.light.pct(99, 200) for r in rounds[k]) for k in "ab")
    refused = sum(r.light.statuses.get("429", 0) for r in rounds["b"])
    print(
        f"\nlight p99 behind the heavy tails: {busy:.1f} ms against {quiet:.1f} ms alone "
        f"({busy / quiet:.1f}x); light requests refused 429 meanwhile: {refused}"
    )
    noisy = [r.others for rs in rounds.values() for r in rs if r.others > 1.0]
    if noisy:
        print(
            "note: others (the generators included) took over 1 core in some rounds: another "
            "tenant competes for the 2 cores; read the ratio, rerun on a quiet machine"
        )
    print()
    for problem in problems:
        print(f"FAIL {problem}")
    print("correctness checks: " + ("FAILED" if problems else "ok"))
    return 1 if problems else 0


def _heavy_problems(name: str, load: Load) -> list[str]:
    # The heavy load is the background: a 429 (its company at the cap) is expected, anything else
    # but a 200 means the stack failed under it.
    other = {k: v for k, v in load.statuses.items() if k not in ("200", "429")}
    problems = [f"{name}: heavy answered {other}"] if other else []
    if load.errors:
        problems.append(f"{name}: heavy errors {load.errors}")
    return problems


def _light_problems(name: str, load: Load) -> list[str]:
    # 429 is the product's answer to a company past its cap of runs in flight: a figure (light
    # runs slow enough to pile up), reported in the table, not a failure of the benchmark.
    other = {k: v for k, v in load.statuses.items() if k not in ("200", "429")}
    problems = [f"{name}: light answered {other}"] if other else []
    if load.errors or load.unanswered:
        problems.append(f"{name}: light errors {load.errors}, unanswered {load.unanswered}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
