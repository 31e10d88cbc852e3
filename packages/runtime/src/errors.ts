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
