// Apple Push Notification service over HTTP/2 (node:http2) with token authentication: an ES256
// JWT (kid = key id, iss = team id) renewed every 50 minutes (Apple accepts 20-60).
import { importPKCS8, SignJWT } from "jose";
import { connect, constants, type ClientHttp2Session } from "node:http2";
import { PushPlatform } from "../../../../gen/chat/api/v1/enums_pb.js";
import { apnsCollapseId, apnsPayload } from "../domain/notification.js";
import { detail, type PushProvider } from "./port.js";

export interface ApnsSettings {
  /** The .p8 signing key (PKCS#8 PEM). */
  privateKey: string;
  keyId: string;
  teamId: string;
  /** apns-topic for registrations that name none (the app's bundle id). */
  defaultTopic: string;
  /** Production and sandbox origins, e.g. https://api.push.apple.com (http:// speaks h2c, for local tests). */
  host: string;
  sandboxHost: string;
  ttlSeconds: number;
  timeoutMs: number;
}

const TOKEN_MAX_AGE_MS = 50 * 60_000;

export async function createApnsProvider(s: ApnsSettings): Promise<PushProvider> {
  const key = await importPKCS8(s.privateKey, "ES256");
  let jwt: { value: string; madeAtMs: number } | undefined;
  const bearer = async (): Promise<string> => {
    if (jwt !== undefined && Date.now() - jwt.madeAtMs < TOKEN_MAX_AGE_MS) return jwt.value;
    const value = await new SignJWT({}).setProtectedHeader({ alg: "ES256", kid: s.keyId }).setIssuer(s.teamId).setIssuedAt().sign(key);
    jwt = { value, madeAtMs: Date.now() };
    return value;
  };
  const sessions = new Map<string, ClientHttp2Session>();
  const session = (origin: string): ClientHttp2Session => {
    const existing = sessions.get(origin);
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const created = connect(origin);
    created.on("error", () => sessions.delete(origin));
    created.on("goaway", () => sessions.delete(origin));
    created.on("close", () => sessions.delete(origin));
    created.unref();
    sessions.set(origin, created);
    return created;
  };

  return {
    platform: PushPlatform.APNS,
    async send(target, n) {
      const topic = detail(target, "topic") || s.defaultTopic;
      if (topic === "") return { status: 400, reason: "MissingTopic" };
      const authorization = `bearer ${await bearer()}`;
      const origin = target.details["sandbox"] === true ? s.sandboxHost : s.host;
      const body = JSON.stringify(apnsPayload(n));
      return new Promise((resolve, reject) => {
        const req = session(origin).request({
          [constants.HTTP2_HEADER_METHOD]: "POST",
          [constants.HTTP2_HEADER_PATH]: `/3/device/${encodeURIComponent(detail(target, "token"))}`,
          authorization,
          "apns-topic": topic,
          "apns-push-type": "alert",
          "apns-priority": "10",
          "apns-collapse-id": apnsCollapseId(n.collapseKey),
          "apns-expiration": String(Math.floor(Date.now() / 1000) + s.ttlSeconds),
          "content-type": "application/json",
        });
        req.setTimeout(s.timeoutMs, () => req.close(constants.NGHTTP2_CANCEL));
        let status = 0;
        let retryAfter: string | undefined;
        let text = "";
        req.on("response", (headers) => {
          status = Number(headers[constants.HTTP2_HEADER_STATUS]);
          const ra: unknown = headers["retry-after"];
          retryAfter = typeof ra === "string" ? ra : Array.isArray(ra) ? String(ra[0]) : undefined;
        });
        req.setEncoding("utf8");
        req.on("data", (chunk: string) => (text += chunk));
        req.on("end", () => {
          if (status === 0) return reject(new Error("APNs stream ended without a response"));
          let reason = "";
          if (text !== "") {
            try {
              reason = (JSON.parse(text) as { reason?: string }).reason ?? "";
            } catch {
              reason = "";
            }
          }
          if (reason === "ExpiredProviderToken") jwt = undefined;
          resolve({ status, reason, retryAfter });
        });
        req.on("error", reject);
        req.on("close", () => reject(new Error(status === 0 ? "APNs request closed without an answer (timeout or connection lost)" : "APNs stream closed early")));
        req.end(body);
      });
    },
    async close() {
      for (const s of sessions.values()) s.close();
      sessions.clear();
    },
  };
}
