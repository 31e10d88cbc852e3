// The presence service's storage port. Liveness: each device is heard from through the edge that
// holds it (a heartbeat per edge batch); a user is online while any device was heard from within
// the TTL, through any edge. Transitions are returned to the caller exactly once (even with several
// presence processes), so it can fan them out. Subscriptions: which devices watch whom. Drivers:
// embedded (memory) and redis.
import type { UserPresence } from "../domain/visibility.js";

export interface Device {
  userId: string;
  deviceId: string;
}

/** A device that left, and when it was last heard from (0: at the call's time). */
export interface LeavingDevice extends Device {
  lastActiveMs?: number;
}

export interface WentOffline {
  userId: string;
  lastSeenMs: number;
}

/** A device subscribed to presence changes. */
export interface Watcher {
  viewerId: string;
  deviceId: string;
}

export interface PresenceStore {
  /** The devices are live on this edge as of nowMs; returns the users that were offline and are now online. */
  heartbeat(edgeId: string, devices: Device[], nowMs: number): Promise<string[]>;
  /** The devices closed on this edge; returns the users left with no live device (last seen: the device's last activity). */
  disconnect(edgeId: string, devices: LeavingDevice[], nowMs: number): Promise<WentOffline[]>;
  /** Users none of whose devices was heard from within the TTL: offline, last seen when last heard from. */
  sweep(nowMs: number): Promise<WentOffline[]>;
  get(userIds: string[], nowMs: number): Promise<Map<string, UserPresence>>;
  setShowLastSeen(userId: string, show: boolean): Promise<void>;
  /** Users among these who show their last seen (the default). */
  showsLastSeen(userIds: string[]): Promise<Set<string>>;
  /** Subscribes a device to users; false (and nothing stored) when it would then watch more than `limit`. */
  watch(watcher: Watcher, userIds: string[], limit: number): Promise<boolean>;
  unwatch(watcher: Watcher, userIds: string[]): Promise<void>;
  /** Ends every subscription of every device of these viewers, unless they are live again (they went offline). */
  dropWatchers(viewerIds: string[], nowMs: number): Promise<void>;
  /** The devices watching each of these users (absent: none). */
  watchers(userIds: string[]): Promise<Map<string, Watcher[]>>;
  health(): Promise<void>;
  close(): Promise<void>;
}
