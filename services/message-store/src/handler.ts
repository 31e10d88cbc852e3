// MessageStoreService. The send path's step 2 lives in `append`: check membership, take the next
// seq (one append at a time per conversation), store durably, emit MessageCreated, answer.
import type { Client, ServiceImpl } from "@connectrpc/connect";
import { Direction } from "../../../gen/chat/api/v1/enums_pb.js";
import type { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import type { MessageStoreService } from "../../../gen/chat/messagestore/v1/messagestore_pb.js";
import type { Bus } from "../../../packages/runtime/src/bus/port.js";
import { Code, ConnectError, permissionDenied, unimplemented } from "../../../packages/runtime/src/errors.js";
import { accessOf, type Access } from "./domain/access.js";
import { KeyedSerialQueue, pageRange } from "./domain/sequencing.js";
import { publishMessageCreated } from "./events/produce.js";
import type { MessageStore } from "./store/port.js";

export interface MessageStoreHandlerOptions {
  store: MessageStore;
  bus: Bus;
  group: Client<typeof GroupService>;
  now?: () => Date;
  newId?: () => string;
}

const DEFAULT_PAGE = 50;

export function createMessageStoreHandler(opts: MessageStoreHandlerOptions): ServiceImpl<typeof MessageStoreService> {
  const { store, bus, group } = opts;
  const now = opts.now ?? (() => new Date());
  const newId = opts.newId ?? (() => crypto.randomUUID());
  const appends = new KeyedSerialQueue();

  /** The user's access to the conversation; NotFound when the conversation does not exist. */
  async function access(conversationId: string, userId: string): Promise<Access> {
    try {
      const r = await group.getMembership({ conversationId, userId });
      return accessOf(r.membership);
    } catch (err) {
      if (!(err instanceof ConnectError) || err.code !== Code.NotFound) throw err;
      await group.getConversation({ conversationId }); // throws NotFound for an unknown conversation
      return { kind: "none" };
    }
  }

  return {
    async append(req) {
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
        return result;
      });
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
          const [lastMessage] = await store.range(conversationId, lastSeq, lastSeq);
          return { conversationId, lastSeq: BigInt(lastSeq), lastMessage };
        }),
      );
      return { states: states.filter((s) => s !== undefined) };
    },
    sync() {
      throw unimplemented("MessageStoreService.Sync", "issue #3");
    },
    updateReceipt() {
      throw unimplemented("MessageStoreService.UpdateReceipt", "issue #3");
    },
    getReceipts() {
      throw unimplemented("MessageStoreService.GetReceipts", "issue #3");
    },
  };
}

