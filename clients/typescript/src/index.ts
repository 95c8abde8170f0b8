/**
 * Boomerang's TypeScript SDK: typed gRPC clients of the control plane (client.ts), typed errors
 * (errors.ts), and the messages generated from proto/ (gen/, never edited: `make gen`).
 *
 *   import { createBoomerangClient, NotFound } from "@boomerang/sdk";
 *   const client = createBoomerangClient({ target: "http://127.0.0.1:50051", apiKey });
 *   try {
 *     await client.flows.getFlow({ id });
 *   } catch (err) {
 *     if (err instanceof NotFound) console.log(err.reason); // "ERROR_REASON_FLOW_NOT_FOUND"
 *   }
 */
export * from "./client.js";
export * from "./errors.js";
export * from "./gen/boomerang/v1/api_key_service_pb.js";
export * from "./gen/boomerang/v1/callback_service_pb.js";
export * from "./gen/boomerang/v1/callback_sync_service_pb.js";
export * from "./gen/boomerang/v1/company_service_pb.js";
export * from "./gen/boomerang/v1/connection_service_pb.js";
export * from "./gen/boomerang/v1/environment_service_pb.js";
export * from "./gen/boomerang/v1/error_reason_pb.js";
export * from "./gen/boomerang/v1/flow_service_pb.js";
export * from "./gen/boomerang/v1/resources_pb.js";
export * from "./gen/boomerang/v1/run_service_pb.js";
