// What routing consumes: MessageCreated (chat.messages.v1) and ReceiptUpdated (chat.receipts.v1),
// as consumer group "routing". A batch (one partition, in offset order, so each conversation's
// events in seq order) is routed at once: one session lookup, one Deliver per edge; batches of
// several partitions handed over in the same turn of the event loop are routed together (each
// partition's events still in order). Each record's trace continues in its own consumer span (issue #7).
import { create, fromBinary } from "@bufbuild/protobuf";
import { context, SpanStatusCode } from "@opentelemetry/api";
import { SystemEventKind } from "../../../../gen/chat/api/v1/enums_pb.js";
import { EventSchema } from "../../../../gen/chat/api/v1/events_pb.js";
import type { SystemEvent } from "../../../../gen/chat/api/v1/model_pb.js";
import { MessageCreatedSchema, ReceiptUpdatedSchema } from "../../../../gen/chat/events/v1/events_pb.js";
import type { Bus, BusRecord, Subscription } from "../../../../packages/runtime/src/bus/port.js";
import { TickBatcher } from "../../../../packages/runtime/src/serial.js";
import { startConsumerSpan } from "../../../../packages/runtime/src/telemetry/propagation.js";
import { topics } from "../../../../packages/runtime/src/topics.js";
import type { MembershipDelta, RouteItem, Router } from "../router.js";

export const CONSUMER_GROUP = "routing";

/** What a system message does to the member list. */
function deltaOf(seq: number, event: SystemEvent): MembershipDelta {
  const joined = event.kind === SystemEventKind.CREATED || event.kind === SystemEventKind.MEMBERS_ADDED ? event.userIds : [];
  const left = event.kind === SystemEventKind.MEMBER_REMOVED || event.kind === SystemEventKind.MEMBER_LEFT ? event.userIds : [];
  return { seq, joined, left, named: event.userIds };
}

/** The routing work of one record, or undefined for a record to skip. */
function itemOf(record: BusRecord): RouteItem | undefined {
  switch (record.topic) {
    case topics.messageCreated.name: {
      const { message } = fromBinary(MessageCreatedSchema, record.value);
      if (message === undefined) return undefined;
      const change = message.content.case === "system" ? deltaOf(Number(message.seq), message.content.value) : undefined;
      return {
        ...(change === undefined ? {} : { change }),
        conversationId: message.conversationId,
        event: create(EventSchema, { kind: { case: "message", value: { message } } }),
        ...(message.senderId === "" ? {} : { sender: { userId: message.senderId, deviceId: message.senderDeviceId } }),
        // System messages (membership, title) are seen on the next sync, not pushed.
        ...(message.content.case === "text" ? { pushFor: message } : {}),
      };
    }
    case topics.receiptUpdated.name: {
      const receipt = fromBinary(ReceiptUpdatedSchema, record.value);
      if (receipt.watermarks === undefined) return undefined;
      return {
        conversationId: receipt.conversationId,
        event: create(EventSchema, { kind: { case: "receipt", value: { conversationId: receipt.conversationId, watermarks: receipt.watermarks } } }),
      };
    }
    default:
      return undefined;
  }
}

export function consume(bus: Bus, router: Router): Promise<Subscription> {
  // The partitions' batches of one fetch arrive together: one route for all of them.
  const together = new TickBatcher<RouteItem[], true>(async (lists) => {
    await router.route(lists.flat());
    return lists.map(() => true as const);
  });
  return bus.subscribe({
    groupId: CONSUMER_GROUP,
    topics: [topics.messageCreated.name, topics.receiptUpdated.name],
    handle: async (records) => {
      // Each record continues its own trace: a CONSUMER span per record (child of the context in
      // its headers), its deliveries and push request made in that span's context.
      const spans = records.map((r) => startConsumerSpan(`route ${r.topic}`, r.headers, { "messaging.destination.name": r.topic }));
      try {
        const items: RouteItem[] = [];
        for (const [i, record] of records.entries()) {
          const item = itemOf(record);
          const ctx = spans[i]?.ctx;
          if (item !== undefined) items.push(ctx === undefined ? item : { ...item, trace: ctx });
        }
        // Work done once for the batch (member and session lookups) runs in the first record's span.
        const first = spans[0]?.ctx ?? context.active();
        await context.with(first, () => together.run(items));
      } catch (err) {
        for (const { span } of spans) span.setStatus({ code: SpanStatusCode.ERROR, message: String(err) });
        throw err;
      } finally {
        for (const { span } of spans) span.end();
      }
    },
  });
}
