// Pure rules of the session and edge registries: what counts as live, and which edge a new client
// is sent to. No I/O here; both store drivers and the handler use these.
import type { Edge } from "../../../../gen/chat/connection/v1/connection_pb.js";

/** A registry entry lives until its deadline (Unix ms). */
export const isLive = (expiresAtMs: number, nowMs: number): boolean => expiresAtMs > nowMs;

/** The least-loaded live edge that is not draining; ties go to the freshest heartbeat. */
export function pickEdge(edges: Edge[], nowMs: number, ttlMs: number): Edge | undefined {
  let best: Edge | undefined;
  for (const edge of edges) {
    if (edge.draining || !isLive(Number(edge.heartbeatAtMs) + ttlMs, nowMs)) continue;
    if (
      best === undefined ||
      edge.connections < best.connections ||
      (edge.connections === best.connections && edge.heartbeatAtMs > best.heartbeatAtMs)
    ) {
      best = edge;
    }
  }
  return best;
}
