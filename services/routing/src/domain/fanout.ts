// Fan-out rules, pure: which sessions get an event (grouped per edge, one Deliver per edge), and
// which members get a push instead. A large audience, or any audience when there are only a few
// live edges, is not looked up session by session: its event goes to every live edge with the
// member list, and each edge writes to the members' sessions it holds (it knows them at once,
// with no registry in between).
import type { Session } from "../../../../gen/chat/connection/v1/connection_pb.js";

export interface Fanout {
  /** Session ids per edge id. */
  byEdge: Map<string, string[]>;
  /** Members with no live session (to notify by push), the sender excluded. */
  offline: string[];
  /** The session ids each other member is sent to: a member none of them reaches gets a push too. */
  targets: Map<string, string[]>;
}

/** Audiences at least this large go to every live edge by user instead of by session. */
export const BY_USER_MIN_AUDIENCE = 64;

/**
 * With this many live edges or fewer, every event goes to every live edge by user: each edge then
 * receives at most a few copies of an event it has no session for, which costs less than the
 * session lookup (one call to connection and Redis per batch, in series before the deliveries).
 */
export const BY_USER_MAX_EDGES = 4;

/** Whether an audience goes to every live edge by user rather than to its sessions. */
export const goesToEveryEdge = (audienceSize: number, liveEdges: number, limits: { minAudience: number; maxEdges: number }): boolean =>
  liveEdges <= limits.maxEdges || audienceSize >= limits.minAudience;

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

/**
 * Members to notify by push after a delivery by user to every live edge: those no edge reports
 * reaching (no session anywhere, or only on an edge that could not be reached), the sender excluded.
 */
export function unreachedByUser(audience: string[], reached: ReadonlySet<string>, senderId?: string): string[] {
  return audience.filter((u) => u !== senderId && !reached.has(u));
}
