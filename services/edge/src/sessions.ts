// The edge's sessions: every live client connection (WebSocket or Connect Subscribe stream) is
// registered with the connection service (so routing can find it) and reported to presence. Both
// are refreshed in one batch per interval for all sessions, never one call per client.
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { SessionSchema, type ConnectionService, type Session } from "../../../gen/chat/connection/v1/connection_pb.js";
import type { PresenceService } from "../../../gen/chat/presence/v1/presence_pb.js";
import type { Logger } from "../../../packages/runtime/src/log.js";
import type { Caller } from "./api/caller.js";
import type { ClientConnection, ConnectionTable } from "./domain/connections.js";

const BATCH = 5_000;

export interface SessionManagerOptions {
  edgeId: string;
  table: ConnectionTable;
  connection: Client<typeof ConnectionService>;
  presence: Client<typeof PresenceService>;
  refreshMs: number;
  logger: Logger;
}

export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: SessionManagerOptions) {
    this.timer = setInterval(() => void this.refresh(), opts.refreshMs);
    this.timer.unref();
  }

  newSessionId(): string {
    return `${this.opts.edgeId}/${randomUUID()}`;
  }

  /** Makes a connection reachable: in the local table first, then registered and online. */
  async open(caller: Caller, conn: ClientConnection): Promise<void> {
    const session = create(SessionSchema, { sessionId: conn.sessionId, userId: caller.userId, deviceId: caller.deviceId, edgeId: this.opts.edgeId, connectedAtMs: BigInt(Date.now()) });
    this.opts.table.add(conn);
    this.sessions.set(conn.sessionId, session);
    await Promise.all([
      this.opts.connection.registerSession({ session }),
      this.opts.presence.heartbeat({ edgeId: this.opts.edgeId, devices: [{ userId: caller.userId, deviceId: caller.deviceId }] }),
    ]);
  }

  /** The connection went away: unregistered, and the device reported gone. */
  async close(sessionId: string): Promise<void> {
    const session = this.sessions.get(sessionId);
    this.opts.table.remove(sessionId);
    if (session === undefined) return;
    this.sessions.delete(sessionId);
    try {
      await Promise.all([
        this.opts.connection.unregisterSessions({ sessions: [session] }),
        this.opts.presence.disconnect({ devices: [{ userId: session.userId, deviceId: session.deviceId }] }),
      ]);
    } catch (err) {
      this.opts.logger.warn({ err, sessionId }, "session cleanup failed; it expires by itself");
    }
  }

  /** One heartbeat for every session of this edge, in batches. */
  async refresh(): Promise<void> {
    const all = [...this.sessions.values()];
    for (let i = 0; i < all.length; i += BATCH) {
      const batch = all.slice(i, i + BATCH);
      try {
        await Promise.all([
          this.opts.connection.refreshSessions({ edgeId: this.opts.edgeId, sessions: batch }),
          this.opts.presence.heartbeat({ edgeId: this.opts.edgeId, devices: batch.map((s) => ({ userId: s.userId, deviceId: s.deviceId })) }),
        ]);
      } catch (err) {
        this.opts.logger.warn({ err }, "session refresh failed; retrying next interval");
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
