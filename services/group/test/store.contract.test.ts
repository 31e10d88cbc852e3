// One contract for the group store, run against both drivers: PGlite (also reopened, to prove it
// persists) and real PostgreSQL.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import { ConversationType, Role, SystemEventKind } from "../../../gen/chat/api/v1/enums_pb.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import type { Sql } from "../../../packages/runtime/src/sql/port.js";
import { sqlDrivers } from "../../../tests/support/sql.js";
import { checkChange } from "../src/domain/changes.js";
import { newConversationId } from "../src/domain/rules.js";
import { migrations } from "../src/store/migrations.js";
import { createSqlGroupStore } from "../src/store/sql.js";

for (const driver of sqlDrivers("group-contract")) {
  describe(`group store contract: ${driver.name}`, () => {
    const run = randomBytes(4).toString("hex");
    const u = (name: string) => `${name}-${run}`;
    const open = async () => {
      const sql: Sql = await driver.open();
      await migrateSql(sql, "group", migrations);
      return createSqlGroupStore(sql);
    };

    it("creates one direct conversation per pair, whichever side asks, even concurrently", async () => {
      const store = await open();
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store.getOrCreateDirect(u("ann"), u("ben"), newConversationId()) : store.getOrCreateDirect(u("ben"), u("ann"), newConversationId()))),
      );
      const ids = new Set(results.map((r) => r.conversation.conversationId));
      assert.equal(ids.size, 1);
      assert.equal(results.filter((r) => r.created).length, 1);
      const [id] = ids;
      const c = await store.getConversation(id);
      assert.deepEqual([c?.type, c?.memberCount], [ConversationType.DIRECT, 2]);
      await store.close();
    });

    it("knows memberships, lists members and a user's conversations in pages", async () => {
      const store = await open();
      const a = await store.getOrCreateDirect(u("cat"), u("dan"), newConversationId());
      const b = await store.getOrCreateDirect(u("cat"), u("eve"), newConversationId());
      const id = a.conversation.conversationId;
      const m = await store.getMembership(id, u("dan"));
      assert.deepEqual([m?.member, m?.role, m?.visibleFromSeq], [true, Role.MEMBER, 0n]);
      assert.equal(await store.getMembership(id, u("eve")), undefined);
      assert.deepEqual((await store.listMembers(id, "", 10)).map((r) => r.userId), [u("cat"), u("dan")]);
      assert.deepEqual((await store.listMembers(id, u("cat"), 10)).map((r) => r.userId), [u("dan")]);
      const page1 = await store.listUserMemberships(u("cat"), "", 1);
      const page2 = await store.listUserMemberships(u("cat"), page1[0]?.conversation.conversationId ?? "", 10);
      assert.deepEqual(
        [...page1, ...page2].map((r) => r.conversation.conversationId).sort(),
        [a.conversation.conversationId, b.conversation.conversationId].sort(),
      );
      assert.equal(await store.getConversation("c_missing"), undefined);
      await store.close();
    });

    it("lists the members of several conversations at once, leaving out unknown ones and the members of those over the limit", async () => {
      const store = await open();
      const a = await store.getOrCreateDirect(u("fay"), u("gus"), newConversationId());
      const b = await store.getOrCreateDirect(u("fay"), u("hal"), newConversationId());
      const ids = [a.conversation.conversationId, b.conversation.conversationId];
      const many = await store.membersOfMany([...ids, "c_missing"], 10);
      const byId = new Map(many.map((c) => [c.conversation.conversationId, c.members?.map((m) => m.userId)]));
      assert.deepEqual(byId, new Map([[ids[0], [u("fay"), u("gus")]], [ids[1], [u("fay"), u("hal")]]]));
      assert.deepEqual((await store.membersOfMany(ids, 1)).map((c) => [c.conversation.memberCount, c.members]), [[2, undefined], [2, undefined]], "over the limit: the conversation without its members");
      await store.close();
    });

    it("keeps its data across a reopen", async () => {
      const first = await open();
      const made = await first.getOrCreateDirect(u("fay"), u("gus"), newConversationId());
      await first.close();
      const second = await open();
      const again = await second.getOrCreateDirect(u("gus"), u("fay"), newConversationId());
      assert.deepEqual([again.created, again.conversation.conversationId], [false, made.conversation.conversationId]);
      await second.close();
    });

    it("finds the users who share a conversation with a user, as current members", async () => {
      const store = await open();
      await store.getOrCreateDirect(u("kai"), u("lia"), newConversationId());
      const g = { conversationId: newConversationId(), changeId: `chg_${run}fc`, creatorId: u("kai"), title: "G", memberIds: [u("max")], memberLimit: 8, createKey: "" };
      await store.createGroup(g);
      await store.applyChange(g.changeId, 1);
      assert.deepEqual((await store.filterContacts(u("kai"), [u("lia"), u("max"), u("ned")])).sort(), [u("lia"), u("max")].sort());
      assert.deepEqual(await store.filterContacts(u("lia"), [u("max")]), [], "no shared conversation");
      await store.deleteGroup(g.conversationId, u("kai"), () => undefined);
      assert.deepEqual(await store.filterContacts(u("kai"), [u("max")]), [], "not after the group is gone");
      assert.deepEqual(await store.filterContacts(u("kai"), []), []);
      // The memberships a Sync asks for: those named (current or past), and every large one; deleted groups left out.
      const direct = (await store.getOrCreateDirect(u("kai"), u("lia"), newConversationId())).conversation.conversationId;
      const big = { conversationId: newConversationId(), changeId: `chg_${run}fd`, creatorId: u("ned"), title: "B", memberIds: [u("kai"), u("oli")], memberLimit: 8, createKey: "" };
      await store.createGroup(big);
      await store.applyChange(big.changeId, 1);
      const ids = (rows: { conversation: { conversationId: string } }[]) => rows.map((r) => r.conversation.conversationId).sort();
      assert.deepEqual(ids(await store.userMemberships(u("kai"), [direct, g.conversationId, "c_missing"], 0)), [direct], "named, the deleted group and an unknown id left out");
      assert.deepEqual(ids(await store.userMemberships(u("kai"), [direct], 3)), [direct, big.conversationId].sort(), "plus the groups of 3 or more");
      assert.deepEqual(ids(await store.userMemberships(u("kai"), [], 4)), []);
      assert.equal((await store.userMemberships(u("kai"), [direct], 0))[0]?.membership.member, true);
      await store.close();
    });

    it("creates groups once per key, runs one change at a time, applies at a seq, abandons cleanly", async () => {
      const store = await open();
      const g = { conversationId: newConversationId(), changeId: `chg_${run}a`, creatorId: u("own"), title: "G", memberIds: [u("m1")], memberLimit: 3, createKey: `k-${run}` };
      const made = await store.createGroup(g);
      const again = await store.createGroup({ ...g, conversationId: newConversationId(), changeId: `chg_${run}b` });
      assert.deepEqual([made.created, again.created, again.conversation.conversationId, again.pendingChangeId], [true, false, g.conversationId, g.changeId]);
      const id = g.conversationId;
      assert.equal((await store.beginChange(id, `chg_${run}c`, [], () => undefined)).status, "busy", "held by the pending CREATED change");
      await store.applyChange(g.changeId, 1);
      await store.applyChange(g.changeId, 1); // idempotent
      const add = (users: string[]) => ({ kind: SystemEventKind.MEMBERS_ADDED, actorId: u("own"), userIds: users, title: "", role: Role.UNSPECIFIED });
      const begun = await store.beginChange(id, `chg_${run}d`, [u("own"), u("m2")], (state) => checkChange(state, add([u("m2")])));
      assert.equal(begun.status, "begun");
      assert.equal((await store.beginChange(id, `chg_${run}e`, [], () => undefined)).status, "busy");
      await store.applyChange(`chg_${run}d`, 2);
      const m2 = await store.getMembership(id, u("m2"));
      assert.deepEqual([m2?.member, m2?.visibleFromSeq], [true, 1n]);
      assert.deepEqual([(await store.getConversation(id))?.memberCount, (await store.getConversation(id))?.membershipSeq], [3, 2n]);
      assert.throws(() => checkChange({ type: ConversationType.GROUP, title: "G", memberCount: 3, memberLimit: 3, roles: new Map([[u("own"), Role.OWNER]]) }, add([u("m3")])), /limit of 3/);
      await store.beginChange(id, `chg_${run}f`, [u("own"), u("m2")], (state) => checkChange(state, { ...add([u("m2")]), kind: SystemEventKind.MEMBER_REMOVED }));
      assert.equal((await store.pendingChanges(0)).some((c) => c.changeId === `chg_${run}f`), true);
      await store.abandonChange(`chg_${run}f`);
      assert.equal(await store.getChange(`chg_${run}f`), undefined);
      assert.equal((await store.beginChange(id, `chg_${run}g`, [], () => undefined)).status, "unchanged", "free again after abandoning");
      assert.deepEqual(await store.deleteGroup(id, u("own"), () => undefined).then((m) => m?.sort()), [u("m1"), u("m2"), u("own")].sort());
      assert.equal(await store.getConversation(id), undefined);
      await store.close();
    });
  });
}
