// Fan-out rules, pure: which sessions get an event (grouped per edge, one Deliver per edge), and
// which members get a push instead.
import type { Session } from "../../../../gen/chat/connection/v1/connection_pb.js";

export interface Fanout {
  /** Session ids per edge id. */
  byEdge: Map<string, string[]>;
  /** Members with no live session (to notify by push), the sender excluded. */
  offline: string[];
  /** The session ids each other member is sent to: a member none of them reaches gets a push too. */
  targets: Map<string, string[]>;
}

/**
 * Every live session of every member gets the event, except the device that sent it (it already
 * has the answer to its send); members without sessions are offline, unless they are the sender.
 */
export function fanout(members: string[], sessions: Map<string, Session[]>, sender?: { userId: string; deviceId: string }): Fanout {
  const byEdge = new Map<string, string[]>();
  const offline: string[] = [];
  const targets = new Map<string, string[]>();
  for (const userId of members) {
    const live = sessions.get(userId) ?? [];
    if (live.length === 0) {
      if (userId !== sender?.userId) offline.push(userId);
      continue;
    }
    const mine: string[] = [];
    for (const s of live) {
      if (sender !== undefined && s.userId === sender.userId && s.deviceId === sender.deviceId) continue;
      const list = byEdge.get(s.edgeId);
      if (list === undefined) byEdge.set(s.edgeId, [s.sessionId]);
      else list.push(s.sessionId);
      mine.push(s.sessionId);
    }
    if (userId !== sender?.userId) targets.set(userId, mine);
  }
  return { byEdge, offline, targets };
}

/**
 * Members to notify by push after the deliveries: those offline, and those whose every targeted
 * session missed the event (its edge could not be reached, or no longer held the session).
 */
export function unreached(plan: Fanout, missed: ReadonlySet<string>): string[] {
  const out = [...plan.offline];
  for (const [userId, ids] of plan.targets) if (ids.every((id) => missed.has(id))) out.push(userId);
  return out;
}
