// PresenceService: online / offline / last seen from the edges' heartbeats. Transitions are
// emitted on `changes` for the presence subscriptions of issue #5 (WatchPresence, typing).
import type { ServiceImpl } from "@connectrpc/connect";
import { EventEmitter } from "node:events";
import type { PresenceService } from "../../../gen/chat/presence/v1/presence_pb.js";
import { unimplemented } from "../../../packages/runtime/src/errors.js";
import type { Logger } from "../../../packages/runtime/src/log.js";
import { presenceFor } from "./domain/visibility.js";
import type { PresenceStore } from "./store/port.js";

export interface PresenceHandlerOptions {
  store: PresenceStore;
  /** A device not heard from for this long is gone. */
  ttlMs: number;
  /** How often the sweeper looks for users whose devices all expired. */
  sweepIntervalMs: number;
  logger: Logger;
  now?: () => number;
}

/** A presence transition: online, or offline with last seen. */
export interface PresenceChange {
  userId: string;
  online: boolean;
  lastSeenMs?: number;
}

export interface PresenceRuntime {
  handler: ServiceImpl<typeof PresenceService>;
  /** Emits "change" with a PresenceChange. */
  changes: EventEmitter;
  /** Runs one sweep now (the timer runs them every sweepIntervalMs). */
  sweep(): Promise<void>;
  stop(): void;
}

export function createPresence(opts: PresenceHandlerOptions): PresenceRuntime {
  const { store } = opts;
  const now = opts.now ?? Date.now;
  const changes = new EventEmitter();
  const emit = (change: PresenceChange) => changes.emit("change", change);

  const sweep = async () => {
    for (const gone of await store.sweep(now())) emit({ userId: gone.userId, online: false, lastSeenMs: gone.lastSeenMs });
  };
  const timer = setInterval(() => void sweep().catch((err: unknown) => opts.logger.warn({ err }, "presence sweep failed")), opts.sweepIntervalMs);
  timer.unref();

  const handler: ServiceImpl<typeof PresenceService> = {
    async heartbeat(req) {
      const t = now();
      for (const userId of await store.heartbeat(req.devices, t + opts.ttlMs, t)) emit({ userId, online: true });
      return { ttlMs: opts.ttlMs };
    },
    async disconnect(req) {
      for (const gone of await store.disconnect(req.devices, now())) emit({ userId: gone.userId, online: false, lastSeenMs: gone.lastSeenMs });
      return {};
    },
    async getPresence(req) {
      const [states, shows] = await Promise.all([store.get(req.userIds, now()), store.showsLastSeen(req.userIds)]);
      return {
        presences: req.userIds.map((userId) => presenceFor(req.viewerId, userId, states.get(userId) ?? { online: false }, shows.has(userId))),
      };
    },
    async updatePrivacySettings(req) {
      await store.setShowLastSeen(req.userId, req.showLastSeen);
      return {};
    },
    watchPresence() {
      throw unimplemented("PresenceService.WatchPresence", "issue #5");
    },
    setTyping() {
      throw unimplemented("PresenceService.SetTyping", "issue #5");
    },
  };
  return { handler, changes, sweep, stop: () => clearInterval(timer) };
}
