// Embedded driver: presence in process memory (one node).
import type { UserPresence } from "../domain/visibility.js";
import type { PresenceStore, Watcher, WentOffline } from "./port.js";

/** A device on an edge: the same device may be live on two edges while it moves. */
const slot = (deviceId: string, edgeId: string) => `${deviceId} ${edgeId}`;
const watcherKey = (w: Watcher) => `${w.viewerId}\n${w.deviceId}`;

export function createEmbeddedPresence(opts: { ttlMs: number }): PresenceStore {
  /** user -> device slot -> last heard (Unix ms). */
  const devices = new Map<string, Map<string, number>>();
  const lastSeen = new Map<string, number>();
  const hidden = new Set<string>();
  /** watched user -> watcher key -> watcher. */
  const watchersOf = new Map<string, Map<string, Watcher>>();
  /** viewer -> device -> watched users. */
  const watching = new Map<string, Map<string, Set<string>>>();

  /** When the user was last heard from through any device (0 when never or swept). */
  const heard = (userId: string): number => Math.max(0, ...(devices.get(userId)?.values() ?? []));
  const live = (heardMs: number, nowMs: number) => heardMs > nowMs - opts.ttlMs;

  const goOffline = (userId: string, lastSeenMs: number): WentOffline => {
    devices.delete(userId);
    lastSeen.set(userId, lastSeenMs);
    return { userId, lastSeenMs };
  };

  return {
    async heartbeat(edgeId, list, nowMs) {
      const cameOnline: string[] = [];
      for (const { userId, deviceId } of list) {
        let byDevice = devices.get(userId);
        if (byDevice === undefined) devices.set(userId, (byDevice = new Map<string, number>()));
        const wasOnline = live(heard(userId), nowMs);
        const key = slot(deviceId, edgeId);
        byDevice.set(key, Math.max(nowMs, byDevice.get(key) ?? 0));
        if (!wasOnline && !cameOnline.includes(userId)) cameOnline.push(userId);
      }
      return cameOnline;
    },
    async disconnect(edgeId, list, nowMs) {
      const out: WentOffline[] = [];
      for (const { userId, deviceId, lastActiveMs } of list) {
        const byDevice = devices.get(userId);
        if (byDevice?.delete(slot(deviceId, edgeId)) !== true) continue;
        if (!live(heard(userId), nowMs)) out.push(goOffline(userId, lastActiveMs || nowMs));
      }
      return out;
    },
    async sweep(nowMs) {
      const out: WentOffline[] = [];
      for (const userId of [...devices.keys()]) {
        const last = heard(userId);
        if (!live(last, nowMs)) out.push(goOffline(userId, last));
      }
      return out;
    },
    async get(userIds, nowMs) {
      const out = new Map<string, UserPresence>();
      for (const userId of userIds) {
        const last = heard(userId);
        const online = live(last, nowMs);
        // Expired but not swept yet: last seen is when it was last heard from.
        const seen = last > 0 ? last : lastSeen.get(userId);
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
    async watch(watcher, userIds, limit) {
      let byDevice = watching.get(watcher.viewerId);
      const current = byDevice?.get(watcher.deviceId) ?? new Set<string>();
      if (new Set([...current, ...userIds]).size > limit) return false;
      if (byDevice === undefined) watching.set(watcher.viewerId, (byDevice = new Map<string, Set<string>>()));
      byDevice.set(watcher.deviceId, current);
      for (const userId of userIds) {
        current.add(userId);
        let of = watchersOf.get(userId);
        if (of === undefined) watchersOf.set(userId, (of = new Map<string, Watcher>()));
        of.set(watcherKey(watcher), { viewerId: watcher.viewerId, deviceId: watcher.deviceId });
      }
      return true;
    },
    async unwatch(watcher, userIds) {
      const current = watching.get(watcher.viewerId)?.get(watcher.deviceId);
      for (const userId of userIds) {
        current?.delete(userId);
        const of = watchersOf.get(userId);
        of?.delete(watcherKey(watcher));
        if (of?.size === 0) watchersOf.delete(userId);
      }
    },
    async dropWatchers(viewerIds, nowMs) {
      for (const viewerId of viewerIds) {
        if (live(heard(viewerId), nowMs)) continue;
        for (const [deviceId, users] of watching.get(viewerId) ?? []) {
          for (const userId of users) {
            const of = watchersOf.get(userId);
            of?.delete(watcherKey({ viewerId, deviceId }));
            if (of?.size === 0) watchersOf.delete(userId);
          }
        }
        watching.delete(viewerId);
      }
    },
    async watchers(userIds) {
      const out = new Map<string, Watcher[]>();
      for (const userId of userIds) {
        const of = watchersOf.get(userId);
        if (of !== undefined && of.size > 0) out.set(userId, [...of.values()]);
      }
      return out;
    },
    async health() {},
    async close() {},
  };
}
