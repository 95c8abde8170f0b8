"""The HTTP surface under random input: raw sockets against a real edge process (docs/http.md).

A few thousand requests, built from a seeded generator (BOOMERANG_FUZZ_SEED, printed on
failure), go to `python -m edge` in front of a real control plane with deployed callbacks, so
some of them run flows. Request lines, methods, paths (real callback URLs, wrong ones, broken
ones), signatures (query, header, both, padded), headers (junk bytes, huge, repeated, folded,
NUL/TAB/CR) and bodies (random, deep JSON, chunked, truncated) are mixed. Every case must get an
answer within its socket timeout, never a 500, and only a status and reason that the README's
status table lists; an answer that closes the connection must close it. Afterwards no log of the
edge or the control plane holds a signature, and the logs are private files.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from boomerang.v1 import callback_service_pb2 as cbs
from tests.e2e.conftest import Api, mapping, shapes, start_stack

pytestmark = pytest.mark.e2e

SEED = int(os.environ.get("BOOMERANG_FUZZ_SEED", "20261201"))
CASES = int(os.environ.get("BOOMERANG_FUZZ_CASES", "3000"))
#: The whole run must end well inside a minute on a small machine.
BUDGET_S = 40.0
#: How long one case may wait for its answer (a trickled head is cut after HEADER_TIMEOUT_S).
CASE_TIMEOUT_S = 5.0
HEADER_TIMEOUT_S = 1.0
MAX_BODY = 16384
WORKERS = 8
README = Path(__file__).resolve().parents[2] / "README.md"


def documented_answers() -> tuple[set[int], set[tuple[int, str]]]:
    """Statuses and (status, reason) pairs listed in the README's "What the caller gets" table."""
    statuses: set[int] = set()
    pairs: set[tuple[int, str]] = set()
    for line in README.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.count("|") < 3:
            continue
        answer = line.rsplit("|", 2)[1]
        for status_text, rest in re.findall(
            r"\b([1-5]\d\d)\b((?:\s*(?:/\s*)?`[a-z_<>]+`)*)", answer
        ):
            status = int(status_text)
            statuses.add(status)
            for reason in re.findall(r"`([a-z_<>]+)`", rest):
                pairs.add((status, reason))
    return statuses, pairs


@dataclass
class Case:
    index: int
    kind: str
    data: bytes
    #: Send in pieces this far apart (a trickle), or all at once.
    pause_s: float = 0.0
    pieces: int = 1
    #: Half-close after sending.
    half_close: bool = False
    #: The request never completes: the edge may close without an answer (or answer 408).
    may_close: bool = False
    #: Responses expected on the connection (pipelining sends two).
    expect: int = 1


@dataclass
class Outcome:
    statuses: list[int] = field(default_factory=list)
    reasons: list[str | None] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    #: An answer carried an `alt-svc` header (Sanic's empty one).
    alt_svc: bool = False
    closed_after: bool = False  # the edge closed the connection after its answers
    error: str = ""  # "timeout", "no answer", a socket error


def _generic(reason: str) -> str:
    """The README lists the budgets as one row, `budget_<name>`."""
    return "budget_<name>" if reason.startswith("budget_") else reason


