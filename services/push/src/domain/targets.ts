// Pure rules of push targets: ids, which platform a registration is, what is stored of it.
import { randomBytes } from "node:crypto";
import { PushPlatform } from "../../../../gen/chat/api/v1/enums_pb.js";
import type { RegisterPushTargetRequest } from "../../../../gen/chat/api/v1/api_pb.js";

export const newTargetId = (): string => `t_${randomBytes(12).toString("base64url")}`;

/** The provider and its registration details (endpoint/keys or token) as stored. */
export function describeTarget(target: RegisterPushTargetRequest["target"]): { platform: PushPlatform; details: Record<string, unknown> } | undefined {
  switch (target.case) {
    case "webPush":
      return { platform: PushPlatform.WEB_PUSH, details: { endpoint: target.value.endpoint, p256dh: target.value.p256dh, auth: target.value.auth } };
    case "fcm":
      return { platform: PushPlatform.FCM, details: { token: target.value.token } };
    case "apns":
      return { platform: PushPlatform.APNS, details: { token: target.value.token, topic: target.value.topic, sandbox: target.value.sandbox } };
    default:
      return undefined;
  }
}
