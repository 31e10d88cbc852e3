// MessageCreated: produced after every stored message, on chat.messages.v1 keyed by conversation,
// with the trace context in the record headers.
import { create, toBinary } from "@bufbuild/protobuf";
import type { Message } from "../../../../gen/chat/api/v1/model_pb.js";
import { MessageCreatedSchema } from "../../../../gen/chat/events/v1/events_pb.js";
import type { Bus } from "../../../../packages/runtime/src/bus/port.js";
import { injectTraceHeaders } from "../../../../packages/runtime/src/telemetry/propagation.js";
import { topics } from "../../../../packages/runtime/src/topics.js";

export async function publishMessageCreated(bus: Bus, message: Message): Promise<void> {
  await bus.publish(topics.messageCreated.name, [
    {
      key: message.conversationId,
      value: toBinary(MessageCreatedSchema, create(MessageCreatedSchema, { message })),
      headers: injectTraceHeaders(),
    },
  ]);
}
