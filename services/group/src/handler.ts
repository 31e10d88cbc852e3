// GroupService: conversations, memberships, roles. A group change is begun in the store (checked
// against the group's rules while the conversation is held), recorded in the conversation's
// history as a system message (MessageStoreService.Append, idempotent by the change id), applied
// with that message's seq, then announced as MembershipChanged. A change cut off between the
// steps is finished by `finishPending` (the service runs it periodically), so none is half done.
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { Client, ServiceImpl } from "@connectrpc/connect";
import { Role, SystemEventKind } from "../../../gen/chat/api/v1/enums_pb.js";
import { MemberSchema, SystemEventSchema, type Message } from "../../../gen/chat/api/v1/model_pb.js";
import { ConversationMembersSchema, GetMembershipResponseSchema, type GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import type { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import type { Bus } from "../../../packages/runtime/src/bus/port.js";
import { Code, ConnectError, failedPrecondition, invalidArgument, notFound, unavailable } from "../../../packages/runtime/src/errors.js";
import type { Logger } from "../../../packages/runtime/src/log.js";
import { KeyedSerialQueue } from "../../../packages/runtime/src/serial.js";
import { checkChange, checkDelete, type ChangeSpec } from "./domain/changes.js";
import { decodePageToken, encodePageToken, newChangeId, newConversationId, pageSize } from "./domain/rules.js";
import { publishMembershipChanged } from "./events/produce.js";
import type { GroupStore, MemberRow } from "./store/port.js";

export interface GroupHandlerOptions {
  store: GroupStore;
  bus: Bus;
  /** Where system messages are appended. */
  messages: Client<typeof MessageStoreService>;
  logger: Logger;
  /** Member cap of new groups. */
  maxGroupMembers: number;
  newId?: () => string;
}

/** Members a conversation may have to come whole in a ListMembersOfMany answer (the contract's 1,024). */
const LIST_MANY_MAX_MEMBERS = 1024;

const toMember = (r: MemberRow) => create(MemberSchema, { userId: r.userId, role: r.role, joinedSeq: BigInt(r.joinedSeq), joinedAt: timestampFromDate(r.joinedAt) });

/** A change pending this long is taken over (finished) by the next change of its conversation. */
export const STALE_CHANGE_MS = 10_000;
/** How long a change waits for another change of the same conversation (in another replica) to finish. */
const BUSY_WAIT_MS = 5_000;

/** Failures that mean the message store stored nothing: the change is dropped. Others may have stored it. */
const REFUSALS = new Set([Code.InvalidArgument, Code.NotFound, Code.PermissionDenied, Code.FailedPrecondition, Code.ResourceExhausted]);

export interface GroupHandler extends ServiceImpl<typeof GroupService> {
  /** Finishes the changes left pending (by a crash or an ambiguous failure) for at least `olderThanMs`. */
  finishPending(olderThanMs?: number): Promise<number>;
}

export function createGroupHandler(opts: GroupHandlerOptions): GroupHandler {
  const { store, bus, messages, logger } = opts;
  const newId = opts.newId ?? newConversationId;
  const changes = new KeyedSerialQueue();
  const conversation = async (id: string) => {
    const c = await store.getConversation(id);
    if (c === undefined) throw notFound(`conversation ${id} not found`);
    return c;
  };

  /** Steps 2-4 of a begun change: the system message, the change applied at its seq, the event. */
  async function finish(changeId: string, conversationId: string, spec: ChangeSpec): Promise<Message> {
    let message: Message | undefined;
    try {
      ({ message } = await messages.append({ conversationId, clientMsgId: changeId, content: { case: "system", value: create(SystemEventSchema, spec) } }));
    } catch (err) {
      if (REFUSALS.has(ConnectError.from(err).code)) await store.abandonChange(changeId);
      throw err;
    }
    if (message === undefined) throw new Error("the message store answered an append without its message");
    const seq = Number(message.seq);
    await store.applyChange(changeId, seq);
    await publishMembershipChanged(bus, { conversationId, kind: spec.kind, userIds: spec.userIds, seq: message.seq });
    return message;
  }

  /** Finishes a recorded change unless already applied; `why` is logged (a takeover, a recovery). */
  async function finishRecorded(changeId: string, why?: string): Promise<void> {
    const recorded = await store.getChange(changeId);
    if (recorded === undefined || recorded.appliedSeq !== undefined) return;
    if (why !== undefined) logger.info({ changeId, conversationId: recorded.conversationId }, why);
    await finish(changeId, recorded.conversationId, recorded.spec);
  }

  /** Begins and finishes one change; undefined when it changes nothing. */
  function change(conversationId: string, spec: ChangeSpec): Promise<Message | undefined> {
    return changes.run(conversationId, async () => {
      const deadline = Date.now() + BUSY_WAIT_MS;
      for (;;) {
        const changeId = newChangeId();
        const begun = await store.beginChange(conversationId, changeId, [spec.actorId, ...spec.userIds], (state) => checkChange(state, spec));
        switch (begun.status) {
          case "missing":
            throw notFound(`conversation ${conversationId} not found`);
          case "unchanged":
            return undefined;
          case "begun":
            return finish(changeId, conversationId, begun.change);
          case "busy":
            if (begun.pendingForMs >= STALE_CHANGE_MS) await finishRecorded(begun.pendingChangeId, "taking over a stale group change");
            else if (Date.now() > deadline) throw unavailable("another change of this group is in progress: retry shortly");
            else await new Promise((r) => setTimeout(r, 25));
        }
      }
    });
  }

  const spec = (kind: SystemEventKind, actorId: string, userIds: string[], more: Partial<ChangeSpec> = {}): ChangeSpec => ({ kind, actorId, userIds, title: "", role: Role.UNSPECIFIED, ...more });

  return {
    async finishPending(olderThanMs = STALE_CHANGE_MS) {
      const pending = await store.pendingChanges(olderThanMs);
      for (const p of pending) await changes.run(p.conversationId, () => finishRecorded(p.changeId, "finishing a pending group change"));
      return pending.length;
    },
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
      // The conversation first: its membership_seq is then at most what the members reflect.
      const info = await conversation(req.conversationId);
      const limit = pageSize(req.pageSize, 100, 1024);
      const rows = await store.listMembers(req.conversationId, decodePageToken(req.pageToken), limit);
      const last = rows.at(-1);
      return {
        members: rows.map(toMember),
        nextPageToken: rows.length === limit && last !== undefined ? encodePageToken(last.userId) : "",
        membershipSeq: info.membershipSeq,
      };
    },
    async listMembersOfMany(req) {
      const found = await store.membersOfMany([...new Set(req.conversationIds)], LIST_MANY_MAX_MEMBERS);
      return {
        conversations: found.map(({ conversation, members }) =>
          create(ConversationMembersSchema, {
            conversationId: conversation.conversationId,
            members: (members ?? []).map(toMember),
            membershipSeq: conversation.membershipSeq,
            complete: members !== undefined,
          }),
        ),
      };
    },
    async getUserMemberships(req) {
      const rows = await store.userMemberships(req.userId, [...new Set(req.conversationIds)], req.minMemberCount);
      return { memberships: rows.map((r) => create(GetMembershipResponseSchema, r)) };
    },
    async filterContacts(req) {
      const contacts = new Set(await store.filterContacts(req.userId, [...new Set(req.otherUserIds)]));
      return { contactIds: req.otherUserIds.filter((u) => contacts.has(u)) };
    },
    async listUserConversations(req) {
      const limit = pageSize(req.pageSize, 200, 1000);
      const rows = await store.listUserMemberships(req.userId, decodePageToken(req.pageToken), limit, req.minMemberCount);
      const last = rows.at(-1);
      return {
        memberships: rows.map((r) => create(GetMembershipResponseSchema, r)),
        nextPageToken: rows.length === limit && last !== undefined ? encodePageToken(last.conversation.conversationId) : "",
      };
    },
    async createGroup(req) {
      const memberIds = [...new Set(req.memberIds)].filter((u) => u !== req.creatorId);
      if (memberIds.some((u) => u === "" || u.length > 128)) throw invalidArgument("member_ids: each 1 to 128 characters");
      if (memberIds.length + 1 > opts.maxGroupMembers) {
        throw failedPrecondition(`a group has at most ${opts.maxGroupMembers} members: ${memberIds.length + 1} asked for`);
      }
      const conversationId = newId();
      const made = await store.createGroup({
        conversationId,
        changeId: newChangeId(),
        creatorId: req.creatorId,
        title: req.title,
        memberIds,
        memberLimit: opts.maxGroupMembers,
        createKey: req.clientRequestId,
      });
      const id = made.conversation.conversationId;
      if (made.pendingChangeId !== undefined) {
        const pendingChangeId = made.pendingChangeId;
        await changes.run(id, () => finishRecorded(pendingChangeId));
      }
      return { conversation: await conversation(id) };
    },
    async addMembers(req) {
      return { systemMessage: await change(req.conversationId, spec(SystemEventKind.MEMBERS_ADDED, req.actorId, req.userIds)) };
    },
    async removeMember(req) {
      const kind = req.actorId === req.userId ? SystemEventKind.MEMBER_LEFT : SystemEventKind.MEMBER_REMOVED;
      return { systemMessage: await change(req.conversationId, spec(kind, req.actorId, [req.userId])) };
    },
    async renameGroup(req) {
      return { systemMessage: await change(req.conversationId, spec(SystemEventKind.RENAMED, req.actorId, [], { title: req.title })) };
    },
    async setMemberRole(req) {
      return { systemMessage: await change(req.conversationId, spec(SystemEventKind.ROLE_CHANGED, req.actorId, [req.userId], { role: req.role })) };
    },
    async deleteGroup(req) {
      const members = await changes.run(req.conversationId, () => store.deleteGroup(req.conversationId, req.actorId, (state) => checkDelete(state, req.actorId)));
      if (members === undefined) throw notFound(`conversation ${req.conversationId} not found`);
      await publishMembershipChanged(bus, { conversationId: req.conversationId, userIds: members, deleted: true });
      return {};
    },
  };
}
