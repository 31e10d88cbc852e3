// GroupService: conversations and memberships. Group mutations record system messages in the
// conversation's history, which arrives with issue #4; until then they answer UNIMPLEMENTED.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { ServiceImpl } from "@connectrpc/connect";
import { MemberSchema } from "../../../gen/chat/api/v1/model_pb.js";
import { GetMembershipResponseSchema, type GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { invalidArgument, notFound, unimplemented } from "../../../packages/runtime/src/errors.js";
import { decodePageToken, encodePageToken, newConversationId, pageSize } from "./domain/rules.js";
import type { GroupStore } from "./store/port.js";

export interface GroupHandlerOptions {
  store: GroupStore;
  /** Member cap of new groups (issue #4 enforces it). */
  maxGroupMembers: number;
  newId?: () => string;
}

export function createGroupHandler(opts: GroupHandlerOptions): ServiceImpl<typeof GroupService> {
  const { store } = opts;
  const newId = opts.newId ?? newConversationId;
  const conversation = async (id: string) => {
    const c = await store.getConversation(id);
    if (c === undefined) throw notFound(`conversation ${id} not found`);
    return c;
  };
  return {
    async getOrCreateDirectConversation(req) {
      if (req.userId === req.peerId) throw invalidArgument("peer_id: cannot open a direct conversation with yourself");
      return store.getOrCreateDirect(req.userId, req.peerId, newId());
    },
    async getConversation(req) {
      return { conversation: await conversation(req.conversationId) };
    },
    async getMembership(req) {
      const info = await conversation(req.conversationId);
      const membership = await store.getMembership(req.conversationId, req.userId);
      if (membership === undefined) throw notFound(`${req.userId} was never a member of ${req.conversationId}`);
      return { membership, conversation: info };
    },
    async listMembers(req) {
      await conversation(req.conversationId);
      const limit = pageSize(req.pageSize, 100, 1024);
      const rows = await store.listMembers(req.conversationId, decodePageToken(req.pageToken), limit);
      const last = rows.at(-1);
      return {
        members: rows.map((r) => create(MemberSchema, { userId: r.userId, role: r.role, joinedSeq: BigInt(r.joinedSeq), joinedAt: timestampFromDate(r.joinedAt) })),
        nextPageToken: rows.length === limit && last !== undefined ? encodePageToken(last.userId) : "",
      };
    },
    async listUserConversations(req) {
      const limit = pageSize(req.pageSize, 200, 1000);
      const rows = await store.listUserMemberships(req.userId, decodePageToken(req.pageToken), limit);
      const last = rows.at(-1);
      return {
        memberships: rows.map((r) => create(GetMembershipResponseSchema, r)),
        nextPageToken: rows.length === limit && last !== undefined ? encodePageToken(last.conversation.conversationId) : "",
      };
    },
    createGroup() {
      throw unimplemented("GroupService.CreateGroup", "issue #4");
    },
    addMembers() {
      throw unimplemented("GroupService.AddMembers", "issue #4");
    },
    removeMember() {
      throw unimplemented("GroupService.RemoveMember", "issue #4");
    },
    renameGroup() {
      throw unimplemented("GroupService.RenameGroup", "issue #4");
    },
    setMemberRole() {
      throw unimplemented("GroupService.SetMemberRole", "issue #4");
    },
    deleteGroup() {
      throw unimplemented("GroupService.DeleteGroup", "issue #4");
    },
  };
}
