// Connections through the TypeScript client: created with a secret, answered without it.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { createBoomerangClient } from "../src/index.js";
import { adminKey, target, uniqueSlug } from "./stack.js";

const client = createBoomerangClient({ target, apiKey: adminKey });
after(() => client.close());

test("a connection's secret is stored but never answered", async () => {
  const slug = uniqueSlug("connections");
  await client.companies.createCompany({ name: slug, slug });
  const secret = `token-${uniqueSlug("secret")}`;
  const { connection } = await client.connections.createConnection({
    company: slug,
    name: "erp",
    baseUrl: "https://erp.example.com/api",
    auth: { kind: { case: "bearer", value: { token: secret } } },
  });
  assert.ok(connection);
  assert.equal(connection.name, "erp");
  assert.equal(connection.secretSet, true);
  assert.equal(connection.auth?.kind.case, "bearer");
  const listed = await client.connections.listConnections({ company: slug });
  assert.deepEqual(
    listed.connections.map((c) => c.id),
    [connection.id],
  );
  assert.ok(!JSON.stringify(listed, (_, v) => (typeof v === "bigint" ? String(v) : v)).includes(secret));
  await client.connections.deleteConnection({ id: connection.id });
});
