// Request validation declared in the contracts (protovalidate), applied once for every RPC:
// a request that breaks a rule is refused with InvalidArgument naming each violated field.
import { createValidator } from "@bufbuild/protovalidate";
import type { Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "./errors.js";

const validator = createValidator();

export const validationInterceptor: Interceptor = (next) => async (req) => {
  if (!req.stream) {
    const result = validator.validate(req.method.input, req.message);
    if (result.kind === "invalid") {
      throw new ConnectError(result.error.violations.map((v) => v.toString()).join("; "), Code.InvalidArgument);
    }
    if (result.kind === "error") throw new ConnectError(result.error.message, Code.Internal);
  }
  return next(req);
};
