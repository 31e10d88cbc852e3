// What routing consumes: MessageCreated (chat.messages.v1) and ReceiptUpdated (chat.receipts.v1),
// as consumer group "routing". Records of one conversation are routed in order; different
// conversations in parallel. Each record continues the trace of the send that produced it.
import { create, fromBinary } from "@bufbuild/protobuf";
import { EventSchema } from "../../../../gen/chat/api/v1/events_pb.js";
import { MessageCreatedSchema, ReceiptUpdatedSchema } from "../../../../gen/chat/events/v1/events_pb.js";
import type { Bus, BusRecord, Subscription } from "../../../../packages/runtime/src/bus/port.js";
import { withConsumerSpan } from "../../../../packages/runtime/src/telemetry/propagation.js";
import { topics } from "../../../../packages/runtime/src/topics.js";
import type { Router } from "../router.js";

export const CONSUMER_GROUP = "routing";

async function route(router: Router, record: BusRecord): Promise<void> {
  switch (record.topic) {
    case topics.messageCreated.name: {
      const { message } = fromBinary(MessageCreatedSchema, record.value);
      if (message !== undefined) await router.message(message);
      return;
    }
    case topics.receiptUpdated.name: {
      const receipt = fromBinary(ReceiptUpdatedSchema, record.value);
      if (receipt.watermarks === undefined) return;
      const event = create(EventSchema, { kind: { case: "receipt", value: { conversationId: receipt.conversationId, watermarks: receipt.watermarks } } });
      await router.event(receipt.conversationId, event);
      return;
    }
  }
}

export function consume(bus: Bus, router: Router): Promise<Subscription> {
  return bus.subscribe({
    groupId: CONSUMER_GROUP,
    topics: [topics.messageCreated.name, topics.receiptUpdated.name],
    handle: async (records) => {
      const byConversation = new Map<string, BusRecord[]>();
      for (const r of records) byConversation.set(r.key, [...(byConversation.get(r.key) ?? []), r]);
      await Promise.all(
        [...byConversation.values()].map(async (list) => {
          for (const r of list) await withConsumerSpan(`route ${r.topic}`, r.headers, () => route(router, r));
        }),
      );
    },
  });
}
