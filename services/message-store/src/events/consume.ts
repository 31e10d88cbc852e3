// What the message store consumes: MembershipChanged (chat.membership.v1), by every replica (a
// consumer group of its own, starting at the end), to drop what it caches of a conversation's
// memberships when the change went through another replica.
import { fromBinary } from "@bufbuild/protobuf";
import { randomUUID } from "node:crypto";
import { MembershipChangedSchema } from "../../../../gen/chat/events/v1/events_pb.js";
import type { Bus, Subscription } from "../../../../packages/runtime/src/bus/port.js";
import { topics } from "../../../../packages/runtime/src/topics.js";
import type { MessageStoreHandler } from "../handler.js";

export function consumeMembershipChanges(bus: Bus, handler: Pick<MessageStoreHandler, "membershipChanged">): Promise<Subscription> {
  return bus.subscribe({
    groupId: `message-store.${randomUUID()}`,
    topics: [topics.membershipChanged.name],
    handle: async (records) => {
      for (const r of records) {
        const e = fromBinary(MembershipChangedSchema, r.value);
        handler.membershipChanged(e.conversationId, e.deleted ? 0 : Number(e.seq));
      }
    },
  });
}
