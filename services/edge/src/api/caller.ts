// Who is calling: the authenticated user and the device, attached to every public call by the
// auth interceptor (Connect) or the WebSocket handshake.
import { createContextKey, type HandlerContext, type Interceptor } from "@connectrpc/connect";
import { Code, ConnectError } from "../../../../packages/runtime/src/errors.js";
import type { Verify } from "../auth/verify.js";

export interface Caller {
  userId: string;
  deviceId: string;
}

const callerKey = createContextKey<Caller | undefined>(undefined, { description: "authenticated caller" });

/** Device ids are chosen by clients: short, printable. */
export function parseDeviceId(raw: string | null | undefined): string {
  const id = raw ?? "default";
  if (!/^[\w.:-]{1,128}$/.test(id)) throw new ConnectError("device id: 1-128 characters of [A-Za-z0-9_.:-]", Code.InvalidArgument);
  return id;
}

/** Extracts the bearer token of an Authorization header. */
export function bearerToken(authorization: string | null | undefined): string {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? "");
  if (match?.[1] === undefined) throw new ConnectError("missing bearer token (Authorization: Bearer <jwt>)", Code.Unauthenticated);
  return match[1];
}

/** Refuses every public call without a valid token; attaches the caller otherwise. */
export function authInterceptor(verify: Verify): Interceptor {
  return (next) => async (req) => {
    const identity = await verify(bearerToken(req.header.get("authorization")));
    req.contextValues.set(callerKey, { userId: identity.userId, deviceId: parseDeviceId(req.header.get("chat-device-id")) });
    return next(req);
  };
}

export function callerOf(ctx: HandlerContext): Caller {
  const caller = ctx.values.get(callerKey);
  if (caller === undefined) throw new ConnectError("unauthenticated", Code.Unauthenticated);
  return caller;
}
