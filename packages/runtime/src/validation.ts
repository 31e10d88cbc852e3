// Request validation declared in the contracts (protovalidate), applied once for every RPC:
// a request that breaks a rule is refused with InvalidArgument naming each violated field.
import { createValidator } from "@bufbuild/protovalidate";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "./errors.js";

const validator = createValidator();

/** Throws InvalidArgument naming each violated field when `message` breaks its contract's rules. */
export function validateRequest<D extends DescMessage>(schema: D, message: MessageShape<D>): void {
  const result = validator.validate(schema, message);
  if (result.kind === "invalid") {
    throw new ConnectError(result.error.violations.map((v) => v.toString()).join("; "), Code.InvalidArgument);
  }
  if (result.kind === "error") throw new ConnectError(result.error.message, Code.Internal);
}

export const validationInterceptor: Interceptor = (next) => async (req) => {
  if (!req.stream) validateRequest(req.method.input, req.message);
  return next(req);
};
