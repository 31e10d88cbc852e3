// The messaging core driven only through the public API (WebSocket frames and Connect calls), in
// both modes: order on every device, gap-free seqs under concurrency, idempotent retries, offline
// catch-up from a cursor, receipts both ways, authorization, and the two faces reaching each other.
import { createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { stopCluster, type ClusterProcess } from "../../cmd/cluster.js";
import { Direction, ReceiptKind } from "../../gen/chat/api/v1/enums_pb.js";
import { ChatService } from "../../gen/chat/api/v1/api_pb.js";
import type { Event } from "../../gen/chat/api/v1/events_pb.js";
import { ChatSocket, FrameError } from "../../packages/client/src/websocket.js";
import { EdgeService } from "../../gen/chat/edge/v1/edge_pb.js";
import { addressOf, connectClient, modes, publicUrls, runClients, tokenFor } from "../support/modes.js";

const seqsOf = (events: Event[]) => events.flatMap((e) => (e.kind.case === "message" ? [Number(e.kind.value.message?.seq)] : []));

for (const mode of modes("messaging", 22_000)) describe(mode.name, () => {
  let mesh: ClusterProcess[] = [];
  const { user, open, closeAll } = runClients(mode);

  before(async () => {
    mesh = await mode.start({ LOG_LEVEL: "warn" });
  });
  after(async () => {
    await closeAll();
    await stopCluster(mesh);
  });

  it("two users with two devices each see the same messages in the same order, even when both send at once", async () => {
    const [a1, a2, b1, b2] = [await open("ann", "phone"), await open("ann", "laptop", "chat.v1.json"), await open("ben", "phone"), await open("ben", "tablet", "chat.v1.json")];
    const { conversation } = await a1.call("getOrCreateDirectConversation", { peerId: user("ben") });
    const conversationId = conversation?.conversationId ?? assert.fail("no conversation");
    const sends = await Promise.all(
      Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? a1 : b1).call("sendMessage", { conversationId, clientMsgId: `m${i}`, text: `message ${i}` })),
    );
    const own = { a1: sends.filter((_, i) => i % 2 === 0).map((s) => Number(s.seq)), b1: sends.filter((_, i) => i % 2 === 1).map((s) => Number(s.seq)) };
    assert.deepEqual(sends.map((s) => Number(s.seq)).sort((x, y) => x - y), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    for (const s of [a2, b2]) await s.until((ev) => seqsOf(ev).length >= 10);
    await a1.until((ev) => seqsOf(ev).length >= 5);
    await b1.until((ev) => seqsOf(ev).length >= 5);
    const all = (s: ChatSocket, mine: number[] = []) => [...seqsOf(s.events), ...mine].sort((x, y) => x - y);
    for (const [name, seqs] of [["a1", all(a1, own.a1)], ["a2", all(a2)], ["b1", all(b1, own.b1)], ["b2", all(b2)]] as const) {
      assert.deepEqual(seqs, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10], `${name} has every message once`);
    }
    assert.deepEqual(seqsOf(a2.events), [...seqsOf(a2.events)].sort((x, y) => x - y), "delivered in order");
    const history = await b2.call("getHistory", { conversationId, limit: 50 });
    assert.deepEqual(history.messages.map((m) => m.content.value), sends.map((_, i) => `message ${i}`).sort((x, y) => Number(history.messages.find((m) => m.content.value === x)?.seq) - Number(history.messages.find((m) => m.content.value === y)?.seq)));
  });

  it("20 devices sending at once get seqs 1..N, unique and gap-free, and every device receives all", async () => {
    const devices = await Promise.all(Array.from({ length: 20 }, (_, i) => open(i % 2 === 0 ? "cid" : "dov", `d${i}`)));
    const { conversation } = await devices[0].call("getOrCreateDirectConversation", { peerId: user("dov") });
    const conversationId = conversation?.conversationId ?? "";
    const perDevice = 3;
    const results = await Promise.all(devices.flatMap((d, i) => Array.from({ length: perDevice }, (_, k) => d.call("sendMessage", { conversationId, clientMsgId: `x${i}-${k}`, text: `${i}/${k}` }))));
    const n = devices.length * perDevice;
    assert.deepEqual(results.map((r) => Number(r.seq)).sort((x, y) => x - y), Array.from({ length: n }, (_, i) => i + 1));
    await Promise.all(devices.map((d, i) => d.until((ev) => seqsOf(ev).length >= n - perDevice, 20_000).then(() => assert.equal(new Set(seqsOf(d.events)).size, n - perDevice, `device ${i}`))));
  });

  it("a send retried with the same client_msg_id stores one message, also when a repeat is marked as a first attempt", async () => {
    const e = await open("eva", "phone");
    const { conversation } = await e.call("getOrCreateDirectConversation", { peerId: user("fin") });
    const conversationId = conversation?.conversationId ?? "";
    const tries = await Promise.all([1, 2, 3].map(() => e.call("sendMessage", { conversationId, clientMsgId: "same", text: "once" })));
    assert.equal(new Set(tries.map((t) => t.messageId)).size, 1);
    assert.equal(tries.filter((t) => t.created).length, 1);
    // And once more after all three were answered: found in the store, not joined to one in progress.
    const later = await e.call("sendMessage", { conversationId, clientMsgId: "same", text: "once" });
    assert.deepEqual([later.messageId, later.created], [tries[0]?.messageId, false]);
    // A resend wrongly marked as a first attempt (or a first send that arrives after its own
    // retry was stored) still gets the stored message while the store remembers it, and a fresh
    // first attempt in the same conversation is stored.
    const marked = await e.call("sendMessage", { conversationId, clientMsgId: "same", text: "once", firstAttempt: true });
    assert.deepEqual([marked.messageId, marked.created], [tries[0]?.messageId, false]);
    const fresh = await e.call("sendMessage", { conversationId, clientMsgId: "new", text: "twice", firstAttempt: true });
    assert.deepEqual([Number(fresh.seq), fresh.created], [2, true]);
    const history = await e.call("getHistory", { conversationId });
    assert.deepEqual(history.messages.map((m) => m.content.value), ["once", "twice"]);
  });

  it("an offline device catches up from its cursor: exactly what it missed, in order", async () => {
    const g = await open("gia", "phone");
    const h1 = await open("hal", "laptop");
    const { conversation } = await g.call("getOrCreateDirectConversation", { peerId: user("hal") });
    const conversationId = conversation?.conversationId ?? "";
    await g.call("sendMessage", { conversationId, clientMsgId: "before", text: "before" });
    await h1.until((ev) => seqsOf(ev).includes(1));
    const cursor = Math.max(...seqsOf(h1.events));
    await h1.close();
    for (let i = 0; i < 50; i++) await g.call("sendMessage", { conversationId, clientMsgId: `off${i}`, text: `missed ${i}` });
    const h2 = await open("hal", "laptop");
    const missed = await h2.call("getHistory", { conversationId, anchorSeq: BigInt(cursor), direction: Direction.AFTER, limit: 500 });
    assert.deepEqual(missed.messages.map((m) => m.content.value), Array.from({ length: 50 }, (_, i) => `missed ${i}`));
    assert.deepEqual(missed.messages.map((m) => Number(m.seq)), Array.from({ length: 50 }, (_, i) => cursor + 1 + i));
    assert.equal(missed.hasMore, false);
    const synced = await h2.call("sync", { cursors: [{ conversationId, seq: BigInt(cursor) }] });
    const update = synced.updates.find((u) => u.conversation?.conversationId === conversationId);
    assert.deepEqual(update?.messages.map((m) => m.content.value), Array.from({ length: 50 }, (_, i) => `missed ${i}`));
    const none = await h2.call("sync", { cursors: [{ conversationId, seq: BigInt(cursor + 50) }] });
    assert.equal(none.updates.find((u) => u.conversation?.conversationId === conversationId), undefined, "nothing new: nothing sent");
  });

  it("receipts flow both ways, never move back, and clear unread on the reader's other devices", async () => {
    const i1 = await open("ida", "phone");
    const j1 = await open("jon", "phone");
    const j2 = await open("jon", "laptop");
    const { conversation } = await i1.call("getOrCreateDirectConversation", { peerId: user("jon") });
    const conversationId = conversation?.conversationId ?? "";
    for (let k = 0; k < 3; k++) await i1.call("sendMessage", { conversationId, clientMsgId: `r${k}`, text: `r${k}` });
    await j1.until((ev) => seqsOf(ev).length >= 3);
    assert.equal((await j2.call("getConversation", { conversationId })).conversation?.unreadCount, 3n);
    await j1.call("updateReceipt", { conversationId, kind: ReceiptKind.DELIVERED, seq: 3n });
    const read = await j1.call("updateReceipt", { conversationId, kind: ReceiptKind.READ, seq: 2n });
    assert.deepEqual([read.watermarks?.deliveredSeq, read.watermarks?.readSeq], [3n, 2n]);
    const back = await j1.call("updateReceipt", { conversationId, kind: ReceiptKind.READ, seq: 1n });
    assert.equal(back.watermarks?.readSeq, 2n, "a watermark never moves back");
    const past = await j1.call("updateReceipt", { conversationId, kind: ReceiptKind.READ, seq: 99n });
    assert.equal(past.watermarks?.readSeq, 3n, "never past the last seq");
    const isReadBy = (ev: Event[], who: string, seq: bigint) => ev.some((e) => e.kind.case === "receipt" && e.kind.value.watermarks?.userId === who && e.kind.value.watermarks.readSeq >= seq);
    await i1.until((ev) => isReadBy(ev, user("jon"), 3n));
    await j2.until((ev) => isReadBy(ev, user("jon"), 3n));
    assert.equal((await j2.call("getConversation", { conversationId })).conversation?.unreadCount, 0n);
    const receipts = await i1.call("getReceipts", { conversationId, seq: 3n });
    assert.deepEqual([receipts.recipientCount, receipts.deliveredCount, receipts.readCount], [1, 1, 1]);
  });

  it("no one reads, writes or subscribes where they are not a member; tokens are checked", async () => {
    const k = await open("kim", "phone");
    const { conversation } = await k.call("getOrCreateDirectConversation", { peerId: user("lea") });
    const conversationId = conversation?.conversationId ?? "";
    const intruder = await open("max", "phone");
    const code = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => (e instanceof FrameError ? e.code : String(e)));
    assert.equal(await code(intruder.call("getHistory", { conversationId })), "permission_denied");
    assert.equal(await code(intruder.call("sendMessage", { conversationId, clientMsgId: "x", text: "hi" })), "permission_denied");
    assert.equal(await code(intruder.call("getConversation", { conversationId })), "permission_denied");
    assert.equal(await code(intruder.call("getConversation", { conversationId: "c_does_not_exist" })), "not_found");
    assert.equal(await code(k.call("sendMessage", { conversationId, clientMsgId: "y", text: "" })), "invalid_argument");
    await assert.rejects(ChatSocket.connect({ url: publicUrls(mode).ws, token: "not-a-jwt", deviceId: "d" }), /HTTP 401/);
    const anonymous = createClient(ChatService, createConnectTransport({ baseUrl: publicUrls(mode).connect, httpVersion: "1.1" }));
    await assert.rejects(anonymous.listConversations({}), /unauthenticated|missing bearer token/i);
  });

  it("a message sent over WebSocket reaches a Connect subscriber, and the reverse", async () => {
    const ws = await open("nia", "phone");
    const rest = connectClient(mode, await tokenFor(user("oli")), "desktop");
    const { conversation } = await rest.getOrCreateDirectConversation({ peerId: user("nia") });
    const conversationId = conversation?.conversationId ?? "";
    const abort = new AbortController();
    const stream = rest.subscribe({}, { signal: abort.signal });
    const received: string[] = [];
    const reading = (async () => {
      for await (const r of stream) {
        const content = r.event?.kind.case === "message" ? r.event.kind.value.message?.content : undefined;
        if (content?.case === "text") received.push(content.value);
        if (received.length >= 1) return;
      }
    })();
    await new Promise((r) => setTimeout(r, 500)); // the stream's session registers
    await ws.call("sendMessage", { conversationId, clientMsgId: "w1", text: "from websocket" });
    await reading;
    abort.abort();
    assert.deepEqual(received, ["from websocket"]);
    await rest.sendMessage({ conversationId, clientMsgId: "c1", text: "from connect" });
    await ws.until((ev) => ev.some((e) => e.kind.case === "message" && e.kind.value.message?.content.value === "from connect"));
  });

  it("a Connect Subscribe with cursors first replays what the device missed", async () => {
    const sender = await open("ray", "phone");
    const { conversation } = await sender.call("getOrCreateDirectConversation", { peerId: user("sue") });
    const conversationId = conversation?.conversationId ?? "";
    for (let i = 1; i <= 3; i++) await sender.call("sendMessage", { conversationId, clientMsgId: `s${i}`, text: `missed ${i}` });
    const sue = connectClient(mode, await tokenFor(user("sue")), "tablet");
    const abort = new AbortController();
    const got: string[] = [];
    for await (const r of sue.subscribe({ cursors: [{ conversationId, seq: 1n }] }, { signal: abort.signal })) {
      const content = r.event?.kind.case === "message" ? r.event.kind.value.message?.content : undefined;
      if (content?.case === "text") got.push(content.value);
      if (got.length === 2) break;
    }
    abort.abort();
    assert.deepEqual(got, ["missed 2", "missed 3"]);
  });

  it("a malformed or unknown frame gets an error frame and the connection stays usable", async () => {
    const p = await open("pam", "phone", "chat.v1.json");
    const errors: string[] = [];
    p.ws.on("message", (d: Buffer) => {
      const text = d.toString();
      if (text.includes('"error"')) errors.push(text);
    });
    p.ws.send("{not json");
    p.ws.send(JSON.stringify({ requestId: 7, noSuchRequest: {} }));
    p.ws.send(Buffer.from([0xff, 0xfe, 0xfd]), { binary: false });
    p.ws.send(JSON.stringify({ requestId: 8, sendMessage: { conversationId: "c", clientMsgId: "m", text: "x".repeat(100_001) } }));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(errors.length, 4, errors.join("\n"));
    assert.ok(errors.every((e) => e.includes("invalid_argument")));
    const ok = await p.call("listConversations", {});
    assert.ok(Array.isArray(ok.conversations));
  });

  it("texts at the size limit, 100,000 characters of 4 bytes each, several at once, are stored and delivered whole", async () => {
    const [tia, uma] = await Promise.all([open("tia", "phone"), open("uma", "phone")]);
    const { conversation } = await tia.call("getOrCreateDirectConversation", { peerId: user("uma") });
    const conversationId = conversation?.conversationId ?? assert.fail("no conversation");
    const big = (n: number) => String.fromCodePoint(0x1f600 + n).repeat(100_000);
    const sent = await Promise.all([0, 1, 2].map((n) => tia.call("sendMessage", { conversationId, clientMsgId: `big-${n}`, text: big(n) })));
    assert.deepEqual(sent.map((r) => Number(r.seq)).sort(), [1, 2, 3]);
    const texts = (ev: Event[]) => ev.flatMap((e) => (e.kind.case === "message" && e.kind.value.message?.content.case === "text" ? [e.kind.value.message.content.value] : []));
    await uma.until((ev) => texts(ev).length >= 3);
    assert.deepEqual(new Set(texts(uma.events)), new Set([0, 1, 2].map(big)));
  });

  it("a frame over the size limit is refused while it is read: the connection closes with 1009", async () => {
    const q = await open("quin", "phone");
    const closed = new Promise<number>((r) => q.ws.once("close", (code: number) => r(code)));
    q.ws.send(Buffer.alloc(600 * 1024, 0x41), { binary: false });
    assert.equal(await closed, 1009);
    // A call on the closed socket fails at once instead of waiting for an answer that cannot come.
    await assert.rejects(q.call("listConversations", {}), /connection closed/);
  });

  // Last: it drains this mesh's edge.
  it("a draining edge asks its clients to reconnect elsewhere and refuses new ones", async () => {
    const r = await open("rex", "phone");
    const edge = createClient(EdgeService, createGrpcTransport({ baseUrl: `http://${addressOf(mesh, "edge")}` }));
    const drained = await edge.drain({ deadlineMs: 2_000 });
    assert.ok(drained.clients >= 1);
    await r.until((ev) => ev.some((e) => e.kind.case === "reconnect"));
    await assert.rejects(open("sam", "phone"), /HTTP 503/);
  });
});
