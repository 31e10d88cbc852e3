// Pure rules of a notification: whether one is due, what it says, and each provider's payload.
import { createHash } from "node:crypto";
import { ConversationType } from "../../../../gen/chat/api/v1/enums_pb.js";

/** What a notification says, before any provider's shape. */
export interface Notification {
  title: string;
  body: string;
  /** Notifications of one conversation replace each other on the device. */
  collapseKey: string;
  /** The user's total unread count. */
  badge: number;
  conversationId: string;
  messageId: string;
  seq: number;
}

/** The generic wording when the user chose private previews: no sender, no title, no text. */
export const PRIVATE_TITLE = "New message";
export const PRIVATE_BODY = "You have a new message";
/** Previews are cut to this many characters (payload limits are 4 KB on every provider). */
export const PREVIEW_CHARS = 200;

export interface NotificationInput {
  conversationId: string;
  conversationType: ConversationType;
  /** The group's title (empty for direct conversations). */
  conversationTitle: string;
  senderName: string;
  text: string;
  messageId: string;
  seq: number;
  showPreviews: boolean;
  badge: number;
}

/** Cuts text to `max` characters (code points, so no surrogate pair is split), adding an ellipsis. */
export function preview(text: string, max = PREVIEW_CHARS): string {
  const flat = text.replace(/\s+/g, " ").trim();
  const chars = [...flat];
  return chars.length <= max ? flat : `${chars.slice(0, max - 1).join("")}…`;
}

export function buildNotification(n: NotificationInput): Notification {
  const base = { collapseKey: n.conversationId, badge: n.badge, conversationId: n.conversationId, messageId: n.messageId, seq: n.seq };
  if (!n.showPreviews) return { ...base, title: PRIVATE_TITLE, body: PRIVATE_BODY };
  const group = n.conversationType === ConversationType.GROUP;
  const title = group && n.conversationTitle !== "" ? n.conversationTitle : n.senderName;
  const body = group ? `${n.senderName}: ${preview(n.text)}` : preview(n.text);
  return { ...base, title, body };
}

/** Why no notification is due for a member (undefined: one is). */
export type Suppression = "online" | "read" | "muted";

export function suppression(s: { online: boolean; readSeq: number; seq: number; mutedUntil: Date | undefined; now: Date }): Suppression | undefined {
  if (s.online) return "online";
  if (s.readSeq >= s.seq) return "read";
  if (s.mutedUntil !== undefined && s.mutedUntil.getTime() > s.now.getTime()) return "muted";
  return undefined;
}

/** The Web Push Topic header (RFC 8030 5.4): at most 32 URL-safe base64 characters, one per conversation. */
export const webPushTopic = (collapseKey: string): string => createHash("sha256").update(collapseKey).digest("base64url").slice(0, 32);

/** The JSON a service worker receives (decrypted) from Web Push. */
export function webPushPayload(n: Notification): string {
  return JSON.stringify({ title: n.title, body: n.body, badge: n.badge, tag: n.collapseKey, data: { conversationId: n.conversationId, messageId: n.messageId, seq: n.seq } });
}

/** The body of FCM HTTP v1 messages:send for one registration token. */
export function fcmMessage(token: string, n: Notification): Record<string, unknown> {
  return {
    message: {
      token,
      notification: { title: n.title, body: n.body },
      // FCM data values must be strings.
      data: { conversation_id: n.conversationId, message_id: n.messageId, seq: String(n.seq), badge: String(n.badge) },
      android: { collapse_key: n.collapseKey, priority: "HIGH", notification: { tag: n.collapseKey, notification_count: n.badge } },
      apns: { headers: { "apns-collapse-id": apnsCollapseId(n.collapseKey) }, payload: { aps: { badge: n.badge } } },
    },
  };
}

/** apns-collapse-id is at most 64 bytes; longer keys are hashed. */
export const apnsCollapseId = (collapseKey: string): string =>
  Buffer.byteLength(collapseKey) <= 64 ? collapseKey : createHash("sha256").update(collapseKey).digest("base64url");

/** The JSON body of an APNs request. */
export function apnsPayload(n: Notification): Record<string, unknown> {
  return {
    aps: { alert: { title: n.title, body: n.body }, badge: n.badge, sound: "default", "thread-id": n.conversationId },
    conversation_id: n.conversationId,
    message_id: n.messageId,
    seq: n.seq,
  };
}