class Fuzzer:
    """Builds random requests around one company's real callbacks."""

    def __init__(self, rng: random.Random, callbacks: dict[str, object], other_company: str):
        self.rng = rng
        self.callbacks = callbacks
        self.other_company = other_company

    # -- pieces ---------------------------------------------------------------------------
    def junk(self, n: int, alphabet: bytes | None = None) -> bytes:
        if alphabet is None:
            return bytes(self.rng.randrange(256) for _ in range(n))
        return bytes(self.rng.choice(alphabet) for _ in range(n))

    def signature(self) -> str:
        cb = self.rng.choice(list(self.callbacks.values()))
        return self.rng.choice([cb.signature, cb.signature, "x" * 43, cb.signature[:-1] + "A"])

    def path(self) -> str:
        rng = self.rng
        cb = rng.choice(list(self.callbacks.values()))
        company, callback_id = cb.company, cb.id
        roll = rng.random()
        if roll < 0.08:
            company = self.other_company
        elif roll < 0.14:
            callback_id = callback_id[:-2] + "zz"
        elif roll < 0.18:
            return rng.choice(["/", "/healthz", "/readyz", "/metrics", "/api/v1", "/nope", "*"])
        elif roll < 0.22:
            callback_id = "%2e%2e" if rng.random() < 0.5 else "%00"
        path = f"/api/v1/{company}/{callback_id}"
        if rng.random() < 0.25:
            path += "/" + rng.choice(["uk", "nope", "UK", "uk/extra", "%75k"])
        return path

    def query(self, signature: str | None) -> str:
        rng = self.rng
        parts = []
        if signature is not None:
            parts.append(f"patchworks_signature={signature}")
            if rng.random() < 0.1:
                parts.append(f"patchworks_signature={self.signature()}")  # given twice
        for _ in range(rng.randrange(3)):
            parts.append(rng.choice(["sku=A1", "a=", "=b", "x=%ff%fe", "q=1+2", "k=%00", "&"]))
        rng.shuffle(parts)
        return ("?" + "&".join(parts)) if parts else ""

    def body(self) -> tuple[bytes, list[str]]:
        """A body and the headers that frame it."""
        rng = self.rng
        kind = rng.randrange(9)
        if kind == 0:
            return b"", []
        if kind == 1:
            body = json.dumps({"sku": "A1", "n": rng.randrange(1000)}).encode()
            return body, ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        if kind == 2:
            depth = rng.choice([100, 1000, 5000])
            body = b"[" * depth + b"]" * depth
            return body[:MAX_BODY], [f"Content-Length: {min(len(body), MAX_BODY)}"]
        if kind == 3:
            body = self.junk(rng.randrange(1, 300))
            ctype = rng.choice(["application/json", "text/plain", "application/octet-stream"])
            return body, [f"Content-Type: {ctype}", f"Content-Length: {len(body)}"]
        if kind == 4:  # chunked, well framed
            data = self.junk(rng.randrange(1, 200), b'abcdefgh{}[]:,"0123')
            chunks = b"".join(
                b"%x\r\n%s\r\n" % (len(data[i : i + 50]), data[i : i + 50])
                for i in range(0, len(data), 50)
            )
            return chunks + b"0\r\n\r\n", ["Transfer-Encoding: chunked"]
        if kind == 5:  # chunked, badly framed
            bad = rng.choice(
                [
                    b"zz\r\nab\r\n0\r\n\r\n",
                    b"-1\r\n",
                    b"5\r\nab\r\n0\r\n\r\n",
                    b"3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n",
                    b"3;ext\r\nabc\r\n0\r\n\r\n",
                    b"fffffffffffffffffff\r\n",
                    b"3\r\nabcXX0\r\n\r\n",
                ]
            )
            return bad, ["Transfer-Encoding: chunked"]
        if kind == 6:  # over the limit
            body = b"a" * (MAX_BODY + rng.randrange(1, 100))
            return body, [f"Content-Length: {len(body)}"]
        if kind == 7:  # odd framing headers
            return b"abc", rng.choice(
                [
                    ["Content-Length: 3", "Content-Length: 3"],
                    ["Content-Length: 3", "Transfer-Encoding: chunked"],
                    ["Content-Length: +3"],
                    ["Content-Length: 0x3"],
                    ["Content-Length: 3 "],
                    ["Transfer-Encoding: gzip"],
                    ["Content-Length: 99999999999999999999999"],
                ]
            )
        body = b"hello"
        return body, [f"Content-Length: {len(body)}"]

    def header_lines(self, signature: str | None) -> list[bytes]:
        rng = self.rng
        lines = [b"Host: edge.test"]
        if signature is not None:
            pad = rng.choice(["", " ", "\t", "  ", " \t"])
            pad2 = rng.choice(["", " ", "\t", "  ", " \t"])
            lines.append(f"patchworks-signature:{pad}{signature}{pad2}".encode())
        for _ in range(rng.choice([0, 0, 0, 0, 0, 1, 2, 3])):
            roll = rng.randrange(10)
            if roll == 0:
                lines.append(b"X-Junk: " + self.junk(rng.randrange(1, 40)))
            elif roll == 1:
                lines.append(self.junk(rng.randrange(1, 10)) + b": v")
            elif roll == 2:
                lines.append(b"X-Big: " + b"b" * rng.choice([100, 4000, 9000, 20000]))
            elif roll == 3:
                lines.append(b" folded continuation")
            elif roll == 4:
                lines.append(b"NoColonHere")
            elif roll == 5:
                lines.append(b"X-Tab:\tvalue\t")
            elif roll == 6:
                lines.append(b"X-Nul: a\x00b")
            elif roll == 7:
                lines.append(b"X-Cr: a\rb")
            elif roll == 8:
                lines.extend([b"X-Rep: 1"] * rng.randrange(2, 200))
            else:
                lines.append(b"Expect: " + rng.choice([b"100-continue", b"nonsense"]))
        return lines

    def method(self) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.75:
            return rng.choice([b"GET", b"POST", b"POST", b"HEAD", b"OPTIONS"])
        return rng.choice(
            [
                b"PUT",
                b"DELETE",
                b"PATCH",
                b"TRACE",
                b"CONNECT",
                b"get",
                b"G\x00T",
                b"",
                b"BREW",
                self.junk(rng.randrange(1, 8)),
            ]
        )

    # -- cases ----------------------------------------------------------------------------
    def case(self, index: int) -> Case:
        if self.rng.random() < 0.3:
            return self.good_case(index)
        rng = self.rng
        signature = self.signature()
        where = rng.random()
        query_sig = signature if where < 0.55 else None
        header_sig = signature if 0.45 < where < 0.9 else None
        method = self.method()
        target = (self.path() + self.query(query_sig)).encode()
        version = (
            b"HTTP/1.1"
            if rng.random() < 0.9
            else rng.choice([b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 ", b"HTTX/1.1", b"", b"http/1.1"])
        )
        kind = "request"
        roll = rng.random()
        if roll < 0.06:  # bytes the request line must not hold, signature and all
            kind = "bad-target"
            bad = rng.choice([b"\x00", b"\t", b"\r", b" ", b"\x7f", b"\xff", b"#frag", b"%"])
            cut = rng.randrange(len(target) + 1)
            target = target[:cut] + bad + target[cut:]
        elif roll < 0.09:
            kind = "long-target"
            target += b"&pad=" + b"p" * rng.choice([7000, 9000, 30000])
        elif roll < 0.11:
            kind = "absolute-target"
            target = b"http://edge.test" + target
        body, framing = self.body()
        lines = self.header_lines(header_sig) + [f.encode() for f in framing]
        rng.shuffle(lines)
        sep = b" " if rng.random() < 0.95 else rng.choice([b"  ", b"\t"])
        head = method + sep + target + b" " + version + b"\r\n" + b"\r\n".join(lines)
        data = head + b"\r\n\r\n" + body
        case = Case(index, kind, data)
        roll = rng.random()
        if roll < 0.004:  # a head trickled and never finished: cut after the header timeout
            case.kind, case.pieces, case.pause_s, case.may_close = "trickle", 8, 0.4, True
            case.data = head[: max(8, len(head) // 2)]
        elif roll < 0.03:  # the caller gives up half way
            case.kind, case.half_close, case.may_close = "truncated", True, True
            case.data = data[: rng.randrange(1, len(data))]
        elif roll < 0.06:  # two requests on one connection
            case.kind, case.expect = "pipelined", 2
            case.data = data + b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        elif roll < 0.08:
            case.kind, case.data = "raw-junk", self.junk(rng.randrange(1, 200))
            case.half_close = case.may_close = True
        return case

    def good_case(self, index: int) -> Case:
        """A well-formed call of a deployed callback with its signature: it runs the flow."""
        rng = self.rng
        cb = self.callbacks[rng.choice(["echo", "text"])]
        pad = rng.choice(["", " ", "\t", " \t "])
        in_query = rng.random() < 0.5
        query = f"?patchworks_signature={cb.signature}&sku=A{index}" if in_query else "?sku=B"
        lines = ["Host: edge.test"]
        if not in_query:
            lines.append(f"patchworks-signature:{pad}{cb.signature}{pad}")
        method, body = "GET", b""
        if rng.random() < 0.5:
            method = "POST"
            body = rng.choice(
                [b'{"sku": "C1"}', b"plain text \xe2\x9c\x93", b"[" * 5000 + b"]" * 5000]
            )
            lines.append(f"Content-Length: {len(body)}")
        head = f"{method} /api/v1/{cb.company}/{cb.id}{query} HTTP/1.1\r\n" + "\r\n".join(lines)
        return Case(index, "good", head.encode() + b"\r\n\r\n" + body)


def run_case(port: int, case: Case, deadline: float = math.inf) -> Outcome:
    out = Outcome()
    if time.monotonic() > deadline:  # an edge that hangs everywhere must not hang the suite
        out.error = "not run: the time budget is spent"
        return out
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=CASE_TIMEOUT_S) as sock:
            size = max(1, len(case.data) // case.pieces)
            try:
                for i in range(0, len(case.data), size):
                    sock.sendall(case.data[i : i + size])
                    if case.pause_s:
                        time.sleep(case.pause_s)
                if case.half_close:
                    sock.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the edge answered (or closed) before the request was all sent: read on
            reader = _Reader(sock)
            for _ in range(case.expect):
                answer = reader.response(head_only=case.data.startswith(b"HEAD"))
                if answer is None:
                    break
                status, headers, body = answer
                out.statuses.append(status)
                reason = None
                json_error = headers.get("content-type", "").startswith("application/json")
                if json_error and status >= 400 and body:
                    try:
                        reason = json.loads(body).get("error")
                    except ValueError:
                        reason = "<not json>"
                out.reasons.append(reason)
                out.content_types.append(headers.get("content-type", ""))
                out.alt_svc |= "alt-svc" in headers
                if headers.get("connection") == "close":
                    out.closed_after = reader.eof()
                    if not out.closed_after:
                        out.error = "said connection: close but stayed open"
                    break
            if not out.statuses and not out.error:
                out.error = "no answer" if reader.eof() else "timeout"
    except TimeoutError:
        out.error = "timeout"
    except ConnectionResetError:
        # The edge closed with unread request bytes (after an error answer, or a cut trickle).
        out.error = out.error or ("socket: reset" if not out.statuses else "")
    except OSError as e:
        out.error = out.error or f"socket: {e.__class__.__name__}"
    return out


class _Reader:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _more(self) -> bool:
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def response(self, head_only: bool) -> tuple[int, dict[str, str], bytes] | None:
        while True:
            while b"\r\n\r\n" not in self.buf:
                if not self._more():
                    return None
            head, self.buf = self.buf.split(b"\r\n\r\n", 1)
            if not head.startswith(b"HTTP/1.1 100 "):
                break  # 100 Continue is an interim answer: the final one follows
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ")[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = 0 if head_only or status in (204, 304) else int(headers.get("content-length", 0))
        while len(self.buf) < length:
            if not self._more():
                break
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def eof(self) -> bool:
        try:
            while self._more():
                pass
            return True
        except TimeoutError:
            return False
        except OSError:
            return True  # reset: closed all the same


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    stack = start_stack(
        tmp,
        extra_env={
            "EDGE_MAX_BODY_BYTES": str(MAX_BODY),
            "EDGE_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
            "EDGE_BODY_TIMEOUT_S": str(HEADER_TIMEOUT_S),
        },
    )
    api = Api(stack.control_target)
    api.company("fz")
    api.company("other")
    api.environment("fz", "uk")
    echo_flow, echo = api.flow_with_callback(
        "fz", "echo", shapes(mapping("{p: payload, m: meta.method}"), callback={})
    )
    api.deploy(echo_flow.id)
    text_flow, text = api.flow_with_callback(
        "fz", "text", shapes(callback={"unwrap": True}), content_type=cbs.CONTENT_TYPE_TEXT
    )
    api.deploy(text_flow.id)
    _, undeployed = api.flow_with_callback("fz", "undeployed", shapes(callback={}))
    callbacks = {"echo": echo, "text": text, "undeployed": undeployed}
    # The callbacks reach the edge through the change stream.
    deadline = time.monotonic() + 10
    probe = (
        f"GET /api/v1/fz/{echo.id}?patchworks_signature={echo.signature} HTTP/1.1\r\n"
        "Host: x\r\nConnection: close\r\n\r\n"
    )
    while run_case(stack.edge_port, Case(0, "probe", probe.encode())).statuses != [200]:
        assert time.monotonic() < deadline, "the callback did not reach the edge"
        time.sleep(0.05)
    yield stack, callbacks
    api.channel.close()
    stack.stop()


def test_http_surface_under_random_input(fuzz_stack):
    stack, callbacks = fuzz_stack
    statuses, pairs = documented_answers()
    rng = random.Random(SEED)
    fuzzer = Fuzzer(rng, callbacks, "other")
    cases = [fuzzer.case(i) for i in range(CASES)]
    started = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        deadline = started + BUDGET_S
        outcomes = list(pool.map(lambda c: run_case(stack.edge_port, c, deadline), cases))
    elapsed = time.monotonic() - started

    failures: list[str] = []
    seen: dict[tuple[int, str | None], int] = {}
    for case, out in zip(cases, outcomes, strict=True):
        found = []
        for status, reason in zip(out.statuses, out.reasons, strict=True):
            seen[(status, reason)] = seen.get((status, reason), 0) + 1
            if status >= 500 and status not in (502, 503, 504):
                found.append(f"{status} {reason}")
            elif status not in statuses:
                found.append(f"undocumented status {status} {reason}")
            elif reason is not None and (status, _generic(reason)) not in pairs:
                found.append(f"undocumented reason {status} {reason}")
        if out.alt_svc:
            found.append("an alt-svc header")
        for ctype in out.content_types:
            if ctype.startswith("text/") and "charset=utf-8" not in ctype:
                found.append(f"{ctype} without charset=utf-8")
        if case.kind == "good" and out.statuses != [200]:
            found.append(f"good: answered {out.statuses} {out.reasons}")
        if case.kind == "trickle" and out.statuses not in ([], [408]):
            found.append(f"trickle: answered {out.statuses}")
        if out.error and not (case.may_close and out.error in ("no answer", "socket: reset")):
            found.append(f"{case.kind}: {out.error}")
        elif out.statuses and out.statuses[-1] in (400, 408) and not out.closed_after:
            found.append(f"{case.kind}: {out.statuses[-1]} without closing the connection")
        failures += [f"#{case.index} {f} <- {case.data[:160]!r}" for f in found]

    # Every log line is out: records are written unbuffered, the access log within 0.25 s.
    time.sleep(0.5)
    signatures = [cb.signature for cb in callbacks.values()]
    leaks = []
    log_dir = stack.log_dir
    assert log_dir is not None
    for log in sorted(log_dir.iterdir()):
        text = log.read_bytes().decode("utf-8", "replace")
        leaks += [f"{log.name} holds a signature" for s in signatures if s in text]
        errors = [line for line in text.splitlines() if "Traceback" in line or " ERROR " in line]
        if errors:
            leaks.append(f"{log.name} logs errors: {errors[:3]}")
        if stat.S_IMODE(log.stat().st_mode) != 0o600:
            leaks.append(f"{log.name} is mode {stat.S_IMODE(log.stat().st_mode):o}, not 600")
    if stat.S_IMODE(log_dir.stat().st_mode) != 0o700:
        leaks.append(f"{log_dir} is mode {stat.S_IMODE(log_dir.stat().st_mode):o}, not 700")

    summary = ", ".join(f"{s} {r}: {n}" for (s, r), n in sorted(seen.items(), key=str))
    # One example of each kind of failure.
    examples: dict[str, str] = {}
    for f in failures:
        examples.setdefault(re.sub(r"^#\d+ ", "", f).split(" <- ")[0], f)
    print(f"seed {SEED}: {CASES} cases in {elapsed:.1f}s; answers: {summary}")
    assert not failures and not leaks, (
        f"seed {SEED} (BOOMERANG_FUZZ_SEED), {CASES} cases in {elapsed:.1f}s: "
        f"{len(failures)} failing cases; one of each kind: {sorted(examples.values())}; "
        f"logs: {leaks}; answers seen: {summary}"
    )
    assert elapsed < BUDGET_S, f"{CASES} cases took {elapsed:.1f}s (budget {BUDGET_S}s)"
    # The mix really exercised the surface: flows ran, and each refusal class was met.
    for wanted in [
        (200, None),
        (400, "bad_request"),
        (403, "forbidden"),
        (408, "request_timeout"),
        (413, "body_too_large"),
        (414, "uri_too_long"),
        (431, "headers_too_large"),
    ]:
        assert wanted in seen, f"seed {SEED}: no {wanted} among {summary}"


def test_json_nested_5000_levels_deep_runs_the_flow_with_the_body_as_text(fuzz_stack):
    """The runner's JSON parser runs out of stack: the body is taken as text, as any body
    that does not parse (it used to fail the run)."""
    stack, callbacks = fuzz_stack
    echo = callbacks["echo"]
    body = b"[" * 5000 + b"]" * 5000
    with httpx.Client(base_url=stack.edge_url, timeout=10) as http:
        response = http.post(
            f"/api/v1/{echo.company}/{echo.id}",
            params={"patchworks_signature": echo.signature},
            content=body,
            headers={"content-type": "application/json"},
        )
    assert response.status_code == 200, response.text
    assert response.json() == [{"p": body.decode(), "m": "POST"}]
