/**
 * Typed errors: every failed call becomes one `BoomerangError` subclass, chosen by status code,
 * with the same class names as the Python SDK (clients/boomerang/sdk/errors.py).
 *
 * `fromConnectError` is the one place a `ConnectError` is translated. The reason is the
 * `google.rpc.ErrorInfo` reason of the status details (the `grpc-status-details-bin` trailer) —
 * an `ErrorReason` value name such as "ERROR_REASON_FLOW_NOT_FOUND"
 * (proto/boomerang/v1/error_reason.proto) — and the field violations come from
 * `google.rpc.BadRequest`, and `retryDelayMs` from `google.rpc.RetryInfo` (the server's word that
 * the same request may be sent again after that long: client.ts does so). Errors made by the
 * client itself (the server is unreachable, the deadline passed) carry no details: their reason
 * is "".
 */
import { Code, ConnectError } from "@connectrpc/connect";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";

/** The ErrorInfo domain of Boomerang's own reasons. */
export const DOMAIN = "boomerang.dev";

/** One invalid request field, e.g. `{field: "definition.shapes[1].expression", description}`. */
export interface FieldViolation {
  field: string;
  description: string;
}

/** A failed Boomerang call. Catch a subclass (`NotFound`, ...) to handle one status code. */
export class BoomerangError extends Error {
  /** The gRPC status code. */
  readonly code: Code;
  /** An ErrorReason value name, e.g. "ERROR_REASON_SLUG_TAKEN"; "" when the status had none. */
  readonly reason: string;
  /** The status message as the server wrote it (without the code prefix `message` has). */
  readonly rawMessage: string;
  /** Each invalid request field (the BadRequest detail); empty for other errors. */
  readonly fieldViolations: FieldViolation[];
  /**
   * The ErrorInfo metadata, e.g. `{quota: "flows", limit: "500", used: "500"}` for
   * ERROR_REASON_QUOTA_EXCEEDED.
   */
  readonly metadata: Record<string, string>;
  /**
   * Milliseconds after which the server says the same request may be sent again (RetryInfo):
   * nothing was done. Undefined when it gave no such word.
   */
  readonly retryDelayMs: number | undefined;

  constructor(
    code: Code,
    reason: string,
    rawMessage: string,
    fieldViolations: FieldViolation[] = [],
    metadata: Record<string, string> = {},
    options?: { cause?: unknown; retryDelayMs?: number },
  ) {
    const shownReason = reason ? ` (${reason})` : "";
    super(`${codeName(code)}${shownReason}: ${rawMessage}`, options);
    this.name = new.target.name;
    this.code = code;
    this.reason = reason;
    this.rawMessage = rawMessage;
    this.fieldViolations = fieldViolations;
    this.metadata = metadata;
    this.retryDelayMs = options?.retryDelayMs;
  }
}

export class Cancelled extends BoomerangError {}
export class Unknown extends BoomerangError {}
export class InvalidArgument extends BoomerangError {}
export class DeadlineExceeded extends BoomerangError {}
export class NotFound extends BoomerangError {}
export class AlreadyExists extends BoomerangError {}
export class PermissionDenied extends BoomerangError {}
export class ResourceExhausted extends BoomerangError {}
export class FailedPrecondition extends BoomerangError {}
export class Aborted extends BoomerangError {}
export class OutOfRange extends BoomerangError {}
export class Unimplemented extends BoomerangError {}
export class Internal extends BoomerangError {}
export class Unavailable extends BoomerangError {}
export class DataLoss extends BoomerangError {}
export class Unauthenticated extends BoomerangError {}

const BY_CODE: Record<Code, typeof BoomerangError> = {
  [Code.Canceled]: Cancelled,
  [Code.Unknown]: Unknown,
  [Code.InvalidArgument]: InvalidArgument,
  [Code.DeadlineExceeded]: DeadlineExceeded,
  [Code.NotFound]: NotFound,
  [Code.AlreadyExists]: AlreadyExists,
  [Code.PermissionDenied]: PermissionDenied,
  [Code.ResourceExhausted]: ResourceExhausted,
  [Code.FailedPrecondition]: FailedPrecondition,
  [Code.Aborted]: Aborted,
  [Code.OutOfRange]: OutOfRange,
  [Code.Unimplemented]: Unimplemented,
  [Code.Internal]: Internal,
  [Code.Unavailable]: Unavailable,
  [Code.DataLoss]: DataLoss,
  [Code.Unauthenticated]: Unauthenticated,
};

/** "NOT_FOUND" for Code.NotFound: the gRPC name, as the Python SDK and grpcurl print it. */
export function codeName(code: Code): string {
  if (code === Code.Canceled) return "CANCELLED"; // Connect spells it the American way
  return (Code[code] ?? "UNKNOWN").replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

/** The typed error for any failure of a call (a ConnectError, or anything thrown below it). */
export function fromConnectError(error: unknown): BoomerangError {
  if (error instanceof BoomerangError) return error;
  const err = ConnectError.from(error);
  let reason = "";
  let metadata: Record<string, string> = {};
  for (const info of err.findDetails(ErrorInfoSchema)) {
    // Boomerang's own reason wins over any other domain's (a proxy's, say).
    if (info.domain === DOMAIN || !reason) {
      reason = info.reason;
      metadata = { ...info.metadata };
    }
  }
  const violations = err
    .findDetails(BadRequestSchema)
    .flatMap((bad) => bad.fieldViolations)
    .map((v) => ({ field: v.field, description: v.description }));
  const Class = BY_CODE[err.code] ?? BoomerangError;
  const retryDelayMs = retryDelayOf(err);
  return new Class(err.code, reason, err.rawMessage, violations, metadata, {
    cause: err,
    retryDelayMs,
  });
}

/** The RetryInfo delay of a failure in milliseconds; undefined when it has none. */
export function retryDelayOf(error: unknown): number | undefined {
  const [info] = ConnectError.from(error).findDetails(RetryInfoSchema);
  if (info === undefined) return undefined;
  const delay = info.retryDelay;
  return delay ? Math.max(0, Number(delay.seconds) * 1000 + delay.nanos / 1e6) : 0;
}
