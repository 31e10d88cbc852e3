// The push service's storage port: targets, mutes, preview settings and sent-records. One SQL implementation
// runs on both drivers (embedded PGlite and PostgreSQL); one contract suite tests both.
import type { PushPlatform } from "../../../../gen/chat/api/v1/enums_pb.js";

export interface TargetRow {
  targetId: string;
  userId: string;
  deviceId: string;
  platform: PushPlatform;
  details: Record<string, unknown>;
  updatedAt: Date;
}

/** One notification: a message to one target. */
export interface SendKey {
  messageId: string;
  targetId: string;
}

export type ClaimResult = "claimed" | "done" | "held";

export interface PushStore {
  /**
   * Inserts or updates the target of (user, device, platform). Refuses (returns "limit") a new one
   * when the user already has `maxPerUser` targets.
   */
  upsertTarget(target: Omit<TargetRow, "updatedAt">, maxPerUser: number): Promise<TargetRow | "limit">;
  listTargets(userId: string): Promise<TargetRow[]>;
  /** False when the user has no such target. */
  removeTarget(userId: string, targetId: string): Promise<boolean>;
  /** Muted until a time, or unmuted (undefined). */
  setMute(userId: string, conversationId: string, until: Date | undefined): Promise<void>;
  mutedUntil(userId: string, conversationId: string): Promise<Date | undefined>;
  setShowPreviews(userId: string, show: boolean): Promise<void>;
  showPreviews(userId: string): Promise<boolean>;
  /** Removes a target the provider reported gone, unless it was re-registered since (details changed). */
  removeGoneTarget(target: Pick<TargetRow, "targetId" | "details">): Promise<boolean>;
  /**
   * Claims the sending of one message to one target before it is sent: "claimed" (send it, then
   * finishSend), "done" (already sent or settled: skip), "held" (another live sender holds it;
   * its claim expires after leaseMs, then it may be taken over). A claim of the same owner is
   * claimed again.
   */
  claimSend(key: SendKey, owner: string, leaseMs: number): Promise<ClaimResult>;
  /** The claim's notification is settled (sent, or its target gone): never send it again. */
  finishSend(key: SendKey, owner: string): Promise<void>;
  /** Gives a claim up (dead-lettered): a replay of the event may send it. */
  releaseSend(key: SendKey, owner: string): Promise<void>;
  /** Forgets sent-records claimed before `before` (the end of the dedup window); returns how many. */
  pruneSent(before: Date): Promise<number>;
  health(): Promise<void>;
  close(): Promise<void>;
}
