// Client identity: only a valid JWT opens the public API, and every refusal says why.
import { Code, ConnectError } from "@connectrpc/connect";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { createVerifier } from "../src/auth/verify.js";
import { scratchDir } from "../../../tests/support/scratch.js";

const SECRET = "a-test-secret-of-enough-length";
const hs = (claims: { sub?: string; exp?: string | number }, secret = SECRET) => {
  let jwt = new SignJWT({}).setProtectedHeader({ alg: "HS256" }).setIssuedAt();
  if (claims.sub !== undefined) jwt = jwt.setSubject(claims.sub);
  if (claims.exp !== undefined) jwt = jwt.setExpirationTime(claims.exp);
  return jwt.sign(new TextEncoder().encode(secret));
};

async function refusal(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "accepted";
  } catch (err) {
    const e = ConnectError.from(err);
    assert.equal(e.code, Code.Unauthenticated);
    return e.rawMessage;
  }
}

describe("token verification", () => {
  const verify = createVerifier({ JWT_HS256_SECRET: SECRET });

  it("accepts a valid HS256 token and takes the user from its subject", async () => {
    assert.deepEqual(await verify(await hs({ sub: "alice", exp: "1h" })), { userId: "alice" });
  });

  it("refuses expired, wrongly signed, malformed and subject-less tokens with a reason", async () => {
    assert.match(await refusal(verify(await hs({ sub: "alice", exp: Math.floor(Date.now() / 1000) - 60 }))), /expired/);
    assert.match(await refusal(verify(await hs({ sub: "alice", exp: "1h" }, "another-secret-of-enough-length"))), /invalid token/);
    assert.match(await refusal(verify("not.a.jwt")), /invalid token/);
    assert.match(await refusal(verify(await hs({ exp: "1h" }))), /subject/);
    assert.match(await refusal(verify("")), /missing/);
  });

  it("verifies ES256 tokens against a JWKS file and refuses HS256 there", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const dir = scratchDir("jwks");
    const file = join(dir, "jwks.json");
    writeFileSync(file, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), alg: "ES256", kid: "k1" }] }));
    const jwks = createVerifier({ JWT_JWKS_FILE: file, JWT_ISSUER: "https://id.example" });
    const good = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k1" }).setSubject("bob").setIssuer("https://id.example").setExpirationTime("1h").sign(privateKey);
    assert.deepEqual(await jwks(good), { userId: "bob" });
    const wrongIssuer = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: "k1" }).setSubject("bob").setIssuer("https://evil.example").setExpirationTime("1h").sign(privateKey);
    assert.match(await refusal(jwks(wrongIssuer)), /invalid token/);
    assert.match(await refusal(jwks(await hs({ sub: "bob", exp: "1h" }))), /invalid token/);
  });
});
