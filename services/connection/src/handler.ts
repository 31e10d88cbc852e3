// ConnectionService: the session registry and edge assignment. State lives in the RegistryStore.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import type {
  ConnectionService} from "../../../gen/chat/connection/v1/connection_pb.js";
import {
  UserSessionsSchema,
} from "../../../gen/chat/connection/v1/connection_pb.js";
import { invalidArgument, unavailable } from "../../../packages/runtime/src/errors.js";
import { pickEdge } from "./domain/liveness.js";
import type { RegistryStore } from "./store/port.js";

export interface ConnectionHandlerOptions {
  store: RegistryStore;
  /** A session not refreshed for this long is gone. */
  sessionTtlMs: number;
  /** An edge not heard from for this long is dead. */
  edgeTtlMs: number;
  now?: () => number;
}

export function createConnectionHandler(opts: ConnectionHandlerOptions): ServiceImpl<typeof ConnectionService> {
  const { store, sessionTtlMs, edgeTtlMs } = opts;
  const now = opts.now ?? Date.now;
  return {
    async registerSession(req) {
      // protovalidate guarantees the session is set and its ids are well formed.
      const session = req.session;
      if (session === undefined) throw invalidArgument("session: required");
      await store.putSessions([{ ...session, connectedAtMs: session.connectedAtMs || BigInt(now()) }], sessionTtlMs);
      return {};
    },
    async unregisterSessions(req) {
      return { removed: await store.removeSessions(req.sessions) };
    },
    async refreshSessions(req) {
      const foreign = req.sessions.find((s) => s.edgeId !== req.edgeId);
      if (foreign !== undefined) {
        throw invalidArgument(`sessions[${foreign.sessionId}].edge_id: must be the refreshing edge "${req.edgeId}"`);
      }
      await store.putSessions(req.sessions, sessionTtlMs);
      return {};
    },
    async listSessions(req) {
      const byUser = await store.listSessions(req.userIds);
      return {
        users: req.userIds.map((userId) => create(UserSessionsSchema, { userId, sessions: byUser.get(userId) ?? [] })),
      };
    },
    async registerEdge(req) {
      const edge = req.edge;
      if (edge === undefined) throw invalidArgument("edge: required");
      await store.putEdge({ ...edge, heartbeatAtMs: BigInt(now()) }, edgeTtlMs);
      return { ttlMs: edgeTtlMs };
    },
    async assignEdge() {
      const edge = pickEdge(await store.listEdges(), now(), edgeTtlMs);
      if (edge === undefined) throw unavailable("no live edge is accepting clients");
      return { edge };
    },
    async listEdges() {
      return { edges: await store.listEdges() };
    },
  };
}
