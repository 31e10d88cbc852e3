// The group service through its RPC surface (in-memory transport), wired to a real message store
// on the embedded drivers (PGlite, memory bus): error codes, paging, group changes recorded as
// system messages with their seqs, the member cap under concurrent adds, pending changes finished.
import { createClient, createRouterTransport, Code, ConnectError, type Client } from "@connectrpc/connect";
import { fromBinary } from "@bufbuild/protobuf";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Role, SystemEventKind } from "../../../gen/chat/api/v1/enums_pb.js";
import { MembershipChangedSchema } from "../../../gen/chat/events/v1/events_pb.js";
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import { createMemoryBus } from "../../../packages/runtime/src/bus/memory.js";
import { namespaced } from "../../../packages/runtime/src/bus/namespace.js";
import type { BusRecord } from "../../../packages/runtime/src/bus/port.js";
import { createLogger } from "../../../packages/runtime/src/log.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { openPglite } from "../../../packages/runtime/src/sql/pglite.js";
import { topics, topicSpecs } from "../../../packages/runtime/src/topics.js";
import { validationInterceptor } from "../../../packages/runtime/src/validation.js";
import { createMessageStoreHandler } from "../../message-store/src/handler.js";
import { routes as messageStoreRoutes } from "../../message-store/src/routes.js";
import { createEmbeddedMessageStore } from "../../message-store/src/store/embedded.js";
import { sqlMigrations } from "../../message-store/src/store/migrations.js";
import { checkChange, type ChangeSpec } from "../src/domain/changes.js";
import { createGroupHandler, type GroupHandler } from "../src/handler.js";
import { routes } from "../src/routes.js";
import { migrations } from "../src/store/migrations.js";
import { createSqlGroupStore } from "../src/store/sql.js";
import { MembersLoader } from "../../../packages/runtime/src/members.js";

/** An object whose properties are read from `get()` when used: two services that call each other. */
const late = <T extends object>(get: () => T): T => new Proxy({} as T, { get: (_t, key) => Reflect.get(get(), key) as unknown });

let meshes = 0;

async function mesh(maxGroupMembers = 1024) {
  const bus = namespaced(createMemoryBus(), `group-handler-${meshes++}.`);
  await bus.ensureTopics(topicSpecs(2));
  const events: BusRecord[] = [];
  await bus.subscribe({ groupId: "test", topics: [topics.membershipChanged.name], handle: async (r) => void events.push(...r) });
  const groupSql = await openPglite(undefined);
  await migrateSql(groupSql, "group", migrations);
  const messageSql = await openPglite(undefined);
  await migrateSql(messageSql, "message-store", sqlMigrations);
  const options = { router: { interceptors: [validationInterceptor] } };
  const wired: { group?: Client<typeof GroupService> } = {};
  const messages = createClient(
    MessageStoreService,
    createRouterTransport(messageStoreRoutes(createMessageStoreHandler({ store: createEmbeddedMessageStore(messageSql), bus, group: late(() => wired.group ?? assert.fail("not wired")) })), options),
  );
  const store = createSqlGroupStore(groupSql);
  const handler: GroupHandler = createGroupHandler({ store, bus, messages, logger: createLogger("group-test"), maxGroupMembers });
  const group = createClient(GroupService, createRouterTransport(routes(handler), options));
  wired.group = group;
  return { group, messages, handler, events, store };
}

const code = async (p: Promise<unknown>): Promise<Code | undefined> => {
  try {
    await p;
    return undefined;
  } catch (err) {
    return ConnectError.from(err).code;
  }
};

