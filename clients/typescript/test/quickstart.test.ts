// The README's worked example, run as a user runs it (examples/quickstart.ts as its own
// process), then its printed URL called over real HTTP: the edge must answer with the flow's
// result once the new callback has reached it through the change stream.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { test } from "node:test";
import { promisify } from "node:util";
import { adminKey, edgeUrl, target, uniqueSlug } from "./stack.js";

const run = promisify(execFile);

test("the worked example prints a callback URL that answers with the flow's result", async () => {
  const slug = uniqueSlug("quickstart");
  const { stdout } = await run(process.execPath, ["--import", "tsx", "examples/quickstart.ts"], {
    env: { ...process.env, BOOMERANG_TARGET: target, BOOMERANG_API_KEY: adminKey, COMPANY: slug },
    timeout: 30_000,
  });
  const url = new URL(stdout.trim());
  assert.equal(url.origin, edgeUrl);
  assert.match(url.pathname, new RegExp(`^/api/v1/${slug}/[^/]+$`));
  assert.ok(url.searchParams.get("patchworks_signature"));

  url.searchParams.set("sku", "A1");
  const deadline = Date.now() + 10_000;
  let response = await fetch(url);
  // Until the change stream brings the new callback, the edge answers as for any callback it
  // does not know: 403 `forbidden`, the same as a wrong signature. Nothing else is acceptable.
  while (response.status === 403 && Date.now() < deadline) {
    await response.body?.cancel();
    await new Promise((resolve) => setTimeout(resolve, 100));
    response = await fetch(url);
  }
  assert.equal(response.status, 200, await response.clone().text());
  assert.equal(response.headers.get("content-type"), "application/json");
  assert.ok(response.headers.get("x-boomerang-run-id"));
  assert.deepEqual(await response.json(), [{ sku: "A1", in_stock: true }]);
});
