// What the message store produces, with the trace context in the record headers:
// MessageCreated after every stored message (chat.messages.v1) and ReceiptUpdated after every
// watermark that moved (chat.receipts.v1), both keyed by conversation.
import { create, toBinary } from "@bufbuild/protobuf";
import type { Message, ReceiptWatermarks } from "../../../../gen/chat/api/v1/model_pb.js";
import { MessageCreatedSchema, ReceiptUpdatedSchema } from "../../../../gen/chat/events/v1/events_pb.js";
import type { Bus } from "../../../../packages/runtime/src/bus/port.js";
import { injectTraceHeaders } from "../../../../packages/runtime/src/telemetry/propagation.js";
import { topics } from "../../../../packages/runtime/src/topics.js";

/** MessageCreated for each message, in the order given (one conversation's in seq order). */
export async function publishMessagesCreated(bus: Bus, messages: Message[]): Promise<void> {
  const headers = injectTraceHeaders();
  await bus.publish(
    topics.messageCreated.name,
    messages.map((message) => ({ key: message.conversationId, value: toBinary(MessageCreatedSchema, create(MessageCreatedSchema, { message })), headers })),
  );
}

export async function publishReceiptUpdated(bus: Bus, conversationId: string, watermarks: ReceiptWatermarks, deviceId: string): Promise<void> {
  await bus.publish(topics.receiptUpdated.name, [
    {
      key: conversationId,
      value: toBinary(ReceiptUpdatedSchema, create(ReceiptUpdatedSchema, { conversationId, watermarks, deviceId })),
      headers: injectTraceHeaders(),
    },
  ]);
}
