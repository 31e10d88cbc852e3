// Pure rules of push: wording, suppression, provider payloads, error classification and retries.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { ConversationType, PushPlatform } from "../../../gen/chat/api/v1/enums_pb.js";
import { classify, nextRetry, parseRetryAfter } from "../src/domain/delivery.js";
import { apnsCollapseId, apnsPayload, buildNotification, fcmMessage, preview, PRIVATE_BODY, PRIVATE_TITLE, suppression, webPushTopic } from "../src/domain/notification.js";

const input = { conversationId: "c1", conversationType: ConversationType.DIRECT, conversationTitle: "", senderName: "ann", text: "hello  there", messageId: "m1", seq: 3, showPreviews: true, badge: 7 };

describe("notification wording", () => {
  it("direct: the sender is the title, the text the body; groups: the title, then sender: text", () => {
    assert.deepEqual(buildNotification(input), { title: "ann", body: "hello there", collapseKey: "c1", badge: 7, conversationId: "c1", messageId: "m1", seq: 3 });
    const g = buildNotification({ ...input, conversationType: ConversationType.GROUP, conversationTitle: "Climbers" });
    assert.equal(g.title, "Climbers");
    assert.equal(g.body, "ann: hello there");
  });
  it("private previews: generic text, no sender, no title", () => {
    const n = buildNotification({ ...input, conversationType: ConversationType.GROUP, conversationTitle: "Climbers", showPreviews: false });
    assert.equal(n.title, PRIVATE_TITLE);
    assert.equal(n.body, PRIVATE_BODY);
    assert.equal(n.badge, 7);
  });
  it("previews are cut by characters, never inside a surrogate pair", () => {
    const cut = preview("😀".repeat(300), 10);
    assert.equal([...cut].length, 10);
    assert.ok(cut.endsWith("…"));
    assert.equal(preview("short", 10), "short");
  });
});

describe("suppression", () => {
  const now = new Date();
  it("online, read or muted: nothing is sent", () => {
    assert.equal(suppression({ online: true, readSeq: 0, seq: 1, mutedUntil: undefined, now }), "online");
    assert.equal(suppression({ online: false, readSeq: 5, seq: 5, mutedUntil: undefined, now }), "read");
    assert.equal(suppression({ online: false, readSeq: 4, seq: 5, mutedUntil: new Date(now.getTime() + 1000), now }), "muted");
    assert.equal(suppression({ online: false, readSeq: 4, seq: 5, mutedUntil: new Date(now.getTime() - 1000), now }), undefined);
  });
});

describe("provider payloads", () => {
  const n = buildNotification(input);
  it("Web Push Topic: 32 URL-safe characters, the same per conversation", () => {
    assert.match(webPushTopic("c1"), /^[A-Za-z0-9_-]{32}$/);
    assert.equal(webPushTopic("c1"), webPushTopic("c1"));
    assert.notEqual(webPushTopic("c1"), webPushTopic("c2"));
  });
  it("FCM: token, notification, string data, collapse key and badge", () => {
    const m = fcmMessage("tok", n) as { message: { token: string; data: Record<string, unknown>; android: { collapse_key: string; notification: { notification_count: number } } } };
    assert.equal(m.message.token, "tok");
    assert.ok(Object.values(m.message.data).every((v) => typeof v === "string"));
    assert.equal(m.message.android.collapse_key, "c1");
    assert.equal(m.message.android.notification.notification_count, 7);
  });
  it("APNs: alert, badge, thread; collapse ids past 64 bytes are hashed", () => {
    assert.deepEqual((apnsPayload(n) as { aps: unknown }).aps, { alert: { title: "ann", body: "hello there" }, badge: 7, sound: "default", "thread-id": "c1" });
    assert.equal(apnsCollapseId("c1"), "c1");
    assert.ok(Buffer.byteLength(apnsCollapseId("x".repeat(100))) <= 64);
  });
});

describe("classification", () => {
  const now = Date.parse("2026-01-01T00:00:00Z");
  it("gone registrations per provider", () => {
    assert.equal(classify(PushPlatform.WEB_PUSH, { status: 410, reason: "" }, now).kind, "gone");
    assert.equal(classify(PushPlatform.WEB_PUSH, { status: 404, reason: "" }, now).kind, "gone");
    assert.equal(classify(PushPlatform.FCM, { status: 404, reason: "UNREGISTERED" }, now).kind, "gone");
    assert.equal(classify(PushPlatform.FCM, { status: 400, reason: "UNREGISTERED" }, now).kind, "gone");
    assert.equal(classify(PushPlatform.APNS, { status: 410, reason: "Unregistered" }, now).kind, "gone");
    assert.equal(classify(PushPlatform.APNS, { status: 400, reason: "BadDeviceToken" }, now).kind, "gone");
  });
  it("transient: 429 and 5xx with Retry-After, expired tokens; permanent: other 4xx", () => {
    assert.deepEqual(classify(PushPlatform.WEB_PUSH, { status: 429, reason: "", retryAfter: "2" }, now), { kind: "transient", why: "429", retryAfterMs: 2000 });
    assert.equal(classify(PushPlatform.FCM, { status: 503, reason: "UNAVAILABLE" }, now).kind, "transient");
    assert.equal(classify(PushPlatform.FCM, { status: 401, reason: "UNAUTHENTICATED" }, now).kind, "transient");
    assert.equal(classify(PushPlatform.APNS, { status: 403, reason: "ExpiredProviderToken" }, now).kind, "transient");
    assert.equal(classify(PushPlatform.APNS, { status: 400, reason: "PayloadTooLarge" }, now).kind, "permanent");
    assert.equal(classify(PushPlatform.WEB_PUSH, { status: 201, reason: "" }, now).kind, "sent");
  });
  it("Retry-After: seconds or an HTTP date", () => {
    assert.equal(parseRetryAfter("3", now), 3000);
    assert.equal(parseRetryAfter("Thu, 01 Jan 2026 00:00:05 GMT", now), 5000);
    assert.equal(parseRetryAfter("soon", now), undefined);
  });
});

describe("retries", () => {
  const policy = { maxAttempts: 4, baseDelayMs: 100, maxDelayMs: 1000 };
  const transient = { kind: "transient" as const, why: "500" };
  it("back off exponentially with jitter up to the cap, then give up", () => {
    assert.deepEqual(nextRetry(1, transient, policy, () => 0), { retry: true, delayMs: 50 });
    assert.deepEqual(nextRetry(2, transient, policy, () => 1), { retry: true, delayMs: 200 });
    assert.deepEqual(nextRetry(3, transient, { ...policy, maxDelayMs: 300 }, () => 1), { retry: true, delayMs: 300 });
    assert.equal(nextRetry(4, transient, policy).retry, false);
  });
  it("honour Retry-After, and give up rather than wait past the cap", () => {
    assert.deepEqual(nextRetry(1, { ...transient, retryAfterMs: 700 }, policy), { retry: true, delayMs: 700 });
    assert.equal(nextRetry(1, { ...transient, retryAfterMs: 5000 }, policy).retry, false);
  });
  it("never retry gone or permanent answers", () => {
    assert.equal(nextRetry(1, { kind: "gone", why: "410" }, policy).retry, false);
    assert.equal(nextRetry(1, { kind: "permanent", why: "400" }, policy).retry, false);
  });
});
