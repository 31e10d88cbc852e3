// MessageStoreService. The send path's step 2 lives in `append`: check membership, take the next
// seq (one append at a time per conversation), store durably, emit MessageCreated, answer.
import { create } from "@bufbuild/protobuf";
import type { Client, ServiceImpl } from "@connectrpc/connect";
import { ReceiptWatermarksSchema } from "../../../gen/chat/api/v1/model_pb.js";
import { Direction } from "../../../gen/chat/api/v1/enums_pb.js";
import type { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import type { AppendRequest, MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import type { Bus } from "../../../packages/runtime/src/bus/port.js";
import { Code, ConnectError, permissionDenied, resourceExhausted } from "../../../packages/runtime/src/errors.js";
import { accessOf, type Access } from "./domain/access.js";
import { KeyedSerialQueue, pageRange } from "./domain/sequencing.js";
import { publishMessageCreated, publishReceiptUpdated } from "./events/produce.js";
import { NO_WATERMARKS, requested, unreadCount, type Watermarks } from "./domain/receipts.js";
import type { AppendResult, MessageStore } from "./store/port.js";

export interface MessageStoreHandlerOptions {
  store: MessageStore;
  bus: Bus;
  group: Client<typeof GroupService>;
  now?: () => Date;
  newId?: () => string;
  /** Appends in progress beyond which new ones are refused with ResourceExhausted (retry later). */
  maxInflightAppends?: number;
}

const DEFAULT_PAGE = 50;
const DEFAULT_SYNC_PAGE = 200;
const MAX_SYNC_CONVERSATIONS = 100;
/**
 * How long memberships and member lists are cached. Long, because they change only through the
 * group service: its membership changes (issue #4) drop the entries through MembershipChanged.
 */
const MEMBER_CACHE_MS = 300_000;

const view = (userId: string, w: Watermarks) => create(ReceiptWatermarksSchema, { userId, deliveredSeq: BigInt(w.deliveredSeq), readSeq: BigInt(w.readSeq) });

export function createMessageStoreHandler(opts: MessageStoreHandlerOptions): ServiceImpl<typeof MessageStoreService> {
  const { store, bus, group } = opts;
  const now = opts.now ?? (() => new Date());
  const newId = opts.newId ?? (() => crypto.randomUUID());
  const appends = new KeyedSerialQueue();
  const maxInflight = opts.maxInflightAppends ?? 1024;
  let inflight = 0;

  /**
   * The user's access to the conversation; NotFound when the conversation does not exist. Cached
   * briefly: memberships change only through the group service, whose changes (issue #4) will
   * also drop these entries through MembershipChanged events.
   */
  const accessCache = new Map<string, { access: Promise<Access>; until: number }>();
  function access(conversationId: string, userId: string): Promise<Access> {
    const key = `${conversationId}\n${userId}`;
    const hit = accessCache.get(key);
    if (hit !== undefined && hit.until > Date.now()) return hit.access;
    const fresh = lookupAccess(conversationId, userId);
    accessCache.set(key, { access: fresh, until: Date.now() + MEMBER_CACHE_MS });
    fresh.then((a) => a.kind === "member" || accessCache.delete(key), () => accessCache.delete(key));
    if (accessCache.size > 100_000) accessCache.clear();
    return fresh;
  }

  async function lookupAccess(conversationId: string, userId: string): Promise<Access> {
    try {
      const r = await group.getMembership({ conversationId, userId });
      return accessOf(r.membership);
    } catch (err) {
      if (!(err instanceof ConnectError) || err.code !== Code.NotFound) throw err;
      await group.getConversation({ conversationId }); // throws NotFound for an unknown conversation
      return { kind: "none" };
    }
  }

  /** Current member ids (paged through the group service), cached briefly. */
  const members = new Map<string, { ids: Promise<string[]>; until: number }>();
  function memberIds(conversationId: string): Promise<string[]> {
    const hit = members.get(conversationId);
    if (hit !== undefined && hit.until > Date.now()) return hit.ids;
    const ids = (async () => {
      const out: string[] = [];
      let pageToken = "";
      do {
        const page = await group.listMembers({ conversationId, pageSize: 1024, pageToken });
        out.push(...page.members.map((m) => m.userId));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return out;
    })();
    members.set(conversationId, { ids, until: Date.now() + MEMBER_CACHE_MS });
    ids.catch(() => members.delete(conversationId));
    return ids;
  }

  async function appendOne(req: AppendRequest): Promise<AppendResult> {
    if (req.content.case === "text") {
      const a = await access(req.conversationId, req.senderId);
      if (a.kind !== "member") throw permissionDenied(`${req.senderId} is not a member of ${req.conversationId}`);
    } else {
      await group.getConversation({ conversationId: req.conversationId });
    }
    return appends.run(req.conversationId, async () => {
      const result = await store.append({
        conversationId: req.conversationId,
        messageId: newId(),
        clientMsgId: req.clientMsgId,
        senderId: req.senderId,
        senderDeviceId: req.senderDeviceId,
        serverTime: now(),
        content: req.content,
      });
      // Inside the queue, so one conversation's events reach the bus in seq order. A retry of a
      // stored message publishes again: delivery is at-least-once and clients drop repeats by seq.
      await publishMessageCreated(bus, result.message);
      if (result.created) {
        const seq = Number(result.message.seq);
        // Every member's inbox learns the conversation moved (Sync reads only what changed), and
        // sending reads the conversation up to one's own message (it never counts as unread).
        await store.afterAppend(req.conversationId, seq, await memberIds(req.conversationId), req.senderId);
      }
      return result;
    });
  }

  return {
    async append(req) {
      // Under overload, refuse at once rather than queue without bound: the client retries with
      // the same client_msg_id, and the others' messages keep flowing.
      if (inflight >= maxInflight) throw resourceExhausted("the message store is busy: retry the send shortly");
      inflight++;
      try {
        return await appendOne(req);
      } finally {
        inflight--;
      }
    },
    async getHistory(req) {
      const a = await access(req.conversationId, req.userId);
      if (a.kind === "none") throw permissionDenied(`${req.userId} is not a member of ${req.conversationId}`);
      const lastSeq = await store.lastSeq(req.conversationId);
      const range = pageRange(
        { anchorSeq: Number(req.anchorSeq), after: req.direction === Direction.AFTER, limit: req.limit || DEFAULT_PAGE },
        lastSeq,
        a.window,
      );
      if (range === undefined) return { messages: [], hasMore: false };
      return { messages: await store.range(req.conversationId, range.lo, range.hi), hasMore: range.hasMore };
    },
    async getConversationStates(req) {
      const states = await Promise.all(
        req.conversationIds.map(async (conversationId) => {
          const lastSeq = await store.lastSeq(conversationId);
          if (lastSeq === 0) return undefined;
          const [[lastMessage], all] = await Promise.all([store.range(conversationId, lastSeq, lastSeq), store.watermarks(conversationId)]);
          const w = all.get(req.userId) ?? NO_WATERMARKS;
          return { conversationId, lastSeq: BigInt(lastSeq), lastMessage, watermarks: view(req.userId, w), unreadCount: BigInt(unreadCount(lastSeq, w)) };
        }),
      );
      return { states: states.filter((s) => s !== undefined) };
    },
    async updateReceipt(req) {
      const a = await access(req.conversationId, req.userId);
      if (a.kind === "none") throw permissionDenied(`${req.userId} is not a member of ${req.conversationId}`);
      const lastSeq = Math.min(await store.lastSeq(req.conversationId), a.window.toSeq);
      const { watermarks, changed } = await store.raiseWatermarks(req.conversationId, req.userId, requested(req.kind, Number(req.seq), lastSeq));
      const out = view(req.userId, watermarks);
      if (changed) await publishReceiptUpdated(bus, req.conversationId, out, req.deviceId);
      return { watermarks: out, changed };
    },
    async getReceipts(req) {
      const a = await access(req.conversationId, req.userId);
      if (a.kind === "none") throw permissionDenied(`${req.userId} is not a member of ${req.conversationId}`);
      const all = await store.watermarks(req.conversationId);
      const members = [...all.entries()].map(([userId, w]) => view(userId, w));
      if (req.seq === 0n) return { members };
      const [message] = await store.range(req.conversationId, Number(req.seq), Number(req.seq));
      if (message === undefined) return { members };
      const recipients = await memberIds(req.conversationId);
      const others = recipients.filter((u) => u !== message.senderId);
      const seq = Number(req.seq);
      const w = (u: string) => all.get(u) ?? NO_WATERMARKS;
      return {
        members,
        recipientCount: others.length,
        deliveredCount: others.filter((u) => w(u).deliveredSeq >= seq).length,
        readCount: others.filter((u) => w(u).readSeq >= seq).length,
      };
    },
    async sync(req) {
      // The user's inbox names every conversation with its last seq; only those past the device's
      // cursor are read, so the messages read are exactly what the device missed.
      const limit = req.limitPerConversation || DEFAULT_SYNC_PAGE;
      const cursors = new Map(req.cursors.map((c) => [c.conversationId, Number(c.seq)]));
      const changed = [...(await store.inbox(req.userId))].filter(([id, last]) => last > (cursors.get(id) ?? 0));
      const page = changed.slice(0, MAX_SYNC_CONVERSATIONS);
      const updates = await Promise.all(
        page.map(async ([conversationId, lastSeq]) => {
          const a = await access(conversationId, req.userId);
          if (a.kind === "none") return undefined;
          const range = pageRange({ anchorSeq: cursors.get(conversationId) ?? 0, after: true, limit }, lastSeq, a.window);
          const [messages, all] = await Promise.all([range === undefined ? [] : store.range(conversationId, range.lo, range.hi), store.watermarks(conversationId)]);
          const w = all.get(req.userId) ?? NO_WATERMARKS;
          return {
            conversation: { conversationId, lastSeq: BigInt(lastSeq), unreadCount: BigInt(unreadCount(lastSeq, w)), readSeq: BigInt(w.readSeq) },
            messages,
            hasMore: range?.hasMore ?? false,
            receipts: [...all].map(([userId, x]) => view(userId, x)),
          };
        }),
      );
      return { updates: updates.filter((u) => u !== undefined), hasMore: changed.length > page.length, nextSyncToken: "" };
    },
  };
}

