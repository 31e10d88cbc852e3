// The Kafka topics of chat.events.v1, each with its payload schema (see proto/chat/events/v1).
// Producers and consumers name topics only through this table.
import type { DescMessage } from "@bufbuild/protobuf";
import {
  MembershipChangedSchema,
  MessageCreatedSchema,
  PushDeadLetteredSchema,
  PushRequestedSchema,
  ReceiptUpdatedSchema,
} from "../../../gen/chat/events/v1/events_pb.js";
import type { TopicSpec } from "./bus/port.js";

export interface Topic<D extends DescMessage = DescMessage> {
  name: string;
  schema: D;
  /** What the record key is. */
  key: "conversation_id" | "user_id";
}

export const topics = {
  messageCreated: { name: "chat.messages.v1", schema: MessageCreatedSchema, key: "conversation_id" },
  receiptUpdated: { name: "chat.receipts.v1", schema: ReceiptUpdatedSchema, key: "conversation_id" },
  membershipChanged: { name: "chat.membership.v1", schema: MembershipChangedSchema, key: "conversation_id" },
  pushRequested: { name: "chat.push.v1", schema: PushRequestedSchema, key: "user_id" },
  pushDeadLettered: { name: "chat.push.dlq.v1", schema: PushDeadLetteredSchema, key: "user_id" },
} as const satisfies Record<string, Topic>;

/** Partitions per topic when the project creates them (override with KAFKA_PARTITIONS). */
export function topicSpecs(partitions: number): TopicSpec[] {
  return Object.values(topics).map((t) => ({ name: t.name, partitions }));
}
