// Fan-out rules, pure: which sessions get an event (grouped per edge, one Deliver per edge), and
// which members get a push instead.
import { create } from "@bufbuild/protobuf";
import type { Event } from "../../../../gen/chat/api/v1/events_pb.js";
import type { Session } from "../../../../gen/chat/connection/v1/connection_pb.js";
import { DeliverRequestSchema, DeliverySchema, SessionSetSchema, type DeliverRequest } from "../../../../gen/chat/edge/v1/edge_pb.js";

export interface Fanout {
  /** Session ids per edge id. */
  byEdge: Map<string, string[]>;
  /** Members with no live session (to notify by push), the sender excluded. */
  offline: string[];
}

/**
 * Every live session of every member gets the event, except the device that sent it (it already
 * has the answer to its send); members without sessions are offline, unless they are the sender.
 */
export function fanout(members: string[], sessions: Map<string, Session[]>, sender?: { userId: string; deviceId: string }): Fanout {
  const byEdge = new Map<string, string[]>();
  const offline: string[] = [];
  for (const userId of members) {
    const live = sessions.get(userId) ?? [];
    if (live.length === 0) {
      if (userId !== sender?.userId) offline.push(userId);
      continue;
    }
    for (const s of live) {
      if (sender !== undefined && s.userId === sender.userId && s.deviceId === sender.deviceId) continue;
      const list = byEdge.get(s.edgeId);
      if (list === undefined) byEdge.set(s.edgeId, [s.sessionId]);
      else list.push(s.sessionId);
    }
  }
  return { byEdge, offline };
}

/** At most this many session ids and deliveries in one EdgeService.Deliver request (it stays well under 4 MB). */
export const MAX_DELIVER_ENTRIES = 20_000;

/**
 * Deliveries to one edge as Deliver requests, in order: deliveries with the same sessions (a
 * conversation's messages) share one session set, and a request holds at most `maxEntries`
 * session ids and deliveries.
 */
export function deliverRequests(deliveries: { sessionIds: string[]; event: Event }[], maxEntries = MAX_DELIVER_ENTRIES): DeliverRequest[] {
  const out: DeliverRequest[] = [];
  let current = create(DeliverRequestSchema);
  let sets = new Map<string, number>();
  let entries = 0;
  for (const d of deliveries) {
    const key = d.sessionIds.join("\n");
    const known = sets.get(key);
    const cost = 1 + (known === undefined ? d.sessionIds.length : 0);
    if (entries > 0 && entries + cost > maxEntries) {
      out.push(current);
      current = create(DeliverRequestSchema);
      sets = new Map();
      entries = 0;
    }
    let index = sets.get(key);
    if (index === undefined) {
      index = current.sessionSets.length;
      current.sessionSets.push(create(SessionSetSchema, { sessionIds: d.sessionIds }));
      sets.set(key, index);
      entries += d.sessionIds.length;
    }
    current.deliveries.push(create(DeliverySchema, { event: d.event, sessionSet: index }));
    entries++;
  }
  if (current.deliveries.length > 0) out.push(current);
  return out;
}

/** A small time-bounded cache (member lists, edge addresses). */
export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; until: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(key: string, load: () => Promise<V>): Promise<V> {
    const hit = this.entries.get(key);
    if (hit !== undefined && hit.until > this.now()) return hit.value;
    const value = await load();
    this.entries.set(key, { value, until: this.now() + this.ttlMs });
    return value;
  }

  set(key: string, value: V): void {
    this.entries.set(key, { value, until: this.entries.get(key)?.until ?? this.now() + this.ttlMs });
  }

  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }
}
