// What the group service produces: MembershipChanged (chat.membership.v1, keyed by conversation)
// after every applied change and every deletion, with the trace context in the record headers.
import { create, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { MembershipChangedSchema } from "../../../../gen/chat/events/v1/events_pb.js";
import type { Bus } from "../../../../packages/runtime/src/bus/port.js";
import { injectTraceHeaders } from "../../../../packages/runtime/src/telemetry/propagation.js";
import { topics } from "../../../../packages/runtime/src/topics.js";

export async function publishMembershipChanged(bus: Bus, event: MessageInitShape<typeof MembershipChangedSchema> & { conversationId: string }): Promise<void> {
  await bus.publish(topics.membershipChanged.name, [
    { key: event.conversationId, value: toBinary(MembershipChangedSchema, create(MembershipChangedSchema, event)), headers: injectTraceHeaders() },
  ]);
}
