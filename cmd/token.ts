// `chat token <user>`: mints a development JWT (HS256, subject = user id, 24 h) with the
// configured JWT_HS256_SECRET, so the public API can be tried from a terminal or a browser.
import { SignJWT } from "jose";
import type { Env } from "../packages/runtime/src/config.js";
import { ConfigError } from "../packages/runtime/src/config.js";

export async function mintToken(env: Env, userId: string): Promise<string> {
  if (!/^[\w.@:-]{1,128}$/.test(userId)) throw new ConfigError(["user: give a user id (1-128 characters of [A-Za-z0-9_.@:-]), e.g. chat token alice"]);
  const secret = env["JWT_HS256_SECRET"];
  if (secret === undefined || secret === "") throw new ConfigError(["JWT_HS256_SECRET: required to mint a token"]);
  let jwt = new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setSubject(userId).setIssuedAt().setExpirationTime("24h");
  if (env["JWT_ISSUER"]) jwt = jwt.setIssuer(env["JWT_ISSUER"]);
  if (env["JWT_AUDIENCE"]) jwt = jwt.setAudience(env["JWT_AUDIENCE"]);
  return jwt.sign(new TextEncoder().encode(secret));
}
