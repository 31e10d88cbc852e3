// Web Push (RFC 8030) with message encryption (RFC 8291, aes128gcm) and VAPID (RFC 8292). The
// web-push library encrypts and signs; the request itself goes out with fetch, so the answer's
// status and Retry-After come back as they are.
import webpush from "web-push";
import { PushPlatform } from "../../../../gen/chat/api/v1/enums_pb.js";
import { webPushPayload, webPushTopic } from "../domain/notification.js";
import { detail, type PushProvider } from "./port.js";

export interface WebPushSettings {
  vapidSubject: string;
  vapidPublicKey: string;
  vapidPrivateKey: string;
  ttlSeconds: number;
  timeoutMs: number;
}

/** Throws (naming the problem) when the VAPID settings are unusable: startup checks them with this. */
export function checkVapid(s: Pick<WebPushSettings, "vapidSubject" | "vapidPublicKey" | "vapidPrivateKey">): void {
  webpush.getVapidHeaders("https://push.example", s.vapidSubject, s.vapidPublicKey, s.vapidPrivateKey, "aes128gcm");
}

export function createWebPushProvider(s: WebPushSettings): PushProvider {
  checkVapid(s);
  return {
    platform: PushPlatform.WEB_PUSH,
    async send(target, n) {
      const request = webpush.generateRequestDetails(
        { endpoint: detail(target, "endpoint"), keys: { p256dh: detail(target, "p256dh"), auth: detail(target, "auth") } },
        webPushPayload(n),
        {
          vapidDetails: { subject: s.vapidSubject, publicKey: s.vapidPublicKey, privateKey: s.vapidPrivateKey },
          TTL: s.ttlSeconds,
          urgency: "high",
          topic: webPushTopic(n.collapseKey),
          contentEncoding: "aes128gcm",
        },
      );
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(request.headers)) if (name.toLowerCase() !== "content-length") headers[name] = String(value);
      const res = await fetch(request.endpoint, { method: "POST", headers, body: request.body, signal: AbortSignal.timeout(s.timeoutMs) });
      await res.arrayBuffer();
      return { status: res.status, reason: "", retryAfter: res.headers.get("retry-after") ?? undefined };
    },
    async close() {},
  };
}
