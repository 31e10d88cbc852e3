// Delivery from PushRequested on real Kafka and real PostgreSQL to local provider endpoints that
// speak the real protocols (Web Push decrypted with the subscription's keys, FCM with OAuth2,
// APNs over HTTP/2). The peer services (connection, group, message-store) are in-memory fakes.
import { create, toBinary, fromBinary } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { createClient, createRouterTransport } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConversationType, PushPlatform } from "../../../gen/chat/api/v1/enums_pb.js";
import { MessageSchema } from "../../../gen/chat/api/v1/model_pb.js";
import { ConnectionService } from "../../../gen/chat/connection/v1/connection_pb.js";
import { PushDeadLetteredSchema, PushRequestedSchema, type PushDeadLettered } from "../../../gen/chat/events/v1/events_pb.js";
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import { openBus } from "../../../packages/runtime/src/bus/index.js";
import { namespaced } from "../../../packages/runtime/src/bus/namespace.js";
import type { Bus, Subscription } from "../../../packages/runtime/src/bus/port.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { openPostgres } from "../../../packages/runtime/src/sql/postgres.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { topics, topicSpecs } from "../../../packages/runtime/src/topics.js";
import { ApnsEndpoint, FcmEndpoint, WebPushEndpoint } from "../../../tests/support/push-providers.js";
import { Deliverer } from "../src/deliverer.js";
import { consume } from "../src/events/consume.js";
import { newTargetId } from "../src/domain/targets.js";
import { openProviders } from "../src/providers/index.js";
import { migrations } from "../src/store/migrations.js";
import { createSqlPushStore } from "../src/store/sql.js";
import type { PushStore } from "../src/store/port.js";
import { until } from "../../../tests/support/wait.js";
import { scratchDir } from "../../../tests/support/scratch.js";

