// Embedded driver: the registries in process memory (one node, nothing to persist: sessions and
// edges re-register themselves within one heartbeat after a restart).
import type { Edge, Session } from "../../../../gen/chat/connection/v1/connection_pb.js";
import { isLive } from "../domain/liveness.js";
import type { RegistryStore } from "./port.js";

interface Entry<T> {
  value: T;
  expiresAtMs: number;
}

export function createEmbeddedRegistry(now: () => number = Date.now): RegistryStore {
  const sessions = new Map<string, Map<string, Entry<Session>>>();
  const edges = new Map<string, Entry<Edge>>();
  return {
    async putSessions(list, ttlMs) {
      const expiresAtMs = now() + ttlMs;
      for (const session of list) {
        let byId = sessions.get(session.userId);
        if (byId === undefined) sessions.set(session.userId, (byId = new Map<string, Entry<Session>>()));
        byId.set(session.sessionId, { value: session, expiresAtMs });
      }
    },
    async removeSessions(list) {
      let removed = 0;
      for (const session of list) {
        const byId = sessions.get(session.userId);
        if (byId?.delete(session.sessionId) === true) removed++;
        if (byId?.size === 0) sessions.delete(session.userId);
      }
      return removed;
    },
    async listSessions(userIds) {
      const t = now();
      const out = new Map<string, Session[]>();
      for (const userId of userIds) {
        const byId = sessions.get(userId);
        if (byId === undefined) continue;
        const live: Session[] = [];
        for (const [id, entry] of byId) {
          if (isLive(entry.expiresAtMs, t)) live.push(entry.value);
          else byId.delete(id);
        }
        if (byId.size === 0) sessions.delete(userId);
        out.set(userId, live);
      }
      return out;
    },
    async putEdge(edge, ttlMs) {
      edges.set(edge.edgeId, { value: edge, expiresAtMs: now() + ttlMs });
    },
    async listEdges() {
      const t = now();
      const live: Edge[] = [];
      for (const [id, entry] of edges) {
        if (isLive(entry.expiresAtMs, t)) live.push(entry.value);
        else edges.delete(id);
      }
      return live;
    },
    async health() {},
    async close() {},
  };
}
