// PresenceService: online / offline / last seen from the edges' heartbeats, presence subscriptions
// (contacts only) and typing indicators. Transitions found by a heartbeat, a disconnect or the
// sweep are fanned out in order, in batches, to the devices that watch them (notifier.ts).
import type { Client, ServiceImpl } from "@connectrpc/connect";
import type { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import type { PresenceService } from "../../../gen/chat/presence/v1/presence_pb.js";
import { permissionDenied, resourceExhausted } from "../../../packages/runtime/src/errors.js";
import type { Logger } from "../../../packages/runtime/src/log.js";
import { currentMembership, MembersLoader } from "../../../packages/runtime/src/members.js";
import { TypingTracker, type TypingSettings } from "./domain/typing.js";
import { presenceFor, seesLastSeen } from "./domain/visibility.js";
import type { Notifier, PresenceChange } from "./notifier.js";
import type { PresenceStore } from "./store/port.js";

export interface PresenceHandlerOptions {
  store: PresenceStore;
  group: Client<typeof GroupService>;
  notifier: Notifier;
  /** A device not heard from for this long is gone (the store's TTL, told to the edges). */
  ttlMs: number;
  /** How often the sweeper looks for users whose devices all went quiet. */
  sweepIntervalMs: number;
  /** Users one device may watch at most. */
  maxWatchesPerDevice: number;
  typing: TypingSettings;
  logger: Logger;
  now?: () => number;
}

export interface PresenceRuntime {
  handler: ServiceImpl<typeof PresenceService>;
  /** Runs one sweep now (the timer runs them every sweepIntervalMs). */
  sweep(): Promise<void>;
  /** Resolves when every transition found so far has been fanned out. */
  settled(): Promise<void>;
  stop(): void;
}

const listed = (ids: string[]) => (ids.length > 5 ? `${ids.slice(0, 5).join(", ")} and ${ids.length - 5} more` : ids.join(", "));

export function createPresence(opts: PresenceHandlerOptions): PresenceRuntime {
  const { store, group, notifier, logger } = opts;
  const memberLists = new MembersLoader(group);
  const now = opts.now ?? Date.now;
  const typing = new TypingTracker(opts.typing, now);

  // Transitions queue up and go out in order, one batch at a time. A user who went offline also
  // loses their own subscriptions (their devices re-watch when they come back).
  const queue: PresenceChange[] = [];
  let pumping: Promise<void> | undefined;
  const pump = async () => {
    while (queue.length > 0) {
      const batch = queue.splice(0);
      try {
        await notifier.presenceChanged(batch);
        const offline = [...new Set(batch.filter((c) => !c.online).map((c) => c.userId))];
        if (offline.length > 0) await store.dropWatchers(offline, now());
      } catch (err) {
        logger.warn({ err, changes: batch.length }, "presence changes not fanned out");
      }
    }
    pumping = undefined;
  };
  const emit = (changes: PresenceChange[]) => {
    if (changes.length === 0) return;
    queue.push(...changes);
    pumping ??= pump();
  };

  const sweep = async () => emit((await store.sweep(now())).map((g) => ({ userId: g.userId, online: false, lastSeenMs: g.lastSeenMs })));
  const sweeper = setInterval(() => void sweep().catch((err: unknown) => logger.warn({ err }, "presence sweep failed")), opts.sweepIntervalMs);
  sweeper.unref();

  /** Fans out typing=false for indicators that lapsed without a refresh. */
  const lapse = async () => {
    for (const { conversationId, userId } of typing.expire()) {
      const members = await memberLists.load(conversationId);
      await notifier.typing(conversationId, userId, false, now(), members.members.map((m) => m.userId));
    }
  };
  const lapser = setInterval(() => void lapse().catch((err: unknown) => logger.warn({ err }, "typing expiry not fanned out")), Math.max(100, Math.min(1_000, opts.typing.ttlMs / 4)));
  lapser.unref();

  /** Presence is shown to contacts only: users who share a conversation with the viewer (and the viewer). */
  async function requireContacts(viewerId: string, userIds: string[]): Promise<void> {
    const others = [...new Set(userIds.filter((u) => u !== viewerId))];
    if (others.length === 0) return;
    const { contactIds } = await group.filterContacts({ userId: viewerId, otherUserIds: others });
    const contacts = new Set(contactIds);
    const refused = others.filter((u) => !contacts.has(u));
    if (refused.length > 0) throw permissionDenied(`presence is shown to contacts only; no conversation shared with ${listed(refused)}`);
  }

  async function presences(viewerId: string, userIds: string[]) {
    const [states, shows] = await Promise.all([store.get(userIds, now()), store.showsLastSeen(userIds)]);
    return userIds.map((userId) => presenceFor(userId, states.get(userId) ?? { online: false }, seesLastSeen(viewerId, userId, shows.has(userId))));
  }

  const handler: ServiceImpl<typeof PresenceService> = {
    async heartbeat(req) {
      emit((await store.heartbeat(req.edgeId, req.devices, now())).map((userId) => ({ userId, online: true })));
      return { ttlMs: opts.ttlMs };
    },
    async disconnect(req) {
      const devices = req.devices.map((d) => ({ userId: d.userId, deviceId: d.deviceId, lastActiveMs: Number(d.lastActiveMs) }));
      emit((await store.disconnect(req.edgeId, devices, now())).map((g) => ({ userId: g.userId, online: false, lastSeenMs: g.lastSeenMs })));
      return {};
    },
    async getPresence(req) {
      await requireContacts(req.viewerId, req.userIds);
      return { presences: await presences(req.viewerId, req.userIds) };
    },
    async watchPresence(req) {
      await requireContacts(req.viewerId, req.userIds);
      const stored = await store.watch({ viewerId: req.viewerId, deviceId: req.deviceId }, req.userIds, opts.maxWatchesPerDevice);
      if (!stored) throw resourceExhausted(`a device watches at most ${opts.maxWatchesPerDevice} users: unwatch some first`);
      return { presences: await presences(req.viewerId, req.userIds) };
    },
    async unwatchPresence(req) {
      await store.unwatch({ viewerId: req.viewerId, deviceId: req.deviceId }, req.userIds);
      return {};
    },
    async updatePrivacySettings(req) {
      await store.setShowLastSeen(req.userId, req.showLastSeen);
      return {};
    },
    async setTyping(req) {
      await currentMembership(group, req.conversationId, req.userId);
      const decision = typing.set(req.conversationId, req.userId, req.typing);
      if (decision.kind === "refused") throw resourceExhausted("typing indicators too often: slow down");
      if (decision.kind === "fanout") {
        const members = await memberLists.load(req.conversationId);
        await notifier.typing(req.conversationId, req.userId, decision.typing, decision.expiresAtMs, members.members.map((m) => m.userId));
      }
      return {};
    },
  };
  return {
    handler,
    sweep,
    settled: async () => {
      while (pumping !== undefined) await pumping;
    },
    stop: () => {
      clearInterval(sweeper);
      clearInterval(lapser);
    },
  };
}
