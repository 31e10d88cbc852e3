// The public API's operations, one per ChatService unary method, as the authenticated caller.
// Both faces of the edge run these same functions: Connect/gRPC calls (api/connect.ts) and
// WebSocket frames (api/websocket.ts). Each forwards to the service that owns the data.
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { Client, ServiceImpl } from "@connectrpc/connect";
import type { ChatService } from "../../../../gen/chat/api/v1/api_pb.js";
import { Role } from "../../../../gen/chat/api/v1/enums_pb.js";
import type { Conversation, Message } from "../../../../gen/chat/api/v1/model_pb.js";
import type { ConnectionService } from "../../../../gen/chat/connection/v1/connection_pb.js";
import type { GroupService } from "../../../../gen/chat/group/v1/group_pb.js";
import type { MessageStoreService } from "../../../../gen/chat/messagestore/v1/messagestore_pb.js";
import type { PresenceService } from "../../../../gen/chat/presence/v1/presence_pb.js";
import type { PushService } from "../../../../gen/chat/push/v1/push_pb.js";
import { appendManyBatcher } from "../../../../packages/runtime/src/append-many.js";
import { currentMembership } from "../../../../packages/runtime/src/members.js";
import { injectTraceHeaders } from "../../../../packages/runtime/src/telemetry/propagation.js";
import { conversationView } from "../domain/views.js";
import type { Caller } from "./caller.js";

type Impl = ServiceImpl<typeof ChatService>;
export type UnaryMethod = Exclude<keyof Impl, "subscribe">;
export type Operations = { [K in UnaryMethod]: (caller: Caller, req: Parameters<Impl[K]>[0]) => ReturnType<Impl[K]> };

export interface Peers {
  group: Client<typeof GroupService>;
  messageStore: Client<typeof MessageStoreService>;
  connection: Client<typeof ConnectionService>;
  presence: Client<typeof PresenceService>;
  push: Client<typeof PushService>;
}

const MAX_LISTED = 1000;
/** How long a Sync may wait for its turn and run. */
const SYNC_TIMEOUT_MS = 60_000;

/** The answer of a membership change: the system message that records it. */
const systemMessage = (r: { systemMessage?: Message | undefined }) => (r.systemMessage === undefined ? {} : { systemMessage: r.systemMessage });

/** Sends per AppendMany call at most. */
const MAX_APPENDS_PER_CALL = 100;
/** AppendMany calls in flight at once by default (EDGE_APPEND_CALLS_IN_FLIGHT). */
export const DEFAULT_APPEND_CALLS_IN_FLIGHT = 2;
/** Sends waiting for a call at most; past it a send is refused at once (ResourceExhausted, retry hint). */
const MAX_WAITING_APPENDS = 1024;

