// Fan-out rules, pure: which sessions get an event (grouped per edge, one Deliver per edge), and
// which members get a push instead.
import type { Session } from "../../../../gen/chat/connection/v1/connection_pb.js";

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
