// The message store's storage port. Two drivers: embedded (SQL on PGlite) and cassandra.
// One contract suite (test/store.contract.test.ts) runs against both.
import type { Message } from "../../../../gen/chat/api/v1/model_pb.js";
import type { Watermarks } from "../domain/receipts.js";

/** What a new message carries before the store gives it a seq. */
export interface NewMessage {
  conversationId: string;
  messageId: string;
  clientMsgId: string;
  senderId: string;
  senderDeviceId: string;
  serverTime: Date;
  content: Message["content"];
}

export interface AppendResult {
  message: Message;
  /** False when (conversation, sender, client_msg_id) was already stored: the stored message is returned. */
  created: boolean;
}

export interface AppendOptions {
  /**
   * The caller looked every message up with findStored after the last append of it that could
   * have finished, and keeps repeats of it out meanwhile: the driver may skip its own lookup
   * (Cassandra: one read per message less in the conversation's one-at-a-time section).
   */
  checked?: boolean;
}

/**
 * Which replica may write a conversation's seqs now: this one, another (the caller forwards the
 * append there), or none yet (the caller answers "retry shortly").
 */
export type Writer = { kind: "self" } | { kind: "peer"; address: string } | { kind: "none" };

export interface MessageStore {
  /**
   * Stores the message with seq = last seq + 1, atomically and durably. Idempotent per
   * (conversation, sender, client_msg_id). Callers serialise appends per conversation, and append
   * only where `writer` says this replica writes; the store refuses (Unavailable, with a retry
   * hint) when it does not, so a seq is never written by two replicas.
   */
  append(message: NewMessage): Promise<AppendResult>;
  /**
   * Appends several messages of ONE conversation with consecutive seqs in the order given, as
   * `append` does each (idempotent per message; a repeat of an earlier item returns its result).
   * The Cassandra driver writes them in its shared unlogged batches.
   */
  appendBatch(messages: NewMessage[], opts?: AppendOptions): Promise<AppendResult[]>;
  /**
   * The message stored for (conversation, sender, client_msg_id), if any: what a retry of it is
   * answered with. Lets a caller look retries up before it queues a message for its seq.
   * `firstAttemptAtMs`: when an edge received the client's first send of it (the client said so):
   * a driver that knows every message it stored since before then may answer without reading
   * (Cassandra: see `recent` in its driver).
   */
  findStored(conversationId: string, senderId: string, clientMsgId: string, firstAttemptAtMs?: number): Promise<Message | undefined>;
  /** Who writes the conversation's seqs now (the embedded driver: always this process). */
  writer(conversationId: string): Writer;
  /** The highest seq of a conversation (0 when empty). */
  lastSeq(conversationId: string): Promise<number>;
  /** Messages with lo <= seq <= hi, ascending. */
  range(conversationId: string, lo: number, hi: number): Promise<Message[]>;
  /**
   * Raises a member's receipt watermarks to at least `to` (never lowers them, even under concurrent
   * reports); returns the watermarks after and whether they moved.
   */
  raiseWatermarks(conversationId: string, userId: string, to: Watermarks): Promise<{ watermarks: Watermarks; changed: boolean }>;
  /** The watermarks of every member who has any, by user. */
  watermarks(conversationId: string): Promise<Map<string, Watermarks>>;
  /**
   * After a stored message: every member's inbox learns the conversation reached `seq`, and the
   * sender (when there is one) has read up to it. Never lowers either. One round trip where the
   * driver allows.
   */
  afterAppend(conversationId: string, seq: number, memberIds: string[], senderId: string): Promise<void>;
  /** A user's inbox: the last seq of every conversation with messages, by conversation. */
  inbox(userId: string): Promise<Map<string, number>>;
  health(): Promise<void>;
  close(): Promise<void>;
}
