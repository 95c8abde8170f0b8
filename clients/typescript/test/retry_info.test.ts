// A refusal with google.rpc.RetryInfo (the control plane's TOO_MANY_CALLS) is sent again after
// its delay, mutations included; one without it (a quota) is not; and the attempts are bounded.
// Against a Connect server of CompanyService on loopback that refuses as the control plane does:
// the real refusal needs a company's calls held on the server, which tests/clients does in Python.
import assert from "node:assert/strict";
import { createServer } from "node:http2";
import type { Http2Server } from "node:http2";
import { after, before, test } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import {
  CompanyService,
  DeadlineExceeded,
  HINTED_ATTEMPTS,
  HINTED_MAX_WAIT_MS,
  ResourceExhausted,
  createBoomerangClient,
  hintedWaitMs,
} from "../src/index.js";
import { ErrorInfoSchema, RetryInfoSchema } from "../src/gen/google/rpc/error_details_pb.js";

/** How the fake server refuses: the first `refusals` calls of each method, with RetryInfo of
 * `retryDelayMs` (none when undefined). */
const busy = { refusals: 0, retryDelayMs: undefined as number | undefined };
const attempts: Record<string, number[]> = {};
let server: Http2Server;
let target: string;

function refuseOrPass(method: string): void {
  const times = (attempts[method] ??= []);
  times.push(performance.now());
  if (times.length > busy.refusals) return;
  const reason =
    busy.retryDelayMs === undefined ? "ERROR_REASON_QUOTA_EXCEEDED" : "ERROR_REASON_TOO_MANY_CALLS";
  const details = [{ desc: ErrorInfoSchema, value: { reason, domain: "boomerang.dev" } }];
  if (busy.retryDelayMs !== undefined) {
    const nanos = Math.round(busy.retryDelayMs * 1e6);
    details.push({ desc: RetryInfoSchema, value: { retryDelay: { seconds: 0n, nanos } } } as never);
  }
  throw new ConnectError("busy", Code.ResourceExhausted, undefined, details);
}

function routes(router: ConnectRouter): void {
  router.service(CompanyService, {
    getCompany(req) {
      refuseOrPass("GetCompany");
      return { company: { slug: req.slug } };
    },
    createCompany(req) {
      refuseOrPass("CreateCompany");
      return { company: { slug: req.slug } };
    },
  });
}

before(async () => {
  server = createServer(connectNodeAdapter({ routes }));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  target = `127.0.0.1:${(server.address() as { port: number }).port}`;
});

after(async () => {
  await new Promise((resolve) => server.close(resolve));
});

function reset(refusals: number, retryDelayMs: number | undefined): void {
  busy.refusals = refusals;
  busy.retryDelayMs = retryDelayMs;
  for (const method of Object.keys(attempts)) delete attempts[method];
}

test("retry info: reads and mutations are sent again, never sooner than asked", async () => {
  reset(2, 50);
  const client = createBoomerangClient({ target, apiKey: "k" });
  try {
    assert.equal((await client.companies.getCompany({ slug: "acme" })).company?.slug, "acme");
    const made = await client.companies.createCompany({ name: "Acme", slug: "acme" });
    assert.equal(made.company?.slug, "acme");
  } finally {
    client.close();
  }
  for (const method of ["GetCompany", "CreateCompany"]) {
    const [first, second, third] = attempts[method];
    assert.equal(attempts[method].length, 3);
    // Timers may fire a millisecond early: a little slack below 50 and 100.
    assert.ok(second - first >= 48 && third - second >= 98, String(attempts[method]));
  }
});

test("retry info: a refusal without it is not sent again", async () => {
  reset(1, undefined);
  const client = createBoomerangClient({ target, apiKey: "k" });
  try {
    const error = await client.companies.createCompany({ name: "A", slug: "a" }).catch((e) => e);
    assert.ok(error instanceof ResourceExhausted);
    assert.equal(error.reason, "ERROR_REASON_QUOTA_EXCEEDED");
    assert.equal(error.retryDelayMs, undefined);
  } finally {
    client.close();
  }
  assert.equal(attempts.CreateCompany.length, 1);
});

test("retry info: attempts stop at HINTED_ATTEMPTS with the last refusal", async () => {
  reset(99, 10);
  const client = createBoomerangClient({ target, apiKey: "k" });
  try {
    const error = await client.companies.getCompany({ slug: "acme" }).catch((e) => e);
    assert.ok(error instanceof ResourceExhausted);
    assert.equal(error.reason, "ERROR_REASON_TOO_MANY_CALLS");
    assert.equal(error.retryDelayMs, 10);
  } finally {
    client.close();
  }
  assert.equal(attempts.GetCompany.length, HINTED_ATTEMPTS);
});

test("retry info: a wait past the deadline ends the call at its deadline", async () => {
  reset(99, 2000);
  const client = createBoomerangClient({ target, apiKey: "k", timeoutMs: 300 });
  const started = Date.now();
  try {
    const error = await client.companies.getCompany({ slug: "acme" }).catch((e) => e);
    assert.ok(error instanceof DeadlineExceeded, String(error));
    assert.ok(Date.now() - started < 1500); // not after the 2 s the server asked for
  } finally {
    client.close();
  }
  assert.equal(attempts.GetCompany.length, 1);
});

test("retry info: waits are at least the delay, doubling, capped", () => {
  for (const [attempt, least] of [
    [1, 100],
    [2, 200],
    [3, 400],
    [9, HINTED_MAX_WAIT_MS],
  ]) {
    const waits = Array.from({ length: 200 }, () => hintedWaitMs(attempt, 100));
    assert.ok(Math.min(...waits) >= least && Math.max(...waits) <= least * 1.5);
  }
  assert.ok(hintedWaitMs(1, 60_000) <= HINTED_MAX_WAIT_MS * 1.5);
});
