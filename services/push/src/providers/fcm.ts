// Firebase Cloud Messaging, HTTP v1: an OAuth2 access token from a service account (an RS256 JWT
// assertion exchanged at the token URL, RFC 7523), then POST {base}/v1/projects/{project}/messages:send.
import { importPKCS8, SignJWT } from "jose";
import { readFileSync } from "node:fs";
import { PushPlatform } from "../../../../gen/chat/api/v1/enums_pb.js";
import { fcmMessage } from "../domain/notification.js";
import { detail, type PushProvider } from "./port.js";

export const FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging";

/** The fields of a Google service-account key file that FCM needs. */
export interface ServiceAccount {
  project_id: string;
  client_email: string;
  private_key: string;
  private_key_id?: string;
  token_uri?: string;
}

export interface FcmSettings {
  account: ServiceAccount;
  /** Overrides the account's project. */
  projectId: string;
  tokenUrl: string;
  baseUrl: string;
  timeoutMs: number;
}

/** Reads and checks a service-account key file; throws naming what is missing. */
export function readServiceAccount(file: string): ServiceAccount {
  const parsed = JSON.parse(readFileSync(file, "utf8")) as Partial<ServiceAccount>;
  for (const field of ["project_id", "client_email", "private_key"] as const) {
    if (typeof parsed[field] !== "string" || parsed[field] === "") throw new Error(`${file}: "${field}" is missing`);
  }
  return parsed as ServiceAccount;
}

/** The reason FCM gives: the FcmError errorCode when present, else the google.rpc status. */
function reasonOf(body: string): string {
  try {
    const error = (JSON.parse(body) as { error?: { status?: string; details?: { "@type"?: string; errorCode?: string }[] } }).error;
    const fcm = error?.details?.find((d) => d["@type"]?.endsWith("FcmError") === true && d.errorCode !== undefined);
    return fcm?.errorCode ?? error?.status ?? "";
  } catch {
    return "";
  }
}

export async function createFcmProvider(s: FcmSettings): Promise<PushProvider> {
  const key = await importPKCS8(s.account.private_key, "RS256");
  let token: { value: string; expiresAtMs: number } | undefined;
  let pending: Promise<string> | undefined;

  const fetchToken = async (): Promise<string> => {
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader({ alg: "RS256", typ: "JWT", ...(s.account.private_key_id === undefined ? {} : { kid: s.account.private_key_id }) })
      .setIssuer(s.account.client_email)
      .setAudience(s.tokenUrl)
      .setIssuedAt()
      .setExpirationTime("1h")
      .sign(key);
    const res = await fetch(s.tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "urn:ietf:params:oauth:grant-type:jwt-bearer", assertion }),
      signal: AbortSignal.timeout(s.timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) throw new Error(`FCM token endpoint answered ${res.status}: ${text.slice(0, 200)}`);
    const body = JSON.parse(text) as { access_token?: string; expires_in?: number };
    if (typeof body.access_token !== "string") throw new Error("FCM token endpoint answered without access_token");
    token = { value: body.access_token, expiresAtMs: Date.now() + (body.expires_in ?? 3600) * 1000 };
    return body.access_token;
  };
  /** A cached access token, renewed a minute before it expires (one fetch at a time). */
  const accessToken = (): Promise<string> => {
    if (token !== undefined && token.expiresAtMs - 60_000 > Date.now()) return Promise.resolve(token.value);
    pending ??= fetchToken().finally(() => (pending = undefined));
    return pending;
  };
  const url = `${s.baseUrl.replace(/\/$/, "")}/v1/projects/${encodeURIComponent(s.projectId)}/messages:send`;

  return {
    platform: PushPlatform.FCM,
    async send(target, n) {
      const bearer = await accessToken();
      const res = await fetch(url, {
        method: "POST",
        headers: { authorization: `Bearer ${bearer}`, "content-type": "application/json" },
        body: JSON.stringify(fcmMessage(detail(target, "token"), n)),
        signal: AbortSignal.timeout(s.timeoutMs),
      });
      const text = await res.text();
      if (res.status === 401 && token?.value === bearer) token = undefined;
      return { status: res.status, reason: res.ok ? "" : reasonOf(text), retryAfter: res.headers.get("retry-after") ?? undefined };
    },
    async close() {},
  };
}
