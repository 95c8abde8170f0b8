/**
 * `createBoomerangClient`: typed clients of the control plane's management services over one
 * gRPC (HTTP/2) connection, with the three things every call shares, each an interceptor:
 *
 * - the API key, sent as `authorization: Bearer <key>` (none when the key is empty, so the
 *   server answers MISSING_API_KEY rather than INVALID_API_KEY, as with the Python SDK);
 * - retries of reads only (unary Get* and List*) on UNAVAILABLE, with the Python SDK's policy
 *   (clients/boomerang/sdk/channel.py): 4 attempts, backoff from 0.2 s doubling to 3 s, all
 *   within the call's one deadline. A mutation is never repeated: an UNAVAILABLE may come after
 *   the server committed it, and repeating CreateCallback would make two callbacks;
 * - retries of any unary call, mutations included, refused with `google.rpc.RetryInfo`, after
 *   its delay (`retryWhenTold`, as the Python SDK's transport does): the server gives RetryInfo
 *   only for a refusal made before anything was done (a company's calls at once,
 *   ERROR_REASON_TOO_MANY_CALLS), so sending it again cannot do anything twice;
 *
 * and every failure is thrown as a typed error (errors.ts). That is done around the service
 * clients, not in an interceptor: Connect turns whatever an interceptor throws back into a
 * ConnectError.
 *
 * The service clients are Connect's own, generated from proto/: method names are the RPC names
 * in lowerCamelCase (`companies.createCompany({name, slug})`) and they return the response
 * messages of clients/typescript/src/gen.
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import type { DescService } from "@bufbuild/protobuf";
import { Http2SessionManager, createGrpcTransport } from "@connectrpc/connect-node";
import { ApiKeyService } from "./gen/boomerang/v1/api_key_service_pb.js";
import { CallbackService } from "./gen/boomerang/v1/callback_service_pb.js";
import { CallbackSyncService } from "./gen/boomerang/v1/callback_sync_service_pb.js";
import { CompanyService } from "./gen/boomerang/v1/company_service_pb.js";
import { ConnectionService } from "./gen/boomerang/v1/connection_service_pb.js";
import { EnvironmentService } from "./gen/boomerang/v1/environment_service_pb.js";
import { FlowService } from "./gen/boomerang/v1/flow_service_pb.js";
import { RunService } from "./gen/boomerang/v1/run_service_pb.js";
import { fromConnectError, retryDelayOf } from "./errors.js";

export interface BoomerangClientOptions {
  /** The control plane: "http://127.0.0.1:50051", or "127.0.0.1:50051" (plaintext). */
  target: string;
  /** The API key; "" sends none. */
  apiKey: string;
  /** Each call's deadline in milliseconds, retries included (default 10 000, as in Python). */
  timeoutMs?: number;
  /** Extra interceptors, run inside the SDK's (they see every retry attempt). */
  interceptors?: Interceptor[];
}

export interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
  backoffMultiplier: number;
}

/** The Python SDK's read retry policy (gRPC service config there, an interceptor here). */
export const READ_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 4,
  initialBackoffMs: 200,
  maxBackoffMs: 3000,
  backoffMultiplier: 2,
};

export interface BoomerangClient {
  companies: Client<typeof CompanyService>;
  environments: Client<typeof EnvironmentService>;
  flows: Client<typeof FlowService>;
  callbacks: Client<typeof CallbackService>;
  /** Connections for connector shapes; their secrets are write-only (docs/connections.md). */
  connections: Client<typeof ConnectionService>;
  apiKeys: Client<typeof ApiKeyService>;
  runs: Client<typeof RunService>;
  /** ListEdges (and SyncCallbacks, the edges' own change stream). */
  callbackSync: Client<typeof CallbackSyncService>;
  /** Closes the connection; calls made after it open a new one. */
  close(): void;
}

