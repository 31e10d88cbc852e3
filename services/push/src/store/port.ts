// The push service's storage port: targets, mutes and preview settings. One SQL implementation
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
  health(): Promise<void>;
  close(): Promise<void>;
}
