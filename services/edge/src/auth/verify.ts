// Client identity: a JWT whose subject is the user id. HS256 with a shared secret (development),
// or RS256/ES256 against a JWKS file or URL (production). Everything else is refused.
import { readFileSync } from "node:fs";
import { createLocalJWKSet, createRemoteJWKSet, errors, jwtVerify, type JWTVerifyGetKey } from "jose";
import { Code, ConnectError } from "../../../../packages/runtime/src/errors.js";

export interface AuthSettings {
  JWT_HS256_SECRET?: string | undefined;
  JWT_JWKS_FILE?: string | undefined;
  JWT_JWKS_URL?: string | undefined;
  JWT_ISSUER?: string | undefined;
  JWT_AUDIENCE?: string | undefined;
}

export interface Identity {
  userId: string;
}

export type Verify = (token: string) => Promise<Identity>;

const MAX_TOKEN_CHARS = 8192;

export function createVerifier(settings: AuthSettings): Verify {
  let key: Uint8Array | JWTVerifyGetKey;
  let algorithms: string[];
  if (settings.JWT_JWKS_FILE !== undefined) {
    key = createLocalJWKSet(JSON.parse(readFileSync(settings.JWT_JWKS_FILE, "utf8")) as Parameters<typeof createLocalJWKSet>[0]);
    algorithms = ["RS256", "ES256"];
  } else if (settings.JWT_JWKS_URL !== undefined) {
    key = createRemoteJWKSet(new URL(settings.JWT_JWKS_URL));
    algorithms = ["RS256", "ES256"];
  } else if (settings.JWT_HS256_SECRET !== undefined) {
    key = new TextEncoder().encode(settings.JWT_HS256_SECRET);
    algorithms = ["HS256"];
  } else {
    throw new Error("no JWT key configured: set JWT_HS256_SECRET, JWT_JWKS_FILE or JWT_JWKS_URL");
  }
  const options = {
    algorithms,
    ...(settings.JWT_ISSUER === undefined ? {} : { issuer: settings.JWT_ISSUER }),
    ...(settings.JWT_AUDIENCE === undefined ? {} : { audience: settings.JWT_AUDIENCE }),
  };
  return async (token) => {
    if (token === "" || token.length > MAX_TOKEN_CHARS) throw new ConnectError("missing or oversized token", Code.Unauthenticated);
    try {
      const { payload } = await jwtVerify(token, key as Uint8Array, options);
      if (typeof payload.sub !== "string" || payload.sub === "" || payload.sub.length > 128) {
        throw new ConnectError("token has no usable subject", Code.Unauthenticated);
      }
      return { userId: payload.sub };
    } catch (err) {
      if (err instanceof ConnectError) throw err;
      if (err instanceof errors.JWTExpired) throw new ConnectError("token expired", Code.Unauthenticated);
      if (err instanceof errors.JOSEError) throw new ConnectError(`invalid token: ${err.code}`, Code.Unauthenticated);
      throw err;
    }
  };
}
