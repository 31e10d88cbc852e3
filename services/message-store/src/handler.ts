// MessageStoreService. The send path's step 2 lives in `append`: look a retry up, check
// membership, take the next seq (one batch at a time per conversation), store durably, emit
// MessageCreated, answer.
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { ConnectError, type Client, type ServiceImpl } from "@connectrpc/connect";
import { ReceiptWatermarksSchema, type Message } from "../../../gen/chat/api/v1/model_pb.js";
import { Direction } from "../../../gen/chat/api/v1/enums_pb.js";
import type { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import { AppendOutcomeSchema, AppendResponseSchema, type AppendOutcome, type AppendRequest, type AppendResponse, type MessageStoreService, type SyncRequest } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import type { Bus } from "../../../packages/runtime/src/bus/port.js";
import { appendManyBatcher } from "../../../packages/runtime/src/append-many.js";
import { Code, invalidArgument, permissionDenied, resourceExhausted, retryAfterMs, retryLater } from "../../../packages/runtime/src/errors.js";
import { extractTraceContext, injectTraceHeaders, withSpanFor } from "../../../packages/runtime/src/telemetry/propagation.js";
import { MembershipCache } from "./memberships.js";
import { pageRange } from "./domain/sequencing.js";
import { Gate, KeyedBatchQueue } from "../../../packages/runtime/src/serial.js";
import { publishMessagesCreated, publishReceiptUpdated } from "./events/produce.js";
import { NO_WATERMARKS, requested, unreadCount, type Watermarks } from "./domain/receipts.js";
import type { AppendResult, MessageStore } from "./store/port.js";

export interface MessageStoreHandlerOptions {
  store: MessageStore;
  bus: Bus;
  group: Client<typeof GroupService>;
  /** Another replica of this service, by address: where an append goes when that replica writes its conversation. */
  replica?: (address: string) => Client<typeof MessageStoreService>;
  now?: () => Date;
  newId?: () => string;
  /** Syncs run at once, and waiting beyond which new ones are refused with ResourceExhausted (retry later). */
  maxConcurrentSyncs?: number;
  maxWaitingSyncs?: number;
  /** Appends in progress beyond which new ones are refused with ResourceExhausted (retry later). */
  maxInflightAppends?: number;
  /**
   * Conversations with more members than this do not write every member's inbox on each message
   * (that would be one write per member per message); Sync reads their last seq directly instead.
   */
  inboxFanoutMaxMembers?: number;
}

const DEFAULT_PAGE = 50;
/** Marks an AppendMany call one replica forwards to another: the receiver never forwards it again. */
export const FORWARDED_HEADER = "chat-forwarded";
/** Appends per forwarded AppendMany call at most, and such calls in flight per replica at most. */
const MAX_FORWARDED_PER_CALL = 100;
const FORWARD_CALLS_IN_FLIGHT = 2;
export const DEFAULT_INBOX_FANOUT_MAX_MEMBERS = 64;
const DEFAULT_SYNC_PAGE = 200;
const MAX_SYNC_CONVERSATIONS = 100;
/**
 * How long memberships and member lists are cached. Long, because they change only through the
 * group service, and every change drops them (its system message, or MembershipChanged).
 */
const MEMBER_CACHE_MS = 300_000;

/** A stored append, answered once its MessageCreated is published (and the inboxes moved). */
interface Appended {
  result: AppendResult;
  published: Promise<void>;
}

const view = (userId: string, w: Watermarks) => create(ReceiptWatermarksSchema, { userId, deliveredSeq: BigInt(w.deliveredSeq), readSeq: BigInt(w.readSeq) });

export interface MessageStoreHandler extends ServiceImpl<typeof MessageStoreService> {
  /** A membership change made through another replica (a MembershipChanged event; seq 0 for a deletion). */
  membershipChanged(conversationId: string, seq: number): void;
}

export function createMessageStoreHandler(opts: MessageStoreHandlerOptions): MessageStoreHandler {
  const { store, bus, group } = opts;
  const now = opts.now ?? (() => new Date());
  const newId = opts.newId ?? (() => crypto.randomUUID());
  const appends = new KeyedBatchQueue<AppendRequest, Appended>(appendBatch, { maxBatch: 100, alone: (req) => req.content.case !== "text" });
  const maxInflight = opts.maxInflightAppends ?? 1024;
  const fanoutMax = opts.inboxFanoutMaxMembers ?? DEFAULT_INBOX_FANOUT_MAX_MEMBERS;
  let inflight = 0;
  /** Appends in progress, by conversation, sender and client_msg_id. */
  const inProgress = new Map<string, Promise<AppendResponse>>();
  /** Appends on their way to the replica that writes their conversation, by its address. */
  const forwarders = new Map<string, ReturnType<typeof appendManyBatcher>>();

  const memberships = new MembershipCache(group, MEMBER_CACHE_MS);
  // A reconnect storm's Syncs run 32 at a time, in arrival order, instead of all at once.
  const syncs = new Gate(opts.maxConcurrentSyncs ?? 32, opts.maxWaitingSyncs ?? 20_000, "sync");

  /**
   * One batch of a conversation's appends (the ones that arrived while the previous batch was
   * stored): access checked (a membership change appended just before is already known here), seqs
   * claimed together. The conversation's next batch starts as soon as this one is stored: its
   * MessageCreated records are handed to the bus before that, so they reach it in seq order, and
   * each append is answered once they are published (`published`). The inboxes and the senders'
   * read watermarks move meanwhile, once per batch. A system message is a batch of its own.
   */
  async function appendBatch(conversationId: string, reqs: AppendRequest[]): Promise<(Appended | Error)[]> {
    const refusals = await Promise.all(reqs.map((req) => refusal(conversationId, req)));
    const accepted = reqs.filter((_, i) => refusals[i] === undefined);
    const stored = await store.appendBatch(
      accepted.map((req) => ({
        conversationId,
        messageId: newId(),
        clientMsgId: req.clientMsgId,
        senderId: req.senderId,
        senderDeviceId: req.senderDeviceId,
        serverTime: now(),
        content: req.content,
      })),
      // Each was looked up by `append` (after any earlier append of it had finished), not here.
      { checked: true },
    );
    // A retry of a stored message publishes again: delivery is at-least-once and clients drop
    // repeats by seq.
    const published = Promise.all([
      publishMessagesCreated(
        bus,
        stored.map((r) => r.message),
      ),
      afterAppend(
        conversationId,
        stored.filter((r) => r.created).map((r) => r.message),
      ),
    ]).then(() => undefined);
    // Each append awaits it; none may be left unhandled if the batch had no one left to answer.
    published.catch(() => undefined);
    // A membership change holds the conversation until it is published and its inboxes moved (they
    // need the member list from before it): the next batch then reads memberships after it.
    const changes = stored.filter((m) => m.message.content.case === "system");
    if (changes.length > 0) {
      try {
        await published;
      } finally {
        for (const m of changes) memberships.changed(conversationId, Number(m.message.seq));
      }
    }
    let next = 0;
    return refusals.map((refused) => {
      if (refused !== undefined) return refused;
      const result = stored[next++];
      return result === undefined ? new Error("the store answered fewer appends than it was given") : { result, published };
    });
  }

  /**
   * Every member's inbox learns the conversation moved (Sync reads only what changed), and sending
   * reads the conversation up to one's own message (it never counts as unread). A membership
   * change also reaches the members it adds or removes. Large groups write the inboxes only on
   * membership changes (so an inbox is current when a group shrinks back under the limit); Sync
   * reads their last seq directly.
   */
  async function afterAppend(conversationId: string, created: Message[]): Promise<void> {
    const last = created.at(-1);
    if (last === undefined) return;
    const members = await memberships.memberIds(conversationId);
    let ids: ReadonlySet<string> = members;
    if (last.content.case === "system") ids = new Set([...members, ...last.content.value.userIds]);
    else if (members.size > fanoutMax) ids = new Set();
    const lastBySender = new Map(created.filter((m) => m.senderId !== "").map((m) => [m.senderId, Number(m.seq)]));
    await Promise.all([
      store.afterAppend(conversationId, Number(last.seq), [...ids], ""),
      ...[...lastBySender].map(([senderId, seq]) => store.afterAppend(conversationId, seq, [], senderId)),
    ]);
  }

  /** Why the sender may not append this (PermissionDenied), or undefined when it may. */
  async function refusal(conversationId: string, req: AppendRequest): Promise<Error | undefined> {
    if (req.content.case !== "text") return undefined;
    if (await memberships.isMember(conversationId, req.senderId)) return undefined;
    const a = await memberships.access(conversationId, req.senderId);
    return a.kind === "member" ? undefined : permissionDenied(`${req.senderId} is not a member of ${conversationId}`);
  }

  /**
   * One replica writes each conversation's seqs (store.writer): an append that reaches another is
   * passed on to it (once: a forwarded one that finds the lease moved again is refused, and the
   * client's retry finds the new writer).
   */
  function forward(address: string, req: AppendRequest): Promise<AppendResponse> {
    const replica = opts.replica;
    if (replica === undefined) throw new Error("an append belongs to another replica, and this one has no way to reach it");
    let forwarder = forwarders.get(address);
    if (forwarder === undefined) {
      forwarder = appendManyBatcher(replica(address), { maxPerCall: MAX_FORWARDED_PER_CALL, callsInFlight: FORWARD_CALLS_IN_FLIGHT, maxWaiting: maxInflight, headers: { [FORWARDED_HEADER]: "1" } });
      forwarders.set(address, forwarder);
    }
    return forwarder.run({ append: req, traceHeaders: injectTraceHeaders() });
  }

  async function append(req: AppendRequest, forwarded = false): Promise<AppendResponse> {
    // Under overload, refuse at once rather than queue without bound: the client retries with
    // the same client_msg_id, and the others' messages keep flowing.
    if (inflight >= maxInflight) throw resourceExhausted("the message store is busy: retry the send shortly");
    const writer = store.writer(req.conversationId);
    if (writer.kind === "peer" && !forwarded) {
      inflight++;
      try {
        return await forward(writer.address, req);
      } finally {
        inflight--;
      }
    }
    if (writer.kind !== "self") throw retryLater(Code.Unavailable, `no message-store replica writes ${req.conversationId} at this moment (its shard's lease is changing hands): retry shortly`, 500);
    // A repeat of an append still in progress here waits for it and gets its message; so when an
    // append looks itself up, any earlier one of it has finished (or never stored it).
    const key = `${req.conversationId}\n${req.senderId}\n${req.clientMsgId}`;
    const earlier = inProgress.get(key);
    const attempt = (async () => {
      const first = await earlier?.catch(() => undefined);
      if (first !== undefined) return create(AppendResponseSchema, { message: first.message, created: false });
      return appendOnce(req);
    })();
    inProgress.set(key, attempt);
    inflight++;
    try {
      return await attempt;
    } finally {
      inflight--;
      if (inProgress.get(key) === attempt) inProgress.delete(key);
    }
  }

  /**
   * A retry is looked up before the message joins its conversation's queue, so the read is not
   * part of the one-at-a-time section; it is answered with the stored message, published again
   * (delivery is at-least-once; clients drop repeats by seq).
   */
  async function appendOnce(req: AppendRequest): Promise<AppendResponse> {
    // System messages come from the group service alone: NotFound for an unknown conversation.
    if (req.content.case !== "text") await group.getConversation({ conversationId: req.conversationId });
    const stored = await store.findStored(req.conversationId, req.senderId, req.clientMsgId, req.firstAttemptAt === undefined ? undefined : timestampMs(req.firstAttemptAt));
    if (stored !== undefined) {
      const refused = await refusal(req.conversationId, req);
      if (refused !== undefined) throw refused;
      await publishMessagesCreated(bus, [stored]);
      if (stored.content.case === "system") memberships.changed(req.conversationId, Number(stored.seq));
      return create(AppendResponseSchema, { message: stored, created: false });
    }
    const { result, published } = await appends.run(req.conversationId, req);
    await published;
    return create(AppendResponseSchema, result);
  }

  return {
    membershipChanged(conversationId, seq) {
      memberships.changed(conversationId, seq);
    },
    append: (req) => append(req),
    async appendMany(req, ctx) {
      const forwarded = ctx.requestHeader.get(FORWARDED_HEADER) === "1";
      // Each append in its own trace (the send's), all at once: appends of one conversation still
      // go one batch after another in arrival order (the queue in append).
      const outcomes = await Promise.all(
        req.appends.map(async ({ append: one, traceHeaders }): Promise<AppendOutcome> => {
          if (one === undefined) return outcomeOf(invalidArgument("appends: append is required"));
          try {
            const appended = await withSpanFor("append message", [extractTraceContext(traceHeaders)], () => append(one, forwarded), { "chat.conversation_id": one.conversationId });
            return create(AppendOutcomeSchema, { outcome: { case: "appended", value: appended } });
          } catch (err) {
            return outcomeOf(err);
          }
        }),
      );
      return { outcomes };
    },
    async getHistory(req) {
      const a = await memberships.access(req.conversationId, req.userId);
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
      const a = await memberships.access(req.conversationId, req.userId);
      if (a.kind === "none") throw permissionDenied(`${req.userId} is not a member of ${req.conversationId}`);
      const lastSeq = Math.min(await store.lastSeq(req.conversationId), a.window.toSeq);
      const { watermarks, changed } = await store.raiseWatermarks(req.conversationId, req.userId, requested(req.kind, Number(req.seq), lastSeq));
      const out = view(req.userId, watermarks);
      if (changed) await publishReceiptUpdated(bus, req.conversationId, out, req.deviceId);
      return { watermarks: out, changed };
    },
    async getReceipts(req) {
      const a = await memberships.access(req.conversationId, req.userId);
      if (a.kind === "none") throw permissionDenied(`${req.userId} is not a member of ${req.conversationId}`);
      const all = await store.watermarks(req.conversationId);
      const members = [...all.entries()].map(([userId, w]) => view(userId, w));
      if (req.seq === 0n) return { members };
      const [message] = await store.range(req.conversationId, Number(req.seq), Number(req.seq));
      if (message === undefined) return { members };
      // The members who could have received it: joined at or before it, not its sender.
      const seqOf = Number(req.seq);
      const others = (await memberships.members(req.conversationId)).filter((m) => m.userId !== message.senderId && Number(m.joinedSeq) <= seqOf).map((m) => m.userId);
      const seq = Number(req.seq);
      const w = (u: string) => all.get(u) ?? NO_WATERMARKS;
      return {
        members,
        recipientCount: others.length,
        deliveredCount: others.filter((u) => w(u).deliveredSeq >= seq).length,
        readCount: others.filter((u) => w(u).readSeq >= seq).length,
      };
    },
    sync(req, ctx) {
      return syncs.run(() => sync(req), ctx.signal);
    },
  };

  async function sync(req: SyncRequest) {
      // The user's inbox names every conversation with its last seq; only those past the device's
      // cursor are read, so the messages read are exactly what the device missed. One group call
      // gives the access to those and the user's large groups (whose inbox entries lag: their last
      // seq is read directly, one read per large group).
      const limit = req.limitPerConversation || DEFAULT_SYNC_PAGE;
      const cursors = new Map(req.cursors.map((c) => [c.conversationId, Number(c.seq)]));
      const lastSeqs = await store.inbox(req.userId);
      const past = (id: string, last: number) => last > (cursors.get(id) ?? 0);
      const { access, large } = await memberships.forSync(req.userId, [...lastSeqs].filter(([id, last]) => past(id, last)).map(([id]) => id), fanoutMax + 1);
      await Promise.all(large.map(async (id) => lastSeqs.set(id, Math.max(lastSeqs.get(id) ?? 0, await store.lastSeq(id)))));
      const changed = [...lastSeqs].filter(([id, last]) => past(id, last) && (access.get(id)?.kind ?? "none") !== "none");
      const page = changed.slice(0, MAX_SYNC_CONVERSATIONS);
      const updates = await Promise.all(
        page.map(async ([conversationId, lastSeq]) => {
          const a = access.get(conversationId);
          if (a === undefined || a.kind === "none") return undefined;
          const range = pageRange({ anchorSeq: cursors.get(conversationId) ?? 0, after: true, limit }, lastSeq, a.window);
          const [messages, all] = await Promise.all([range === undefined ? [] : store.range(conversationId, range.lo, range.hi), store.watermarks(conversationId)]);
          const w = all.get(req.userId) ?? NO_WATERMARKS;
          return {
            conversation: { conversationId, lastSeq: BigInt(lastSeq), unreadCount: BigInt(unreadCount(Math.min(lastSeq, a.window.toSeq), w, a.window.fromSeq - 1)), readSeq: BigInt(w.readSeq) },
            messages,
            hasMore: range?.hasMore ?? false,
            receipts: [...all].map(([userId, x]) => view(userId, x)),
          };
        }),
      );
      return { updates: updates.filter((u) => u !== undefined), hasMore: changed.length > page.length, nextSyncToken: "" };
  }
}


/** An append's failure as AppendMany answers it: the code and message Append would have thrown. */
function outcomeOf(err: unknown): AppendOutcome {
  const e = ConnectError.from(err);
  return create(AppendOutcomeSchema, { outcome: { case: "error", value: { code: e.code, message: e.rawMessage, retryAfterMs: retryAfterMs(e) } } });
}