const run = randomBytes(4).toString("hex");
describe("push delivery on Kafka and PostgreSQL", () => {
  const web = new WebPushEndpoint();
  const fcm = new FcmEndpoint();
  const apns = new ApnsEndpoint();
  const logger = createLogger("push-test");
  const online = new Set<string>();
  const readSeq = new Map<string, number>();
  let bus: Bus;
  let store: PushStore;
  let deliverer: Deliverer;
  let subscription: Subscription;
  let dlq: Subscription;
  const deadLettered: PushDeadLettered[] = [];
  const conversationId = `c-${run}`;
  let seq = 0;

  before(async () => {
    await Promise.all([web.start(), fcm.start(), apns.start()]);
    const dir = scratchDir("push-delivery");
    writeFileSync(join(dir, "fcm.json"), JSON.stringify(fcm.account));
    writeFileSync(join(dir, "apns.p8"), apns.privateKeyPem);
    const providers = await openProviders(
      { ...web.env(), ...fcm.env(join(dir, "fcm.json")), ...apns.env(join(dir, "apns.p8")), FCM_BASE_URL: fcm.url, APNS_TOPIC: "com.example.chat", APNS_HOST: apns.url, APNS_SANDBOX_HOST: apns.url },
      { ttlSeconds: 60, timeoutMs: 2_000 },
      logger,
    );
    const sql = await openPostgres(process.env["PG_URL"] ?? assert.fail("PG_URL is not set (real PostgreSQL required)"));
    await migrateSql(sql, "push", migrations);
    store = createSqlPushStore(sql);
    bus = namespaced(openBus("kafka", { brokers: (process.env["KAFKA_BROKERS"] ?? assert.fail("KAFKA_BROKERS is not set")).split(","), clientId: "push-test", logger }), `pushdelivery-${run}.`);
    await bus.ensureTopics(topicSpecs(2));
    const peers = createRouterTransport(({ service }) => {
      service(ConnectionService, {
        listSessions: (req) => ({ users: req.userIds.map((userId) => ({ userId, sessions: online.has(userId) ? [{ sessionId: "s1", userId, deviceId: "laptop", edgeId: "e1" }] : [] })) }),
      });
      service(GroupService, {
        listUserConversations: () => ({ memberships: [{ conversation: { conversationId, type: ConversationType.GROUP, title: "Climbers" } }] }),
        getConversation: (req) => ({ conversation: { conversationId: req.conversationId, type: ConversationType.GROUP, title: "Climbers" } }),
      });
      service(MessageStoreService, {
        getConversationStates: (req) => ({
          states: req.conversationIds.map((id) => ({ conversationId: id, lastSeq: BigInt(seq), unreadCount: 4n, watermarks: { userId: req.userId, readSeq: BigInt(readSeq.get(req.userId) ?? 0) } })),
        }),
      });
    });
    deliverer = new Deliverer({
      store,
      providers,
      peers: { connection: createClient(ConnectionService, peers), group: createClient(GroupService, peers), messageStore: createClient(MessageStoreService, peers) },
      bus,
      logger,
      policy: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 2_000 },
      owner: `test-${run}`,
      claimLeaseMs: 5_000,
    });
    subscription = await consume({ bus, deliverer, logger, policy: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1_000 }, concurrency: 8 });
    dlq = await bus.subscribe({
      groupId: "dlq-reader",
      topics: [topics.pushDeadLettered.name],
      handle: async (records) => {
        for (const r of records) deadLettered.push(fromBinary(PushDeadLetteredSchema, r.value));
      },
    });
  });
  after(async () => {
    await subscription.stop();
    await dlq.stop();
    await bus.close();
    await store.close();
    await Promise.all([web.stop(), fcm.stop(), apns.stop()]);
  });

  const request = async (userId: string, text: string) => {
    seq++;
    const message = create(MessageSchema, { conversationId, seq: BigInt(seq), messageId: `m-${run}-${seq}`, senderId: "ann", serverTime: timestampNow(), content: { case: "text", value: text } });
    await bus.publish(topics.pushRequested.name, [{ key: userId, value: toBinary(PushRequestedSchema, create(PushRequestedSchema, { userId, message })) }]);
    return message.messageId;
  };
  const register = async (userId: string, deviceId: string, platform: PushPlatform, details: Record<string, unknown>) => {
    const t = await store.upsertTarget({ targetId: newTargetId(), userId, deviceId, platform, details }, 10);
    assert.ok(t !== "limit");
    return t;
  };

  it("sends one notification per target on Web Push, FCM and APNs, each checked by its endpoint", async () => {
    const user = `bo-${run}`;
    const sub = web.subscribe(`bo-${run}`);
    await register(user, "browser", PushPlatform.WEB_PUSH, { endpoint: sub.endpoint, p256dh: sub.p256dh, auth: sub.auth });
    await register(user, "android", PushPlatform.FCM, { token: `fcm-${run}` });
    await register(user, "iphone", PushPlatform.APNS, { token: "a1b2c3d4", topic: "", sandbox: false });
    const messageId = await request(user, "hello climbers");
    await until("all three", () => web.received.some((r) => r.payload.data.messageId === messageId) && fcm.received.some((r) => r.message.data["message_id"] === messageId) && apns.received.some((r) => r.payload.message_id === messageId));
    const w = web.received.find((r) => r.payload.data.messageId === messageId);
    assert.deepEqual({ title: w?.payload.title, body: w?.payload.body, badge: w?.payload.badge }, { title: "Climbers", body: "ann: hello climbers", badge: 4 });
    assert.equal(w?.vapid.sub, web.subject);
    assert.ok((w?.vapid.exp ?? 0) > Date.now() / 1000);
    assert.match(String(w?.headers["topic"]), /^[A-Za-z0-9_-]{32}$/);
    const f = fcm.received.find((r) => r.message.data["message_id"] === messageId);
    assert.equal(f?.project, "chat-test");
    assert.deepEqual(f?.message.notification, { title: "Climbers", body: "ann: hello climbers" });
    assert.equal(f?.message.android.collapse_key, conversationId);
    const a = apns.received.find((r) => r.payload.message_id === messageId);
    assert.deepEqual(a?.payload.aps.alert, { title: "Climbers", body: "ann: hello climbers" });
    assert.equal(a?.payload.aps.badge, 4);
    assert.equal(a?.headers["apns-topic"], "com.example.chat");
    assert.equal(a?.headers["apns-collapse-id"], conversationId);
    assert.deepEqual([web.problems, fcm.problems, apns.problems], [[], [], []]);
  });

  it("online, or already read on another device: nothing is sent", async () => {
    const users = { here: `cy-here-${run}`, read: `cy-read-${run}`, away: `cy-away-${run}` };
    for (const user of Object.values(users)) {
      const sub = web.subscribe(user);
      await register(user, "browser", PushPlatform.WEB_PUSH, { endpoint: sub.endpoint, p256dh: sub.p256dh, auth: sub.auth });
    }
    online.add(users.here);
    readSeq.set(users.read, 1_000_000);
    await request(users.here, "you are here");
    await request(users.read, "read on the laptop");
    const due = await request(users.away, "this one");
    await until("the due one", () => web.received.some((r) => r.payload.data.messageId === due));
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(web.received.filter((r) => Object.values(users).includes(r.subscription)).map((r) => r.subscription), [users.away]);
  });

  it("targets the provider reports gone are removed: 410 (Web Push), UNREGISTERED (FCM), BadDeviceToken (APNs)", async () => {
    const user = `di-${run}`;
    const sub = web.subscribe(`di-${run}`);
    web.script.add(`di-${run}`, { status: 410 });
    fcm.script.add(`fcm-di-${run}`, { status: 404, body: FcmEndpoint.error(404, "NOT_FOUND", "UNREGISTERED") });
    apns.script.add("dddd", { status: 400, body: JSON.stringify({ reason: "BadDeviceToken" }) });
    await register(user, "browser", PushPlatform.WEB_PUSH, { endpoint: sub.endpoint, p256dh: sub.p256dh, auth: sub.auth });
    await register(user, "android", PushPlatform.FCM, { token: `fcm-di-${run}` });
    await register(user, "iphone", PushPlatform.APNS, { token: "dddd", topic: "com.example.chat", sandbox: true });
    await request(user, "anyone?");
    const end = Date.now() + 20_000;
    while ((await store.listTargets(user)).length > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await store.listTargets(user), []);
    assert.equal(deadLettered.filter((d) => d.request?.userId === user).length, 0, "gone is not a failure");
  });

  it("429 is retried after its Retry-After; 500 is retried, then dead-lettered; the partition moves on", async () => {
    const user = `ed-${run}`;
    const sub = web.subscribe(`ed-${run}`);
    await register(user, "browser", PushPlatform.WEB_PUSH, { endpoint: sub.endpoint, p256dh: sub.p256dh, auth: sub.auth });
    web.script.add(`ed-${run}`, { status: 429, headers: { "retry-after": "1" } });
    const throttledAt = Date.now();
    const throttled = await request(user, "throttled");
    await until("the throttled one", () => web.received.some((r) => r.payload.data.messageId === throttled));
    const waited = Date.now() - throttledAt;
    assert.ok(waited >= 1_000, `waited ${waited} ms for Retry-After: 1`);
    web.script.add(`ed-${run}`, { status: 500 }, { status: 500 }, { status: 500 });
    const failing = await request(user, "provider down");
    // The next event is published once the first is dead-lettered: events of one batch are sent
    // concurrently, and the endpoint's scripted 500s answer whichever request comes first.
    await until("dead letter", () => deadLettered.some((d) => d.request?.message?.messageId === failing));
    const after = await request(user, "provider back");
    const d = deadLettered.find((x) => x.request?.message?.messageId === failing);
    assert.equal(d?.attempts, 3);
    assert.match(d?.error ?? "", /500/);
    await until("the next one", () => web.received.some((r) => r.payload.data.messageId === after));
    assert.ok(!web.received.some((r) => r.payload.data.messageId === failing));
  });

  it("a poison record is dead-lettered and never blocks its partition", async () => {
    const user = `fa-${run}`;
    const sub = web.subscribe(`fa-${run}`);
    await register(user, "browser", PushPlatform.WEB_PUSH, { endpoint: sub.endpoint, p256dh: sub.p256dh, auth: sub.auth });
    const before = deadLettered.length;
    await bus.publish(topics.pushRequested.name, [{ key: user, value: new Uint8Array([0xff, 0xff, 0xff]) }]);
    const next = await request(user, "still flowing");
    await until("the next one", () => web.received.some((r) => r.payload.data.messageId === next));
    await until("the poison's dead letter", () => deadLettered.slice(before).some((d) => d.error.startsWith("undecodable")));
  });

  it("an event seen again (a batch redelivered after a crash) sends nothing twice", async () => {
    const user = `gu-${run}`;
    const sub = web.subscribe(`gu-${run}`);
    await register(user, "browser", PushPlatform.WEB_PUSH, { endpoint: sub.endpoint, p256dh: sub.p256dh, auth: sub.auth });
    seq++;
    const message = create(MessageSchema, { conversationId, seq: BigInt(seq), messageId: `m-${run}-dup`, senderId: "ann", content: { case: "text", value: "once" } });
    const value = toBinary(PushRequestedSchema, create(PushRequestedSchema, { userId: user, message }));
    await bus.publish(topics.pushRequested.name, [{ key: user, value }]);
    await bus.publish(topics.pushRequested.name, [{ key: user, value }]);
    const marker = await request(user, "marker");
    await until("the marker", () => web.received.some((r) => r.payload.data.messageId === marker));
    assert.equal(web.received.filter((r) => r.payload.data.messageId === `m-${run}-dup`).length, 1);
  });

  it("the same event handled twice at once by one process (one batch holding it twice) sends once", async () => {
    const user = `hu-${run}`;
    const sub = web.subscribe(user);
    await register(user, "browser", PushPlatform.WEB_PUSH, { endpoint: sub.endpoint, p256dh: sub.p256dh, auth: sub.auth });
    seq++;
    const message = create(MessageSchema, { conversationId, seq: BigInt(seq), messageId: `m-${run}-twice`, senderId: "ann", content: { case: "text", value: "once" } });
    const event = create(PushRequestedSchema, { userId: user, message });
    const results = await Promise.all([deliverer.deliver(event), deliverer.deliver(event)]);
    assert.deepEqual(results.map((r) => r.sent), [1, 1], "the second settles as sent (a duplicate)");
    assert.equal(web.received.filter((r) => r.payload.data.messageId === message.messageId).length, 1);
  });
});