export function createBoomerangClient(options: BoomerangClientOptions): BoomerangClient {
  const baseUrl = /^https?:\/\//.test(options.target) ? options.target : `http://${options.target}`;
  // Our own session manager, so that close() can end the connection.
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({
    baseUrl,
    sessionManager,
    defaultTimeoutMs: options.timeoutMs ?? 10_000,
    // Outermost first: the retries see each attempt, with the key already set.
    interceptors: [
      retryReads(READ_RETRY_POLICY),
      retryWhenTold(),
      apiKey(options.apiKey),
      ...(options.interceptors ?? []),
    ],
  });
  return {
    companies: typedClient(CompanyService, transport),
    environments: typedClient(EnvironmentService, transport),
    flows: typedClient(FlowService, transport),
    callbacks: typedClient(CallbackService, transport),
    connections: typedClient(ConnectionService, transport),
    apiKeys: typedClient(ApiKeyService, transport),
    runs: typedClient(RunService, transport),
    callbackSync: typedClient(CallbackSyncService, transport),
    close: () => sessionManager.abort(),
  };
}

function apiKey(key: string): Interceptor {
  return (next) => (req) => {
    if (key) req.header.set("authorization", `Bearer ${key}`);
    return next(req);
  };
}

/** Connect's client of `service`, each method rethrowing its failures as typed errors. */
function typedClient<T extends DescService>(service: T, transport: Transport): Client<T> {
  const client = createClient(service, transport) as Record<string, (...args: never[]) => unknown>;
  const typed: Record<string, unknown> = {};
  for (const method of service.methods) {
    const call = client[method.localName];
    typed[method.localName] =
      method.methodKind === "unary" || method.methodKind === "client_streaming"
        ? (...args: never[]) => (call(...args) as Promise<unknown>).catch(rethrowTyped)
        : (...args: never[]) => typedStream(call(...args) as AsyncIterable<unknown>);
  }
  return typed as Client<T>;
}

function rethrowTyped(error: unknown): never {
  throw fromConnectError(error);
}

async function* typedStream<T>(stream: AsyncIterable<T>): AsyncIterable<T> {
  try {
    yield* stream;
  } catch (error) {
    rethrowTyped(error);
  }
}

/** True for the methods that only read: unary Get* and List*, safe to send twice. */
export function isRead(method: { name: string; methodKind: string }): boolean {
  return method.methodKind === "unary" && /^(Get|List)/.test(method.name);
}

export function retryReads(policy: RetryPolicy): Interceptor {
  return (next) => async (req) => {
    if (!isRead(req.method)) return next(req);
    let backoff = policy.initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(req);
      } catch (error) {
        const code = ConnectError.from(error).code;
        if (code !== Code.Unavailable || attempt >= policy.maxAttempts) throw error;
      }
      // Full jitter (gRPC's A6 policy): callers that failed together do not retry together.
      // The sleep ends early, failing the call, when its deadline or the caller aborts it.
      await sleep(Math.random() * backoff, req.signal);
      backoff = Math.min(backoff * policy.backoffMultiplier, policy.maxBackoffMs);
    }
  };
}

/** Attempts in all of a call refused with RetryInfo (clients/boomerang/sdk/channel.py). */
export const HINTED_ATTEMPTS = 5;
/** The longest wait before one of them, however long the server asks for. */
export const HINTED_MAX_WAIT_MS = 3000;

/**
 * Milliseconds to wait after the `attempt`-th refusal (1, 2, ...) that asked for `retryDelayMs`:
 * never less than asked (up to HINTED_MAX_WAIT_MS), doubling with each refusal, with up to half
 * again of jitter so callers refused together do not come back together.
 */
export function hintedWaitMs(attempt: number, retryDelayMs: number): number {
  const wait = Math.min(retryDelayMs * 2 ** (attempt - 1), HINTED_MAX_WAIT_MS);
  return Math.max(wait, Math.min(retryDelayMs, HINTED_MAX_WAIT_MS)) * (1 + Math.random() / 2);
}

export function retryWhenTold(): Interceptor {
  return (next) => async (req) => {
    if (req.stream) return next(req); // a stream's messages cannot be sent again
    for (let attempt = 1; ; attempt++) {
      try {
        return await next(req);
      } catch (error) {
        const delayMs = retryDelayOf(error);
        if (delayMs === undefined || attempt >= HINTED_ATTEMPTS) throw error;
        // As in retryReads, the sleep ends early, failing the call, at its deadline (the
        // caller then gets DeadlineExceeded) or when the caller aborts it.
        await sleep(hintedWaitMs(attempt, delayMs), req.signal);
      }
    }
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
