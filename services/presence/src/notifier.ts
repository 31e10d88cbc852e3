// Presence's fan-out: presence changes to the devices that watch the changed users, and typing
// indicators to the other members' devices. Live sessions come from the connection service, one
// lookup per batch; each edge that holds some gets one EdgeService.Deliver per batch
// (packages/runtime/src/edge-delivery.ts). Only subscribers and members are ever sent anything.
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { Client } from "@connectrpc/connect";
import { EventSchema, type Event } from "../../../gen/chat/api/v1/events_pb.js";
import type { ConnectionService, Session } from "../../../gen/chat/connection/v1/connection_pb.js";
import { PerEdge, type EdgeDeliverer } from "../../../packages/runtime/src/edge-delivery.js";
import type { Logger } from "../../../packages/runtime/src/log.js";
import { meter } from "../../../packages/runtime/src/telemetry/index.js";
import { presenceFor, seesLastSeen } from "./domain/visibility.js";
import type { PresenceStore, Watcher } from "./store/port.js";

/** A presence transition: online, or offline with last seen. */
export interface PresenceChange {
  userId: string;
  online: boolean;
  lastSeenMs?: number;
}

/** ConnectionService.ListSessions takes at most this many users per call. */
const LIST_SESSIONS_MAX = 2_000;

export interface NotifierOptions {
  store: PresenceStore;
  connection: Client<typeof ConnectionService>;
  deliverer: EdgeDeliverer;
  logger: Logger;
}

export class Notifier {
  private readonly metrics = {
    presence: meter("chat.presence").createCounter("presence.events", { description: "Presence change events written to watching devices, as the edges report them" }),
    typing: meter("chat.presence").createCounter("presence.typing_events", { description: "Typing events written to members' devices, as the edges report them" }),
  };

  constructor(private readonly opts: NotifierOptions) {}

  /** Each change, in order, to every device watching its user, as that viewer may see it. */
  async presenceChanged(changes: PresenceChange[]): Promise<void> {
    const users = [...new Set(changes.map((c) => c.userId))];
    const watchers = await this.opts.store.watchers(users);
    if (watchers.size === 0) return;
    const [shows, sessions] = await Promise.all([this.opts.store.showsLastSeen([...watchers.keys()]), this.sessionsOf([...new Set([...watchers.values()].flat().map((w) => w.viewerId))])]);
    const perEdge = new PerEdge();
    for (const change of changes) {
      // At most two versions of the event: with last seen (the user themself, or a user who shows it) and without.
      const events = new Map<boolean, Event>();
      const eventFor = (visible: boolean): Event => {
        let e = events.get(visible);
        if (e === undefined) {
          const presence = presenceFor(change.userId, change, visible);
          events.set(visible, (e = create(EventSchema, { kind: { case: "presence", value: { presence } } })));
        }
        return e;
      };
      for (const w of watchers.get(change.userId) ?? []) {
        const devices = devicesOf(sessions, w);
        if (devices.length > 0) perEdge.add(devices, eventFor(seesLastSeen(w.viewerId, change.userId, shows.has(change.userId))));
      }
    }
    this.metrics.presence.add(await this.deliver(perEdge, sessions));
  }

  /** A typing indicator (or its end) to the live devices of the conversation's members but the typer. */
  async typing(conversationId: string, userId: string, typing: boolean, expiresAtMs: number, memberIds: string[]): Promise<void> {
    const others = memberIds.filter((m) => m !== userId);
    if (others.length === 0) return;
    const sessions = await this.sessionsOf(others);
    const event = create(EventSchema, { kind: { case: "typing", value: { conversationId, userId, typing, expiresAt: timestampFromMs(expiresAtMs) } } });
    const perEdge = new PerEdge();
    perEdge.add([...sessions.values()].flat(), event);
    this.metrics.typing.add(await this.deliver(perEdge, sessions));
  }

  private async sessionsOf(userIds: string[]): Promise<Map<string, Session[]>> {
    const out = new Map<string, Session[]>();
    for (let i = 0; i < userIds.length; i += LIST_SESSIONS_MAX) {
      const r = await this.opts.connection.listSessions({ userIds: userIds.slice(i, i + LIST_SESSIONS_MAX) });
      for (const u of r.users) out.set(u.userId, u.sessions);
    }
    return out;
  }

  /** Every edge's deliveries at once; returns the frames written. */
  private async deliver(perEdge: PerEdge, sessions: Map<string, Session[]>): Promise<number> {
    if (perEdge.byEdge.size === 0) return 0;
    const byId = new Map([...sessions.values()].flat().map((s) => [s.sessionId, s] as const));
    const outcomes = await Promise.all([...perEdge.byEdge].map(([edgeId, deliveries]) => this.opts.deliverer.deliver(edgeId, deliveries, byId)));
    return outcomes.reduce((n, o) => n + o.delivered, 0);
  }
}

const devicesOf = (sessions: Map<string, Session[]>, w: Watcher): Session[] => (sessions.get(w.viewerId) ?? []).filter((s) => s.deviceId === w.deviceId);
