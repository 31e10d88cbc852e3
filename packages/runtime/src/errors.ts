// Errors crossing an RPC boundary are ConnectErrors with a precise code. These helpers keep the
// call sites short and the codes consistent.
import { Code, ConnectError } from "@connectrpc/connect";

export { Code, ConnectError };

export const invalidArgument = (message: string) => new ConnectError(message, Code.InvalidArgument);
export const notFound = (message: string) => new ConnectError(message, Code.NotFound);
export const permissionDenied = (message: string) => new ConnectError(message, Code.PermissionDenied);
export const failedPrecondition = (message: string) => new ConnectError(message, Code.FailedPrecondition);
export const resourceExhausted = (message: string) => new ConnectError(message, Code.ResourceExhausted);
export const unavailable = (message: string) => new ConnectError(message, Code.Unavailable);
export const unimplemented = (what: string, issue: string) =>
  new ConnectError(`${what} is not implemented yet (${issue})`, Code.Unimplemented);

/** The metadata key of a refusal's retry hint, in milliseconds (passed on to clients). */
export const RETRY_AFTER_MS = "retry-after-ms";

/** A refusal with `code` that tells the caller when to come back. */
export function retryLater(code: Code, message: string, retryAfterMs: number): ConnectError {
  return new ConnectError(message, code, { [RETRY_AFTER_MS]: String(Math.max(1, Math.round(retryAfterMs))) });
}

/** A ResourceExhausted refusal that tells the caller when to come back. */
export const busy = (message: string, retryAfterMs: number): ConnectError => retryLater(Code.ResourceExhausted, message, retryAfterMs);

/** A refusal's retry hint, in milliseconds (0 when it has none). */
export function retryAfterMs(err: ConnectError): number {
  return Number(err.metadata.get(RETRY_AFTER_MS) ?? 0) || 0;
}
