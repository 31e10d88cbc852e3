// The group service's storage port: conversations and memberships. One SQL implementation runs on
// both drivers (embedded PGlite and PostgreSQL); one contract suite tests both.
import type { ConversationInfo, Membership } from "../../../../gen/chat/group/v1/group_pb.js";

export interface MemberRow {
  userId: string;
  role: number;
  joinedSeq: number;
  joinedAt: Date;
}

export interface GroupStore {
  /** Returns the direct conversation of the pair, creating it (race-safe) when missing. */
  getOrCreateDirect(a: string, b: string, newId: string): Promise<{ conversation: ConversationInfo; created: boolean }>;
  getConversation(conversationId: string): Promise<ConversationInfo | undefined>;
  getMembership(conversationId: string, userId: string): Promise<Membership | undefined>;
  /** Current members ordered by user id, after `afterUserId`. */
  listMembers(conversationId: string, afterUserId: string, limit: number): Promise<MemberRow[]>;
  /** The user's current memberships ordered by conversation id, after `afterConversationId`. */
  listUserMemberships(userId: string, afterConversationId: string, limit: number): Promise<{ membership: Membership; conversation: ConversationInfo }[]>;
  health(): Promise<void>;
  close(): Promise<void>;
}
