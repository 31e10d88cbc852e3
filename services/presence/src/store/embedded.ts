// Embedded driver: presence in process memory (one node).
import type { UserPresence } from "../domain/visibility.js";
import type { PresenceStore, WentOffline } from "./port.js";

export function createEmbeddedPresence(): PresenceStore {
  /** user -> device -> deadline (Unix ms). */
  const devices = new Map<string, Map<string, number>>();
  const lastSeen = new Map<string, number>();
  const hidden = new Set<string>();

  /** The latest deadline of the user's devices (0 when none). */
  const latest = (userId: string): number => Math.max(0, ...(devices.get(userId)?.values() ?? []));

  /** The user's devices are all gone: record last seen and report the transition once. */
  const goOffline = (userId: string, lastSeenMs: number): WentOffline => {
    devices.delete(userId);
    lastSeen.set(userId, lastSeenMs);
    return { userId, lastSeenMs };
  };

  return {
    async heartbeat(list, expiresAtMs, nowMs) {
      const cameOnline: string[] = [];
      for (const { userId, deviceId } of list) {
        let byDevice = devices.get(userId);
        if (byDevice === undefined) devices.set(userId, (byDevice = new Map<string, number>()));
        const wasOnline = latest(userId) > nowMs;
        byDevice.set(deviceId, Math.max(expiresAtMs, byDevice.get(deviceId) ?? 0));
        if (!wasOnline && !cameOnline.includes(userId)) cameOnline.push(userId);
      }
      return cameOnline;
    },
    async disconnect(list, nowMs) {
      const out: WentOffline[] = [];
      for (const { userId, deviceId } of list) {
        const byDevice = devices.get(userId);
        if (byDevice?.delete(deviceId) !== true) continue;
        if (latest(userId) <= nowMs) out.push(goOffline(userId, nowMs));
      }
      return out;
    },
    async sweep(nowMs) {
      const out: WentOffline[] = [];
      for (const userId of [...devices.keys()]) {
        const deadline = latest(userId);
        if (deadline <= nowMs) out.push(goOffline(userId, deadline));
      }
      return out;
    },
    async get(userIds, nowMs) {
      const out = new Map<string, UserPresence>();
      for (const userId of userIds) {
        const deadline = latest(userId);
        const online = deadline > nowMs;
        // Expired but not swept yet: last seen is when the last device's deadline passed.
        const seen = deadline > 0 ? deadline : lastSeen.get(userId);
        out.set(userId, online || seen === undefined ? { online } : { online, lastSeenMs: seen });
      }
      return out;
    },
    async setShowLastSeen(userId, show) {
      if (show) hidden.delete(userId);
      else hidden.add(userId);
    },
    async showsLastSeen(userIds) {
      return new Set(userIds.filter((u) => !hidden.has(u)));
    },
    async health() {},
    async close() {},
  };
}
