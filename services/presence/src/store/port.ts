// The presence service's storage port. A device is live until its heartbeat deadline; a user is
// online while any device is live. Transitions are returned to the caller exactly once (even with
// several presence processes), so it can fan them out. Drivers: embedded (memory) and redis.
import type { UserPresence } from "../domain/visibility.js";

export interface Device {
  userId: string;
  deviceId: string;
}

export interface WentOffline {
  userId: string;
  lastSeenMs: number;
}

export interface PresenceStore {
  /** Devices are live until expiresAtMs; returns the users that were offline and are now online. */
  heartbeat(devices: Device[], expiresAtMs: number, nowMs: number): Promise<string[]>;
  /** Devices closed cleanly; returns the users whose last device this was. */
  disconnect(devices: Device[], nowMs: number): Promise<WentOffline[]>;
  /** Users whose every device passed its deadline: offline with last seen = that deadline. */
  sweep(nowMs: number): Promise<WentOffline[]>;
  get(userIds: string[], nowMs: number): Promise<Map<string, UserPresence>>;
  setShowLastSeen(userId: string, show: boolean): Promise<void>;
  /** Users among these who show their last seen (the default). */
  showsLastSeen(userIds: string[]): Promise<Set<string>>;
  health(): Promise<void>;
  close(): Promise<void>;
}
