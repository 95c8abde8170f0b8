// One failure per error family, each provoked for real on the running control plane, checked
// as the caller sees it: the typed class (the Python SDK's names), the ErrorInfo reason and
// metadata, the BadRequest field violations. And the retry rule: reads only.
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { Socket } from "node:net";
import { after, before, test } from "node:test";
import type { Interceptor } from "@connectrpc/connect";
import {
  AlreadyExists,
  ApiKeyScope,
  BoomerangError,
  DeadlineExceeded,
  InvalidArgument,
  NotFound,
  PermissionDenied,
  ResourceExhausted,
  Unauthenticated,
  Unavailable,
  createBoomerangClient,
} from "../src/index.js";
import type { BoomerangClient } from "../src/index.js";
import { adminKey, target, uniqueSlug } from "./stack.js";

let admin: BoomerangClient;
let slug: string;
const others: BoomerangClient[] = [];

function clientWith(apiKey: string, extra: Partial<Parameters<typeof createBoomerangClient>[0]> = {}) {
  const client = createBoomerangClient({ target, apiKey, ...extra });
  others.push(client);
  return client;
}

/** Asserts that `call` fails with an error of `Class` and `reason`; returns the error. */
async function failure<T extends BoomerangError>(
  call: Promise<unknown>,
  Class: new (...args: never[]) => T,
  reason: string,
): Promise<T> {
  const error = await call.then(
    () => assert.fail(`expected ${Class.name} (${reason}), but the call succeeded`),
    (e: unknown) => e,
  );
  assert.ok(error instanceof Class, `expected ${Class.name}, got ${String(error)}`);
  assert.ok(error instanceof BoomerangError);
  assert.equal(error.name, Class.name);
  assert.equal(error.reason, reason);
  return error;
}

before(async () => {
  admin = clientWith(adminKey);
  slug = uniqueSlug("errors");
  await admin.companies.createCompany({ name: "Errors", slug });
});

after(() => {
  for (const client of others) client.close();
});

test("not found: a company nobody made", async () => {
  const err = await failure(
    admin.companies.getCompany({ slug: uniqueSlug("nobody") }),
    NotFound,
    "ERROR_REASON_COMPANY_NOT_FOUND",
  );
  assert.match(err.message, /^NOT_FOUND \(ERROR_REASON_COMPANY_NOT_FOUND\): /);
  assert.deepEqual(err.fieldViolations, []);
});

test("invalid argument: a bad expression is named by its field path", async () => {
  const err = await failure(
    admin.flows.createFlow({
      company: slug,
      name: "broken",
      definition: {
        shapes: [
          { id: "trigger", type: "trigger" },
          { id: "map", type: "map", expression: "{sku: payload.sku" },
        ],
      },
    }),
    InvalidArgument,
    "ERROR_REASON_INVALID_DEFINITION",
  );
  assert.deepEqual(
    err.fieldViolations.map((v) => v.field),
    ["definition.shapes[1].expression"],
  );
  assert.ok(err.fieldViolations[0].description.length > 0);
  // It changed nothing.
  const { flows } = await admin.flows.listFlows({ company: slug });
  assert.deepEqual(flows, []);
});

test("invalid argument: a bad slug", async () => {
  const err = await failure(
    admin.companies.createCompany({ name: "Bad", slug: "Not A Slug!" }),
    InvalidArgument,
    "ERROR_REASON_INVALID_ARGUMENT",
  );
  assert.deepEqual(
    err.fieldViolations.map((v) => v.field),
    ["slug"],
  );
});

test("already exists: a slug taken", async () => {
  await failure(
    admin.companies.createCompany({ name: "Again", slug }),
    AlreadyExists,
    "ERROR_REASON_SLUG_TAKEN",
  );
});

test("unauthenticated: no key, and a key the server never made", async () => {
  await failure(
    clientWith("").companies.listCompanies({}),
    Unauthenticated,
    "ERROR_REASON_MISSING_API_KEY",
  );
  await failure(
    clientWith("bmk_not-a-key-0123456789abcdefghijklmnopqrstuvw").companies.listCompanies({}),
    Unauthenticated,
    "ERROR_REASON_INVALID_API_KEY",
  );
});

test("permission denied: a company key making a company, an edge key listing them", async () => {
  const companyKey = (await admin.apiKeys.createApiKey({ company: slug, name: "own" })).secret;
  await failure(
    clientWith(companyKey).companies.createCompany({ name: "X", slug: uniqueSlug("x") }),
    PermissionDenied,
    "ERROR_REASON_ADMIN_KEY_REQUIRED",
  );
  const edgeKey = (await admin.apiKeys.createApiKey({ name: "edge", scope: ApiKeyScope.EDGE }))
    .secret;
  await failure(
    clientWith(edgeKey).companies.listCompanies({}),
    PermissionDenied,
    "ERROR_REASON_KEY_SCOPE",
  );
});

test("quota exceeded: the quota, its limit and the use in the metadata", async () => {
  const quotaSlug = uniqueSlug("quota");
  await admin.companies.createCompany({ name: "Quota", slug: quotaSlug });
  await admin.companies.setQuotas({
    company: quotaSlug,
    quotas: { flows: 1 },
    updateMask: { paths: ["flows"] },
  });
  await admin.flows.createFlow({ company: quotaSlug, name: "one" });
  const err = await failure(
    admin.flows.createFlow({ company: quotaSlug, name: "two" }),
    ResourceExhausted,
    "ERROR_REASON_QUOTA_EXCEEDED",
  );
  assert.deepEqual(err.metadata, { quota: "flows", limit: "1", used: "1" });
});

/** A loopback port with nothing listening: every connection is refused (UNAVAILABLE). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

test("retries: a read is tried 4 times on UNAVAILABLE, a mutation once", async () => {
  const attempts: string[] = [];
  const count: Interceptor = (next) => (req) => {
    attempts.push(req.method.name);
    return next(req);
  };
  const down = createBoomerangClient({
    target: `127.0.0.1:${await closedPort()}`,
    apiKey: adminKey,
    interceptors: [count],
  });
  others.push(down);
  const read = await failure(down.companies.listCompanies({}), Unavailable, "");
  assert.equal(read.code, 14);
  assert.deepEqual(attempts, Array(4).fill("ListCompanies"));
  attempts.length = 0;
  await failure(down.companies.createCompany({ name: "X", slug: "x" }), Unavailable, "");
  assert.deepEqual(attempts, ["CreateCompany"]);
});

test("deadline: a server that never answers fails the read once, at its deadline", async () => {
  // Accepts the connection and says nothing: no attempt ever ends before the deadline.
  const sockets: Socket[] = [];
  const silent = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  const { port } = silent.address() as { port: number };
  const attempts: string[] = [];
  const count: Interceptor = (next) => (req) => {
    attempts.push(req.method.name);
    return next(req);
  };
  const stuck = clientWith(adminKey, {
    target: `127.0.0.1:${port}`,
    timeoutMs: 300,
    interceptors: [count],
  });
  const started = Date.now();
  try {
    await failure(stuck.companies.listCompanies({}), DeadlineExceeded, "");
    assert.ok(Date.now() - started < 3_000);
    assert.deepEqual(attempts, ["ListCompanies"]);
  } finally {
    stuck.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  }
});
