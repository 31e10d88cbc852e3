// How the public API shows a conversation: the group service's facts joined with the message
// store's state for one viewer. Pure.
import { create } from "@bufbuild/protobuf";
import { ConversationSchema, type Conversation } from "../../../../gen/chat/api/v1/model_pb.js";
import type { ConversationInfo, Membership } from "../../../../gen/chat/group/v1/group_pb.js";
import type { ConversationState } from "../../../../gen/chat/messagestore/v1/messagestore_pb.js";

const bigMin = (a: bigint, b: bigint) => (a < b ? a : b);
const bigMax = (a: bigint, b: bigint) => (a > b ? a : b);

export function conversationView(info: ConversationInfo, membership: Membership | undefined, state: ConversationState | undefined, peerId = ""): Conversation {
  const ms = Number(info.createdAtMs);
  return create(ConversationSchema, {
    conversationId: info.conversationId,
    type: info.type,
    title: info.title,
    memberCount: info.memberCount,
    lastSeq: state?.lastSeq ?? 0n,
    ...(state?.lastMessage === undefined ? {} : { lastMessage: state.lastMessage }),
    // Nothing from before the viewer joined counts as unread.
    unreadCount: bigMin(state?.unreadCount ?? 0n, bigMax(0n, (state?.lastSeq ?? 0n) - (membership?.visibleFromSeq ?? 0n))),
    readSeq: state?.watermarks?.readSeq ?? 0n,
    role: membership?.role ?? 0,
    createdAt: { seconds: BigInt(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 },
    peerId,
  });
}
