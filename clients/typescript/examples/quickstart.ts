// The README's worked example: a company, a flow that answers its callback, deployed, and a
// callback whose URL is printed. test/quickstart.test.ts runs this file and calls that URL.
//   BOOMERANG_API_KEY=$(cat .boomerang/admin-key) node --import tsx examples/quickstart.ts
import { createBoomerangClient } from "../src/index.js";

const client = createBoomerangClient({
  target: process.env.BOOMERANG_TARGET ?? "http://127.0.0.1:50051",
  apiKey: process.env.BOOMERANG_API_KEY ?? "",
});
const slug = process.env.COMPANY ?? "acme";

await client.companies.createCompany({ name: "Acme", slug });
const { flow } = await client.flows.createFlow({
  company: slug,
  name: "stock-check",
  // trigger → map → callback: the callback shape makes the map's result the HTTP answer.
  definition: {
    shapes: [
      { id: "trigger", type: "trigger" },
      { id: "stock", type: "map", expression: "{sku: payload.sku, in_stock: `true`}" },
      { id: "reply", type: "callback" },
    ],
  },
});
await client.flows.deployVersion({ flowId: flow!.id }); // to the default environment
const { callback } = await client.callbacks.createCallback({ flowId: flow!.id, name: "stock" });
const { url } = await client.callbacks.getCallbackUrl({ id: callback!.id });
console.log(url);
client.close();
