// Group chat driven only through the public API (WebSocket frames), in both modes: fan-out to
// every device of a 100-member group, membership changes under traffic, role rules and the member
// cap under concurrent adds, and per-member read aggregates. In the cluster mode the test also
// reads the push topic on Kafka to count the PushRequested events of offline members.
import { fromBinary } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { stopCluster, type ClusterProcess } from "../../cmd/cluster.js";
import { ReceiptKind, Role, SystemEventKind } from "../../gen/chat/api/v1/enums_pb.js";
import type { Event } from "../../gen/chat/api/v1/events_pb.js";
import type { Message } from "../../gen/chat/api/v1/model_pb.js";
import { PushRequestedSchema, type PushRequested } from "../../gen/chat/events/v1/events_pb.js";
import { FrameError, type ChatSocket } from "../../packages/client/src/websocket.js";
import { createKafkaBus } from "../../packages/runtime/src/bus/kafka.js";
import { namespaced } from "../../packages/runtime/src/bus/namespace.js";
import type { Bus, Subscription } from "../../packages/runtime/src/bus/port.js";
import { topics } from "../../packages/runtime/src/topics.js";
import { infraEnv } from "../support/infra.js";
import { modes, runClients } from "../support/modes.js";

const SUITE = "groups";
/** The member cap of this suite's mesh (the default is 1,024): the 100-member group fills it. */
const CAP = 100;

/** Messages of one conversation in the events, by seq (a repeat delivery counts once). */
const messagesIn = (events: Event[], conversationId: string): Message[] => {
  const bySeq = new Map<number, Message>();
  for (const e of events) if (e.kind.case === "message" && e.kind.value.message?.conversationId === conversationId) bySeq.set(Number(e.kind.value.message.seq), e.kind.value.message);
  return [...bySeq.values()];
};
const seqsIn = (events: Event[], conversationId: string) => events.flatMap((e) => (e.kind.case === "message" && e.kind.value.message?.conversationId === conversationId ? [Number(e.kind.value.message.seq)] : []));
const kindOf = (m: Message | undefined) => (m?.content.case === "system" ? m.content.value.kind : undefined);
const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => (e instanceof FrameError ? e.code : String(e)));
const range = (lo: number, hi: number) => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

