// The group service's storage port: conversations and memberships. One SQL implementation runs on
// both drivers (embedded PGlite and PostgreSQL); one contract suite tests both.
import type { ConversationInfo, Membership } from "../../../../gen/chat/group/v1/group_pb.js";
import type { ChangeSpec, GroupState } from "../domain/changes.js";

export interface MemberRow {
  userId: string;
  role: number;
  joinedSeq: number;
  joinedAt: Date;
}

/** A recorded group change; appliedSeq is set once the change is in the history and applied. */
export interface RecordedChange {
  changeId: string;
  conversationId: string;
  spec: ChangeSpec;
  appliedSeq: number | undefined;
}

export interface NewGroup {
  conversationId: string;
  /** The CREATED change the group starts with (pending until its system message is stored). */
  changeId: string;
  creatorId: string;
  title: string;
  /** Initial members besides the creator, without duplicates. */
  memberIds: string[];
  memberLimit: number;
  /** The creator's idempotency key; empty for none. */
  createKey: string;
}

export type BeginResult =
  | { status: "begun"; change: ChangeSpec }
  | { status: "unchanged" }
  | { status: "missing" }
  /** Another change of the conversation is between begin and apply. */
  | { status: "busy"; pendingChangeId: string; pendingForMs: number };

export interface GroupStore {
  /** Returns the direct conversation of the pair, creating it (race-safe) when missing. */
  getOrCreateDirect(a: string, b: string, newId: string): Promise<{ conversation: ConversationInfo; created: boolean }>;
  getConversation(conversationId: string): Promise<ConversationInfo | undefined>;
  getMembership(conversationId: string, userId: string): Promise<Membership | undefined>;
  /** Current members ordered by user id, after `afterUserId`. */
  listMembers(conversationId: string, afterUserId: string, limit: number): Promise<MemberRow[]>;
  /**
   * Several conversations with their current members ordered by user id (undefined for one of more
   * than `maxMembers` members); unknown and deleted ones left out. Each conversation is read before
   * its members, so its membership_seq is at most what they reflect.
   */
  membersOfMany(conversationIds: string[], maxMembers: number): Promise<{ conversation: ConversationInfo; members: MemberRow[] | undefined }[]>;
  /** The user's current memberships ordered by conversation id, after `afterConversationId`; only conversations of at least `minMembers` members. */
  listUserMemberships(userId: string, afterConversationId: string, limit: number, minMembers?: number): Promise<{ membership: Membership; conversation: ConversationInfo }[]>;
  /**
   * The user's memberships (current or past) of these conversations, plus their current
   * memberships in conversations of at least `minMembers` members (0: none); deleted conversations left out.
   */
  userMemberships(userId: string, conversationIds: string[], minMembers: number): Promise<{ membership: Membership; conversation: ConversationInfo }[]>;
  /** Those of `others` who share at least one conversation with `userId`, both as current members. */
  filterContacts(userId: string, others: string[]): Promise<string[]>;
  /**
   * Creates a group with its members (creator as owner) and its pending CREATED change, or returns
   * the group this creator already made with this createKey (created=false).
   */
  createGroup(group: NewGroup): Promise<{ conversation: ConversationInfo; created: boolean; pendingChangeId: string | undefined }>;
  /**
   * Records a change, checked by `check` against the group's state (with the roles of `users`, the
   * actor and the members it names) while the conversation is held: changes of one conversation
   * are begun one at a time (until applied or abandoned).
   */
  beginChange(conversationId: string, changeId: string, users: string[], check: (state: GroupState) => ChangeSpec | undefined): Promise<BeginResult>;
  /** Applies a begun change as of its system message's seq and releases the conversation. Idempotent. */
  applyChange(changeId: string, seq: number): Promise<void>;
  /** Forgets a begun change that will not happen (its system message was refused) and releases the conversation. */
  abandonChange(changeId: string): Promise<void>;
  getChange(changeId: string): Promise<RecordedChange | undefined>;
  /** Changes begun at least `olderThanMs` ago and still not applied (to finish after a crash). */
  pendingChanges(olderThanMs: number): Promise<RecordedChange[]>;
  /** Deletes a group after `check` allowed it; returns the members it had. */
  deleteGroup(conversationId: string, actorId: string, check: (state: GroupState) => void): Promise<string[] | undefined>;
  health(): Promise<void>;
  close(): Promise<void>;
}
