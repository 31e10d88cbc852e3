// The group service through its RPC surface (in-memory transport, embedded store): error codes
// and paging as a caller sees them.
import { createClient, createRouterTransport, Code, ConnectError } from "@connectrpc/connect";
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { migrateSql } from "../../../packages/runtime/src/sql/migrate.js";
import { openPglite } from "../../../packages/runtime/src/sql/pglite.js";
import { validationInterceptor } from "../../../packages/runtime/src/validation.js";
import { createGroupHandler } from "../src/handler.js";
import { routes } from "../src/routes.js";
import { migrations } from "../src/store/migrations.js";
import { createSqlGroupStore } from "../src/store/sql.js";

async function client() {
  const sql = await openPglite(undefined);
  await migrateSql(sql, "group", migrations);
  const handler = createGroupHandler({ store: createSqlGroupStore(sql), maxGroupMembers: 1024 });
  return createClient(GroupService, createRouterTransport(routes(handler), { router: { interceptors: [validationInterceptor] } }));
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
    const group = await client();
    const { conversation } = await group.getOrCreateDirectConversation({ userId: "ann", peerId: "bob" });
    const id = conversation?.conversationId ?? assert.fail("no conversation");
    const page1 = await group.listMembers({ conversationId: id, pageSize: 1 });
    const page2 = await group.listMembers({ conversationId: id, pageSize: 1, pageToken: page1.nextPageToken });
    assert.deepEqual([...page1.members, ...page2.members].map((m) => m.userId), ["ann", "bob"]);
    assert.equal((await group.getMembership({ conversationId: id, userId: "bob" })).membership?.member, true);
    assert.equal((await group.listUserConversations({ userId: "ann" })).memberships.length, 1);
  });

  it("refuses with precise codes", async () => {
    const group = await client();
    const { conversation } = await group.getOrCreateDirectConversation({ userId: "ann", peerId: "bob" });
    const id = conversation?.conversationId ?? "";
    assert.equal(await code(group.getOrCreateDirectConversation({ userId: "ann", peerId: "ann" })), Code.InvalidArgument);
    assert.equal(await code(group.getOrCreateDirectConversation({ userId: "", peerId: "bob" })), Code.InvalidArgument);
    assert.equal(await code(group.getConversation({ conversationId: "c_nope" })), Code.NotFound);
    assert.equal(await code(group.getMembership({ conversationId: id, userId: "eve" })), Code.NotFound);
    assert.equal(await code(group.createGroup({ creatorId: "ann", title: "t" })), Code.Unimplemented);
  });
});