// Ports 27080-28106: below the ephemeral range (32768+), where a client socket could hold one.
for (const mode of modes(SUITE, 18_000)) describe(mode.name, () => {
  let mesh: ClusterProcess[] = [];
  const { run, user, open, closeAll } = runClients(mode);
  /** PushRequested events read from Kafka (cluster mode only: the embedded bus lives inside the mesh process). */
  let pushBus: Bus | undefined;
  let pushSubscription: Subscription | undefined;
  const pushes: PushRequested[] = [];

  before(async () => {
    mesh = await mode.start({ LOG_LEVEL: "warn", MAX_GROUP_MEMBERS: String(CAP) });
    if (mode.bus === "kafka") {
      const brokers = (infraEnv()["KAFKA_BROKERS"] ?? "").split(",");
      pushBus = namespaced(createKafkaBus({ brokers, clientId: "groups-test" }), `${SUITE}.`);
      pushSubscription = await pushBus.subscribe({
        groupId: `groups-test-${run}`,
        topics: [topics.pushRequested.name],
        handle: async (records) => void pushes.push(...records.map((r) => fromBinary(PushRequestedSchema, r.value))),
      });
    }
  });
  after(async () => {
    await closeAll();
    await pushSubscription?.stop();
    await pushBus?.close();
    await stopCluster(mesh);
  });

  it("a 100-member group: every online device gets every message once, in one order; each offline member one push per message", async () => {
    const names = range(0, CAP - 1).map((i) => `m${String(i).padStart(3, "0")}`);
    const online = names.slice(0, 10);
    const devices = (await Promise.all(online.map((n) => Promise.all(["phone", "laptop", "tablet"].map((d) => open(n, d)))))).flat();
    const owner = devices[0] ?? assert.fail();
    const { conversation } = await owner.call("createGroup", { title: "Hundred", memberIds: names.slice(1).map(user) });
    const conversationId = conversation?.conversationId ?? assert.fail("no group");
    assert.equal(conversation?.memberCount, CAP);
    // One device of each online member sends twice, all at once.
    const senders = devices.filter((_, i) => i % 3 === 0);
    const sent = await Promise.all(senders.flatMap((s, i) => [0, 1].map((k) => s.call("sendMessage", { conversationId, clientMsgId: `g${i}-${k}`, text: `from ${i} #${k}` }))));
    const n = sent.length + 1; // and the CREATED message at seq 1
    assert.deepEqual(sent.map((r) => Number(r.seq)).sort((a, b) => a - b), range(2, n));
    const ownSeqs = new Map(senders.map((s, i) => [s, sent.slice(i * 2, i * 2 + 2).map((r) => Number(r.seq))]));
    await Promise.all(
      devices.map(async (d, i) => {
        const own = ownSeqs.get(d) ?? [];
        await d.until((ev) => new Set(seqsIn(ev, conversationId)).size >= n - own.length, 20_000);
        const received = seqsIn(d.events, conversationId);
        assert.deepEqual([...new Set([...received, ...own])].sort((a, b) => a - b), range(1, n), `device ${i} has every message`);
        assert.deepEqual([...new Set(received)], [...new Set(received)].sort((a, b) => a - b), `device ${i} received them in seq order`);
      }),
    );
    // An offline member's device catches up by Sync: the group is over the inbox fan-out limit (64),
    // so its last seq is read directly.
    const late = await open(names[CAP - 1] ?? "", "phone");
    const caughtUp = (await late.call("sync", { cursors: [{ conversationId, seq: 10n }] })).updates.find((u) => u.conversation?.conversationId === conversationId);
    assert.deepEqual(caughtUp?.messages.map((m) => Number(m.seq)), range(11, n), "sync returns exactly what the device missed");
    const fresh = (await late.call("sync", {})).updates.find((u) => u.conversation?.conversationId === conversationId);
    assert.equal(fresh?.messages.length, n);
    if (mode.bus === "kafka") {
      const offline = new Set(names.slice(10).map(user));
      const deadline = Date.now() + 20_000;
      const mine = () => pushes.filter((p) => p.message?.conversationId === conversationId);
      while (mine().length < offline.size * sent.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const keys = mine().map((p) => `${p.userId}/${p.message?.seq}`);
      assert.equal(new Set(keys).size, offline.size * sent.length, "one push per offline member per message");
      assert.ok(mine().every((p) => offline.has(p.userId)), "no push for a member with a live device");
    }
  });

  it("members added and removed under traffic: the removed get nothing after the removal, the added everything after the join", async () => {
    const [own, stay, gone, late] = [await open("own", "phone"), await open("stay", "phone"), await open("gone", "phone"), await open("late", "phone")];
    const { conversation } = await own.call("createGroup", { title: "Moving", memberIds: [user("stay"), user("gone")] });
    const conversationId = conversation?.conversationId ?? assert.fail("no group");
    let removedAt = 0;
    let joinedAt = 0;
    const sent: number[] = [];
    for (let i = 0; i < 40; i++) {
      const r = await own.call("sendMessage", { conversationId, clientMsgId: `t${i}`, text: `traffic ${i}` });
      sent.push(Number(r.seq));
      if (i === 12) removedAt = Number((await own.call("removeMember", { conversationId, userId: user("gone") })).systemMessage?.seq);
      if (i === 20) joinedAt = Number((await own.call("addMembers", { conversationId, userIds: [user("late")] })).systemMessage?.seq);
    }
    const last = sent.at(-1) ?? 0;
    assert.ok(removedAt > 0 && joinedAt > removedAt);
    await stay.until((ev) => seqsIn(ev, conversationId).includes(last), 20_000);
    await late.until((ev) => seqsIn(ev, conversationId).includes(last), 20_000);
    await new Promise((r) => setTimeout(r, 300)); // anything misrouted to the removed member would be here by now
    const goneSeqs = seqsIn(gone.events, conversationId);
    assert.ok(goneSeqs.length > 0 && goneSeqs.every((s) => s <= removedAt), `the removed member got nothing after ${removedAt}: ${goneSeqs.join(",")}`);
    assert.ok(goneSeqs.includes(removedAt), "the removed member sees their removal");
    assert.deepEqual([...new Set(seqsIn(late.events, conversationId))].sort((a, b) => a - b), range(joinedAt, last), "the added member got everything from the join on");
    assert.deepEqual([...new Set(seqsIn(stay.events, conversationId))].sort((a, b) => a - b), range(1, last), "a member throughout got everything");
    // The history has the changes in place, and each reader sees only their window.
    const history = (await own.call("getHistory", { conversationId, limit: 100 })).messages;
    assert.deepEqual(history.map((m) => Number(m.seq)), range(1, last));
    assert.equal(kindOf(history[removedAt - 1]), SystemEventKind.MEMBER_REMOVED);
    assert.equal(kindOf(history[joinedAt - 1]), SystemEventKind.MEMBERS_ADDED);
    assert.equal(kindOf(history[0]), SystemEventKind.CREATED);
    assert.equal((await late.call("getHistory", { conversationId, limit: 100 })).messages[0]?.seq, BigInt(joinedAt), "the added member reads from the join on");
    assert.equal(Math.max(...(await gone.call("getHistory", { conversationId, limit: 100 })).messages.map((m) => Number(m.seq))), removedAt, "the removed member reads up to the removal");
    assert.equal(await codeOf(gone.call("sendMessage", { conversationId, clientMsgId: "after", text: "still here?" })), "permission_denied");
    const lateView = (await late.call("listConversations", {})).conversations.find((c) => c.conversationId === conversationId);
    assert.equal(lateView?.unreadCount, BigInt(last - joinedAt + 1), "unread counts only what the added member may read");
    assert.equal((await gone.call("listConversations", {})).conversations.some((c) => c.conversationId === conversationId), false);
  });

  it("role rules hold and the member cap holds under concurrent adds", async () => {
    const [own, adm, mem] = [await open("rown", "phone"), await open("radm", "phone"), await open("rmem", "phone")];
    const { conversation } = await own.call("createGroup", { title: "Rules", memberIds: [user("radm"), user("rmem")] });
    const conversationId = conversation?.conversationId ?? assert.fail("no group");
    await own.call("setMemberRole", { conversationId, userId: user("radm"), role: Role.ADMIN });
    assert.equal(await codeOf(mem.call("addMembers", { conversationId, userIds: [user("x")] })), "permission_denied");
    assert.equal(await codeOf(mem.call("removeMember", { conversationId, userId: user("radm") })), "permission_denied");
    assert.equal(await codeOf(adm.call("removeMember", { conversationId, userId: user("rown") })), "permission_denied");
    assert.equal(await codeOf(own.call("leaveGroup", { conversationId })), "failed_precondition");
    assert.equal(await codeOf(adm.call("deleteGroup", { conversationId })), "permission_denied");
    // 40 adds of 3 users at once into a group of 3 with a cap of 100: 32 fit (99 members), 8 do not.
    const adds = await Promise.all(range(1, 40).map((i) => codeOf((i % 2 === 0 ? own : adm).call("addMembers", { conversationId, userIds: [1, 2, 3].map((k) => user(`cap${i}-${k}`)) }))));
    assert.ok(adds.every((c) => c === "ok" || c === "failed_precondition"), adds.find((c) => c !== "ok" && c !== "failed_precondition"));
    assert.equal(adds.filter((c) => c === "ok").length, 32, "filled up to the cap");
    const members: string[] = [];
    let pageToken = "";
    do {
      const page = await mem.call("listMembers", { conversationId, pageSize: 30, pageToken });
      members.push(...page.members.map((m) => m.userId));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    assert.equal(new Set(members).size, 3 + 32 * 3, "no member beyond the cap");
    await own.call("transferOwnership", { conversationId, newOwnerId: user("radm") });
    await own.call("leaveGroup", { conversationId });
    await adm.call("deleteGroup", { conversationId });
    assert.equal(await codeOf(mem.call("getConversation", { conversationId })), "not_found");
  });

  it("read aggregates count each member's own watermark", async () => {
    const names = ["ra", "rb", "rc", "rd"];
    const own = await open("rsend", "phone");
    const readers = await Promise.all(names.map((n) => open(n, "phone")));
    const { conversation } = await own.call("createGroup", { title: "Reads", memberIds: names.map(user) });
    const conversationId = conversation?.conversationId ?? assert.fail("no group");
    for (let i = 0; i < 3; i++) await own.call("sendMessage", { conversationId, clientMsgId: `r${i}`, text: `read me ${i}` });
    // Seqs 2..4 are the texts. ra reads all, rb up to 3, rc has them delivered, rd nothing.
    const [ra, rb, rc] = readers as [ChatSocket, ChatSocket, ChatSocket, ChatSocket];
    await ra.call("updateReceipt", { conversationId, kind: ReceiptKind.READ, seq: 4n });
    await rb.call("updateReceipt", { conversationId, kind: ReceiptKind.READ, seq: 3n });
    await rc.call("updateReceipt", { conversationId, kind: ReceiptKind.DELIVERED, seq: 4n });
    const at3 = await own.call("getReceipts", { conversationId, seq: 3n });
    assert.deepEqual([at3.recipientCount, at3.deliveredCount, at3.readCount], [4, 3, 2]);
    const at4 = await own.call("getReceipts", { conversationId, seq: 4n });
    assert.deepEqual([at4.recipientCount, at4.deliveredCount, at4.readCount], [4, 2, 1]);
    const readBy = at4.members.filter((m) => m.readSeq >= 4n && m.userId !== user("rsend")).map((m) => m.userId);
    assert.deepEqual(readBy, [user("ra")], "who read message 4 (besides its sender)");
    await own.until((ev) => ev.some((e) => e.kind.case === "receipt" && e.kind.value.watermarks?.userId === user("rb") && e.kind.value.watermarks.readSeq === 3n));
    assert.equal(messagesIn(ra.events, conversationId).length >= 4, true);
  });
});
