// The edge's table of live client connections (session id -> writer). Pure bookkeeping: the
// WebSocket gateway and the Connect Subscribe stream add and remove entries (sessions.ts).
import type { Event } from "../../../../gen/chat/api/v1/events_pb.js";

export interface ClientConnection {
  sessionId: string;
  userId: string;
  deviceId: string;
  /** Writes one event to the client; false when the connection is gone. */
  send(event: Event): boolean;
  /** Asks the client to reconnect elsewhere and closes within the deadline. */
  drain(reason: string, withinMs: number): void;
  /**
   * Holds writes back until uncork (a Deliver of several events then reaches the socket in one
   * system call instead of one per event). Optional: a connection may write as it goes.
   */
  cork?(): void;
  uncork?(): void;
}

export class ConnectionTable {
  private readonly bySession = new Map<string, ClientConnection>();
  draining = false;

  get size(): number {
    return this.bySession.size;
  }

  add(conn: ClientConnection): void {
    this.bySession.set(conn.sessionId, conn);
  }

  remove(sessionId: string): void {
    this.bySession.delete(sessionId);
  }

  get(sessionId: string): ClientConnection | undefined {
    return this.bySession.get(sessionId);
  }

  all(): IterableIterator<ClientConnection> {
    return this.bySession.values();
  }
}
