// The provider settings and the one place that opens provider clients. A provider with no
// credentials configured is disabled: its targets are skipped (a log line and a metric), not failed.
import { readFileSync } from "node:fs";
import type { PushPlatform } from "../../../../gen/chat/api/v1/enums_pb.js";
import { z } from "../../../../packages/runtime/src/config.js";
import type { Logger } from "../../../../packages/runtime/src/log.js";
import { createApnsProvider } from "./apns.js";
import { createFcmProvider, readServiceAccount } from "./fcm.js";
import type { PushProvider } from "./port.js";
import { createWebPushProvider } from "./webpush.js";

const origin = () => z.string().url().refine((u) => /^https?:\/\//.test(u), "must be an http(s) URL");

export const providerSettings = {
  /** VAPID (RFC 8292): the application server's key pair (URL-safe base64, as web-push generates) and contact. */
  WEB_PUSH_VAPID_SUBJECT: z.string().regex(/^(mailto:|https:\/\/)/, "must be a mailto: or https: URL").optional(),
  WEB_PUSH_VAPID_PUBLIC_KEY: z.string().optional(),
  WEB_PUSH_VAPID_PRIVATE_KEY: z.string().optional(),
  /** A Google service-account key file (JSON) with the Firebase messaging role. */
  FCM_SERVICE_ACCOUNT_FILE: z.string().optional(),
  /** The Firebase project; default the key file's project_id. */
  FCM_PROJECT_ID: z.string().optional(),
  /** The OAuth2 token endpoint; default the key file's token_uri. */
  FCM_TOKEN_URL: origin().optional(),
  FCM_BASE_URL: origin().default("https://fcm.googleapis.com"),
  /** The APNs auth key (.p8 file), its key id and the team id. */
  APNS_KEY_FILE: z.string().optional(),
  APNS_KEY_ID: z.string().optional(),
  APNS_TEAM_ID: z.string().optional(),
  /** apns-topic (bundle id) for registrations that carry none. */
  APNS_TOPIC: z.string().default(""),
  APNS_HOST: origin().default("https://api.push.apple.com"),
  APNS_SANDBOX_HOST: origin().default("https://api.sandbox.push.apple.com"),
};

export interface ProviderConfig {
  WEB_PUSH_VAPID_SUBJECT?: string | undefined;
  WEB_PUSH_VAPID_PUBLIC_KEY?: string | undefined;
  WEB_PUSH_VAPID_PRIVATE_KEY?: string | undefined;
  FCM_SERVICE_ACCOUNT_FILE?: string | undefined;
  FCM_PROJECT_ID?: string | undefined;
  FCM_TOKEN_URL?: string | undefined;
  FCM_BASE_URL: string;
  APNS_KEY_FILE?: string | undefined;
  APNS_KEY_ID?: string | undefined;
  APNS_TEAM_ID?: string | undefined;
  APNS_TOPIC: string;
  APNS_HOST: string;
  APNS_SANDBOX_HOST: string;
}

/** A provider's settings set only in part: a configuration mistake, refused at startup. */
function allOrNone(config: ProviderConfig, names: (keyof ProviderConfig)[], provider: string): boolean {
  const set = names.filter((n) => (config[n] ?? "") !== "");
  if (set.length === 0) return false;
  if (set.length < names.length) {
    throw new Error(`${provider}: set ${names.join(", ")} together (missing: ${names.filter((n) => !set.includes(n)).join(", ")})`);
  }
  return true;
}

/** Opens the configured providers; throws (naming the setting) when one is misconfigured. */
export async function openProviders(
  config: ProviderConfig,
  common: { ttlSeconds: number; timeoutMs: number },
  logger: Logger,
): Promise<Map<PushPlatform, PushProvider>> {
  const out: PushProvider[] = [];
  const disabled: string[] = [];
  if (allOrNone(config, ["WEB_PUSH_VAPID_SUBJECT", "WEB_PUSH_VAPID_PUBLIC_KEY", "WEB_PUSH_VAPID_PRIVATE_KEY"], "Web Push")) {
    try {
      out.push(
        createWebPushProvider({
          vapidSubject: config.WEB_PUSH_VAPID_SUBJECT ?? "",
          vapidPublicKey: config.WEB_PUSH_VAPID_PUBLIC_KEY ?? "",
          vapidPrivateKey: config.WEB_PUSH_VAPID_PRIVATE_KEY ?? "",
          ...common,
        }),
      );
    } catch (err) {
      throw new Error(`WEB_PUSH_VAPID_*: ${(err as Error).message}`, { cause: err });
    }
  } else disabled.push("web push (WEB_PUSH_VAPID_* not set)");
  if (config.FCM_SERVICE_ACCOUNT_FILE !== undefined) {
    let account;
    try {
      account = readServiceAccount(config.FCM_SERVICE_ACCOUNT_FILE);
    } catch (err) {
      throw new Error(`FCM_SERVICE_ACCOUNT_FILE: ${(err as Error).message}`, { cause: err });
    }
    const tokenUrl = config.FCM_TOKEN_URL ?? account.token_uri ?? "https://oauth2.googleapis.com/token";
    try {
      out.push(await createFcmProvider({ account, projectId: config.FCM_PROJECT_ID ?? account.project_id, tokenUrl, baseUrl: config.FCM_BASE_URL, ...common }));
    } catch (err) {
      throw new Error(`FCM_SERVICE_ACCOUNT_FILE: private_key is not a usable RS256 key: ${(err as Error).message}`, { cause: err });
    }
  } else disabled.push("fcm (FCM_SERVICE_ACCOUNT_FILE not set)");
  if (allOrNone(config, ["APNS_KEY_FILE", "APNS_KEY_ID", "APNS_TEAM_ID"], "APNs")) {
    let privateKey: string;
    try {
      privateKey = readFileSync(config.APNS_KEY_FILE ?? "", "utf8");
    } catch (err) {
      throw new Error(`APNS_KEY_FILE: ${(err as Error).message}`, { cause: err });
    }
    try {
      out.push(
        await createApnsProvider({
          privateKey,
          keyId: config.APNS_KEY_ID ?? "",
          teamId: config.APNS_TEAM_ID ?? "",
          defaultTopic: config.APNS_TOPIC,
          host: config.APNS_HOST,
          sandboxHost: config.APNS_SANDBOX_HOST,
          ...common,
        }),
      );
    } catch (err) {
      throw new Error(`APNS_KEY_FILE: not a usable ES256 (P-256) PKCS#8 key: ${(err as Error).message}`, { cause: err });
    }
  } else disabled.push("apns (APNS_KEY_FILE, APNS_KEY_ID, APNS_TEAM_ID not set)");
  if (disabled.length > 0) logger.info({ disabled }, "push providers without credentials are disabled; their targets are skipped");
  return new Map(out.map((p) => [p.platform, p]));
}