export function createOperations({ group, messageStore, connection, presence, push }: Peers, appendCallsInFlight = DEFAULT_APPEND_CALLS_IN_FLIGHT): Operations {
  // Every client's sends that arrive in one turn of the event loop go to the message store in one
  // AppendMany call (a call costs both processes far more than the message in it), each with its
  // own trace, each answered on its own. At most `appendCallsInFlight` calls at once: the sends
  // that arrive meanwhile wait for one to finish and go together in the next call, so under load
  // the calls grow instead of multiplying; when the store falls behind, sends past
  // MAX_WAITING_APPENDS are refused at once (the client retries with the same client_msg_id).
  const appends = appendManyBatcher(messageStore, { maxPerCall: MAX_APPENDS_PER_CALL, callsInFlight: appendCallsInFlight, maxWaiting: MAX_WAITING_APPENDS });

  /** The caller's view of one conversation; PermissionDenied when not a member, NotFound when it does not exist. */
  async function view(caller: Caller, conversationId: string, peerId = ""): Promise<Conversation> {
    const { membership, conversation } = await currentMembership(group, conversationId, caller.userId);
    const states = await messageStore.getConversationStates({ userId: caller.userId, conversationIds: [conversationId] });
    return conversationView(conversation, membership, states.states[0], peerId);
  }

  const activity = (c: Conversation) => Number(c.lastMessage?.serverTime?.seconds ?? c.createdAt?.seconds ?? 0n);

  return {
    async getOrCreateDirectConversation(caller, req) {
      const r = await group.getOrCreateDirectConversation({ userId: caller.userId, peerId: req.peerId });
      return { conversation: await view(caller, r.conversation?.conversationId ?? "", req.peerId), created: r.created };
    },
    async getConversation(caller, req) {
      return { conversation: await view(caller, req.conversationId) };
    },
    async listConversations(caller, req) {
      const memberships = (await group.listUserConversations({ userId: caller.userId, pageSize: MAX_LISTED })).memberships;
      const ids = memberships.map((m) => m.conversation?.conversationId ?? "");
      const states = new Map((await messageStore.getConversationStates({ userId: caller.userId, conversationIds: ids })).states.map((s) => [s.conversationId, s]));
      const all = memberships
        .filter((m) => m.conversation !== undefined)
        .map((m) => conversationView(m.conversation as NonNullable<typeof m.conversation>, m.membership, states.get(m.conversation?.conversationId ?? "")))
        .sort((a, b) => activity(b) - activity(a) || a.conversationId.localeCompare(b.conversationId));
      const offset = req.pageToken === "" ? 0 : Number.parseInt(req.pageToken, 10) || 0;
      const size = req.pageSize || 50;
      return { conversations: all.slice(offset, offset + size), nextPageToken: offset + size < all.length ? String(offset + size) : "" };
    },
    sendMessage: async (caller, req) => {
      const r = await appends.run({
        append: {
          conversationId: req.conversationId,
          senderId: caller.userId,
          senderDeviceId: caller.deviceId,
          clientMsgId: req.clientMsgId,
          content: { case: "text", value: req.text },
          // The store trusts a first attempt received recently not to be stored yet (see its findStored).
          ...(req.firstAttempt ? { firstAttemptAt: timestampNow() } : {}),
        },
        traceHeaders: injectTraceHeaders(),
      });
      const m = r.message;
      return { messageId: m?.messageId ?? "", seq: m?.seq ?? 0n, ...(m?.serverTime ? { serverTime: m.serverTime } : {}), status: 1, created: r.created };
    },
    async getHistory(caller, req) {
      const { conversationId, anchorSeq, direction, limit } = req;
      const r = await messageStore.getHistory({ conversationId, anchorSeq, direction, limit, userId: caller.userId });
      return { messages: r.messages, hasMore: r.hasMore };
    },
    async sync(caller, req) {
      // A reconnect storm's Syncs wait their turn at the message store (in arrival order) rather than
      // fail and come back: a longer deadline than other calls.
      const r = await messageStore.sync({ userId: caller.userId, syncToken: req.syncToken, cursors: req.cursors, limitPerConversation: req.limitPerConversation }, { timeoutMs: SYNC_TIMEOUT_MS });
      return { updates: r.updates, nextSyncToken: r.nextSyncToken, hasMore: r.hasMore };
    },
    async updateReceipt(caller, req) {
      const r = await messageStore.updateReceipt({ conversationId: req.conversationId, kind: req.kind, seq: req.seq, userId: caller.userId, deviceId: caller.deviceId });
      return r.watermarks === undefined ? {} : { watermarks: r.watermarks };
    },
    async getReceipts(caller, req) {
      const r = await messageStore.getReceipts({ conversationId: req.conversationId, seq: req.seq, userId: caller.userId });
      const status = r.recipientCount > 0 && r.readCount === r.recipientCount ? 3 : r.recipientCount > 0 && r.deliveredCount === r.recipientCount ? 2 : 1;
      return { members: r.members, deliveredCount: r.deliveredCount, readCount: r.readCount, recipientCount: r.recipientCount, status };
    },
    async createGroup(caller, req) {
      const r = await group.createGroup({ creatorId: caller.userId, title: req.title, memberIds: req.memberIds, clientRequestId: req.clientRequestId });
      return { conversation: await view(caller, r.conversation?.conversationId ?? "") };
    },
    addMembers: async (caller, req) => systemMessage(await group.addMembers({ actorId: caller.userId, conversationId: req.conversationId, userIds: req.userIds })),
    removeMember: async (caller, req) => systemMessage(await group.removeMember({ actorId: caller.userId, conversationId: req.conversationId, userId: req.userId })),
    leaveGroup: async (caller, req) => systemMessage(await group.removeMember({ actorId: caller.userId, conversationId: req.conversationId, userId: caller.userId })),
    renameGroup: async (caller, req) => systemMessage(await group.renameGroup({ actorId: caller.userId, conversationId: req.conversationId, title: req.title })),
    setMemberRole: async (caller, req) =>
      systemMessage(await group.setMemberRole({ actorId: caller.userId, conversationId: req.conversationId, userId: req.userId, role: req.role })),
    transferOwnership: async (caller, req) =>
      systemMessage(await group.setMemberRole({ actorId: caller.userId, conversationId: req.conversationId, userId: req.newOwnerId, role: Role.OWNER })),
    async deleteGroup(caller, req) {
      await group.deleteGroup({ actorId: caller.userId, conversationId: req.conversationId });
      return {};
    },
    async listMembers(caller, req) {
      await view(caller, req.conversationId);
      const r = await group.listMembers({ conversationId: req.conversationId, pageSize: req.pageSize, pageToken: req.pageToken });
      return { members: r.members, nextPageToken: r.nextPageToken };
    },
    async setTyping(caller, req) {
      await presence.setTyping({ conversationId: req.conversationId, userId: caller.userId, deviceId: caller.deviceId, typing: req.typing });
      return {};
    },
    async getPresence(caller, req) {
      return { presences: (await presence.getPresence({ viewerId: caller.userId, userIds: req.userIds })).presences };
    },
    async watchPresence(caller, req) {
      const r = await presence.watchPresence({ viewerId: caller.userId, deviceId: caller.deviceId, userIds: req.userIds });
      return { presences: r.presences };
    },
    async unwatchPresence(caller, req) {
      await presence.unwatchPresence({ viewerId: caller.userId, deviceId: caller.deviceId, userIds: req.userIds });
      return {};
    },
    async updatePrivacySettings(caller, req) {
      await Promise.all([
        presence.updatePrivacySettings({ userId: caller.userId, showLastSeen: req.showLastSeen }),
        push.updatePreviewSettings({ userId: caller.userId, showPreviews: req.showPreviews }),
      ]);
      return {};
    },
    async registerPushTarget(caller, req) {
      const r = await push.registerTarget({ userId: caller.userId, deviceId: caller.deviceId, target: req });
      return r.target === undefined ? {} : { target: r.target };
    },
    async listPushTargets(caller) {
      return { targets: (await push.listTargets({ userId: caller.userId })).targets };
    },
    async removePushTarget(caller, req) {
      await push.removeTarget({ userId: caller.userId, targetId: req.targetId });
      return {};
    },
    async muteConversation(caller, req) {
      await view(caller, req.conversationId);
      await push.muteConversation({ userId: caller.userId, conversationId: req.conversationId, ...(req.mutedUntil ? { mutedUntil: req.mutedUntil } : {}) });
      return {};
    },
    async assignEdge(caller) {
      const r = await connection.assignEdge({ userId: caller.userId });
      return { websocketUrl: r.edge?.websocketUrl ?? "", connectUrl: r.edge?.connectUrl ?? "", edgeId: r.edge?.edgeId ?? "" };
    },
  };
}