describe("GroupService", () => {
  it("answers direct conversations, memberships and member pages", async () => {
    const { group } = await mesh();
    const { conversation } = await group.getOrCreateDirectConversation({ userId: "ann", peerId: "bob" });
    const id = conversation?.conversationId ?? assert.fail("no conversation");
    const page1 = await group.listMembers({ conversationId: id, pageSize: 1 });
    const page2 = await group.listMembers({ conversationId: id, pageSize: 1, pageToken: page1.nextPageToken });
    assert.deepEqual([...page1.members, ...page2.members].map((m) => m.userId), ["ann", "bob"]);
    assert.equal((await group.getMembership({ conversationId: id, userId: "bob" })).membership?.member, true);
    assert.equal((await group.listUserConversations({ userId: "ann" })).memberships.length, 1);
  });

  it("lists the members of many conversations in one call; a loader gathers the reads of one turn into one such call", async () => {
    const { group } = await mesh(1100);
    const ids: string[] = [];
    for (const peer of ["b1", "b2", "b3"]) ids.push((await group.getOrCreateDirectConversation({ userId: "ann", peerId: peer })).conversation?.conversationId ?? assert.fail("no conversation"));
    const r = await group.listMembersOfMany({ conversationIds: [...ids, "c_nope", ids[0] ?? ""] });
    const got = new Map(r.conversations.map((c) => [c.conversationId, [c.members.map((m) => m.userId), c.complete]]));
    assert.deepEqual(got, new Map(ids.map((id, i) => [id, [["ann", `b${i + 1}`], true]])), "each found conversation once, whole; the unknown one left out");
    assert.equal(await code(group.listMembersOfMany({ conversationIds: [] })), Code.InvalidArgument);
    assert.equal(await code(group.listMembersOfMany({ conversationIds: Array.from({ length: 257 }, (_, i) => `c_${i}`) })), Code.InvalidArgument);

    const calls = { many: 0, pages: 0 };
    const counted = new Proxy(group, {
      get: (target, key, receiver) => {
        if (key === "listMembersOfMany") calls.many++;
        if (key === "listMembers") calls.pages++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    const loader = new MembersLoader(counted);
    const lists = await Promise.all(ids.map((id) => loader.load(id)));
    assert.deepEqual(lists.map((l) => l.members.map((m) => m.userId)), ids.map((_, i) => ["ann", `b${i + 1}`]));
    assert.deepEqual(calls, { many: 1, pages: 0 }, "three conversations, one call");
    assert.equal(await code(loader.load("c_nope")), Code.NotFound);
    // A group over 1,024 members comes without them, and is paged.
    const { conversation } = await group.createGroup({ creatorId: "own", title: "Big", memberIds: Array.from({ length: 1000 }, (_, i) => `m${i}`), clientRequestId: "big" });
    const bigId = conversation?.conversationId ?? assert.fail("no group");
    await group.addMembers({ actorId: "own", conversationId: bigId, userIds: Array.from({ length: 40 }, (_, i) => `n${i}`) });
    const big = await loader.load(bigId);
    assert.equal(big.members.length, 1041);
    assert.equal(calls.pages, 2, "paged with ListMembers");
    // A group service that does not know ListMembersOfMany yet (a rolling upgrade): one list at a time.
    const older = new Proxy(group, {
      get: (target, key, receiver) =>
        key === "listMembersOfMany" ? () => Promise.reject(new ConnectError("unknown method", Code.Unimplemented)) : (Reflect.get(target, key, receiver) as unknown),
    });
    const fallback = new MembersLoader(older);
    assert.deepEqual((await Promise.all(ids.map((id) => fallback.load(id)))).map((l) => l.members.map((m) => m.userId)), ids.map((_, i) => ["ann", `b${i + 1}`]));
    assert.equal(await code(fallback.load("c_nope")), Code.NotFound);
  });

  it("refuses with precise codes", async () => {
    const { group } = await mesh();
    const { conversation } = await group.getOrCreateDirectConversation({ userId: "ann", peerId: "bob" });
    const id = conversation?.conversationId ?? "";
    assert.equal(await code(group.getOrCreateDirectConversation({ userId: "ann", peerId: "ann" })), Code.InvalidArgument);
    assert.equal(await code(group.getOrCreateDirectConversation({ userId: "", peerId: "bob" })), Code.InvalidArgument);
    assert.equal(await code(group.getConversation({ conversationId: "c_nope" })), Code.NotFound);
    assert.equal(await code(group.getMembership({ conversationId: id, userId: "eve" })), Code.NotFound);
    assert.equal(await code(group.addMembers({ actorId: "ann", conversationId: id, userIds: ["eve"] })), Code.FailedPrecondition, "a direct conversation has no group changes");
    assert.equal(await code(group.addMembers({ actorId: "ann", conversationId: "c_nope", userIds: ["eve"] })), Code.NotFound);
  });

  it("records every change as a system message with its own seq and moves memberships at that seq", async () => {
    const { group, messages, events } = await mesh();
    const { conversation } = await group.createGroup({ creatorId: "own", title: "Team", memberIds: ["adm", "mem"], clientRequestId: "r1" });
    const id = conversation?.conversationId ?? assert.fail("no group");
    assert.deepEqual([conversation?.memberCount, conversation?.membershipSeq, conversation?.title], [3, 1n, "Team"]);
    const again = await group.createGroup({ creatorId: "own", title: "Team", memberIds: ["adm", "mem"], clientRequestId: "r1" });
    assert.equal(again.conversation?.conversationId, id, "a retried create returns the same group");

    const promoted = await group.setMemberRole({ actorId: "own", conversationId: id, userId: "adm", role: Role.ADMIN });
    const added = await group.addMembers({ actorId: "adm", conversationId: id, userIds: ["new", "mem"] });
    const event = added.systemMessage?.content.case === "system" ? added.systemMessage.content.value : assert.fail("no system event");
    assert.deepEqual([event.kind, event.actorId, event.userIds], [SystemEventKind.MEMBERS_ADDED, "adm", ["new"]], "existing members are not added again");
    const renamed = await group.renameGroup({ actorId: "adm", conversationId: id, title: "Team 2" });
    const removed = await group.removeMember({ actorId: "adm", conversationId: id, userId: "mem" });
    const left = await group.removeMember({ actorId: "new", conversationId: id, userId: "new" });
    const seqs = [promoted, added, renamed, removed, left].map((r) => Number(r.systemMessage?.seq));
    assert.deepEqual(seqs, [2, 3, 4, 5, 6]);
    assert.equal(left.systemMessage?.content.case === "system" && left.systemMessage.content.value.kind, SystemEventKind.MEMBER_LEFT);

    const history = await messages.getHistory({ conversationId: id, userId: "own", limit: 10 });
    assert.deepEqual(history.messages.map((m) => (m.content.case === "system" ? m.content.value.kind : 0)), [
      SystemEventKind.CREATED,
      SystemEventKind.ROLE_CHANGED,
      SystemEventKind.MEMBERS_ADDED,
      SystemEventKind.RENAMED,
      SystemEventKind.MEMBER_REMOVED,
      SystemEventKind.MEMBER_LEFT,
    ]);
    const joined = (await group.getMembership({ conversationId: id, userId: "new" })).membership;
    assert.deepEqual([joined?.member, joined?.visibleFromSeq, joined?.removedAtSeq], [false, 2n, 6n], "reads from its join message (3) to its leaving (6)");
    const gone = (await group.getMembership({ conversationId: id, userId: "mem" })).membership;
    assert.deepEqual([gone?.member, gone?.removedAtSeq], [false, 5n]);
    const info = await group.getConversation({ conversationId: id });
    assert.deepEqual([info.conversation?.title, info.conversation?.memberCount, info.conversation?.membershipSeq], ["Team 2", 2, 6n]);
    const listed = await group.listMembers({ conversationId: id });
    assert.deepEqual(listed.members.map((m) => [m.userId, m.role, Number(m.joinedSeq)]), [["adm", Role.ADMIN, 1], ["own", Role.OWNER, 1]]);
    assert.equal(listed.membershipSeq, 6n);
    assert.equal(await code(messages.append({ conversationId: id, senderId: "mem", clientMsgId: "x", content: { case: "text", value: "still here?" } })), Code.PermissionDenied);
    await new Promise((r) => setTimeout(r, 50));
    const announced = events.map((e) => fromBinary(MembershipChangedSchema, e.value)).filter((e) => e.conversationId === id);
    assert.deepEqual(announced.map((e) => Number(e.seq)), [1, 2, 3, 4, 5, 6]);
  });

  it("holds the role rules", async () => {
    const { group } = await mesh();
    const { conversation } = await group.createGroup({ creatorId: "own", title: "Rules", memberIds: ["adm", "mem", "oth"] });
    const id = conversation?.conversationId ?? "";
    await group.setMemberRole({ actorId: "own", conversationId: id, userId: "adm", role: Role.ADMIN });
    assert.equal(await code(group.addMembers({ actorId: "mem", conversationId: id, userIds: ["x"] })), Code.PermissionDenied, "a member cannot add");
    assert.equal(await code(group.removeMember({ actorId: "mem", conversationId: id, userId: "oth" })), Code.PermissionDenied, "a member cannot remove");
    assert.equal(await code(group.removeMember({ actorId: "adm", conversationId: id, userId: "own" })), Code.PermissionDenied, "an admin cannot remove the owner");
    assert.equal(await code(group.setMemberRole({ actorId: "adm", conversationId: id, userId: "mem", role: Role.ADMIN })), Code.PermissionDenied, "only the owner changes roles");
    assert.equal(await code(group.removeMember({ actorId: "own", conversationId: id, userId: "own" })), Code.FailedPrecondition, "the owner cannot just leave");
    assert.equal(await code(group.addMembers({ actorId: "stranger", conversationId: id, userIds: ["x"] })), Code.PermissionDenied);
    assert.equal(await code(group.deleteGroup({ actorId: "adm", conversationId: id })), Code.PermissionDenied, "only the owner deletes");
    await group.setMemberRole({ actorId: "own", conversationId: id, userId: "mem", role: Role.OWNER });
    const roles = new Map((await group.listMembers({ conversationId: id })).members.map((m) => [m.userId, m.role]));
    assert.deepEqual([roles.get("mem"), roles.get("own")], [Role.OWNER, Role.ADMIN], "ownership transferred, the old owner an admin");
    await group.removeMember({ actorId: "own", conversationId: id, userId: "own" });
    await group.deleteGroup({ actorId: "mem", conversationId: id });
    assert.equal(await code(group.getConversation({ conversationId: id })), Code.NotFound);
  });

  it("keeps the member cap under concurrent adds", async () => {
    const { group } = await mesh(10);
    assert.equal(await code(group.createGroup({ creatorId: "own", title: "Too big", memberIds: Array.from({ length: 10 }, (_, i) => `u${i}`) })), Code.FailedPrecondition);
    const { conversation } = await group.createGroup({ creatorId: "own", title: "Capped", memberIds: [] });
    const id = conversation?.conversationId ?? "";
    const results = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => group.addMembers({ actorId: "own", conversationId: id, userIds: [`u${i}`] })));
    assert.equal(results.filter((r) => r.status === "fulfilled").length, 9);
    assert.ok(results.every((r) => r.status === "fulfilled" || ConnectError.from(r.reason).code === Code.FailedPrecondition));
    assert.equal((await group.getConversation({ conversationId: id })).conversation?.memberCount, 10);
    assert.equal((await group.listMembers({ conversationId: id })).members.length, 10);
  });

  it("finishes changes a crash left pending, each exactly once", async () => {
    const { group, handler, messages, store } = await mesh();
    const { conversation } = await group.createGroup({ creatorId: "own", title: "Crash", memberIds: [] });
    const id = conversation?.conversationId ?? "";
    const add = (userId: string): ChangeSpec => ({ kind: SystemEventKind.MEMBERS_ADDED, actorId: "own", userIds: [userId], title: "", role: Role.UNSPECIFIED });
    // Crash after the system message was stored, before the change was applied.
    assert.equal((await store.beginChange(id, "chg_stored", ["own", "late"], (s) => checkChange(s, add("late")))).status, "begun");
    await messages.append({ conversationId: id, clientMsgId: "chg_stored", content: { case: "system", value: add("late") } });
    const busy = await store.beginChange(id, "chg_other", ["own", "x"], (s) => checkChange(s, add("x")));
    assert.equal(busy.status, "busy", "the conversation is held until the pending change is finished");
    assert.equal(await handler.finishPending(0), 1);
    // Crash right after begin: nothing stored yet.
    assert.equal((await store.beginChange(id, "chg_begun", ["own", "later"], (s) => checkChange(s, add("later")))).status, "begun");
    assert.equal(await handler.finishPending(0), 1);
    assert.equal(await handler.finishPending(0), 0);
    const history = await messages.getHistory({ conversationId: id, userId: "own", limit: 10 });
    assert.deepEqual(history.messages.map((m) => Number(m.seq)), [1, 2, 3], "one system message per change");
    const late = (await group.getMembership({ conversationId: id, userId: "late" })).membership;
    const later = (await group.getMembership({ conversationId: id, userId: "later" })).membership;
    assert.deepEqual([late?.member, late?.visibleFromSeq, later?.member, later?.visibleFromSeq], [true, 1n, true, 2n]);
    assert.equal((await group.addMembers({ actorId: "own", conversationId: id, userIds: ["next"] })).systemMessage?.seq, 4n, "the conversation is free again");
  });
});
