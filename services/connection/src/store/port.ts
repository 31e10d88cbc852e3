// The connection service's storage port: the session registry (user -> devices -> edge) and the
// edge registry. Two drivers: embedded (in memory) and redis. One contract suite tests both.
import type { Edge, Session } from "../../../../gen/chat/connection/v1/connection_pb.js";

export interface RegistryStore {
  /** Adds or replaces a session; it lives for ttlMs unless refreshed. */
  putSessions(sessions: Session[], ttlMs: number): Promise<void>;
  /** Removes sessions; returns how many existed. */
  removeSessions(sessions: Session[]): Promise<number>;
  /** The live sessions of each user (an absent or empty entry: offline). */
  listSessions(userIds: string[]): Promise<Map<string, Session[]>>;
  /** Adds or refreshes an edge registration; it lives for ttlMs unless refreshed. */
  putEdge(edge: Edge, ttlMs: number): Promise<void>;
  /** The edges whose registration is live. */
  listEdges(): Promise<Edge[]>;
  health(): Promise<void>;
  close(): Promise<void>;
}
