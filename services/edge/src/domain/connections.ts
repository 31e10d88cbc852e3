// The edge's table of live client connections (session id -> writer, and user id -> their
// connections here). Pure bookkeeping: the WebSocket gateway and the Connect Subscribe stream add
// and remove entries (sessions.ts).
import type { Event } from "../../../../gen/chat/api/v1/events_pb.js";

export interface ClientConnection {
  sessionId: string;
  userId: string;
  deviceId: string;
  /**
   * Writes events to the client, in order, in one write where it can (a Deliver's events for one
   * socket go out together); false when the connection is gone (nothing written). Connections that
   * get the same events of one Deliver are given the same array, so an encoding of it can be reused.
   */
  send(events: readonly Event[]): boolean;
  /** Asks the client to reconnect elsewhere and closes within the deadline. */
  drain(reason: string, withinMs: number): void;
}

const NONE: readonly ClientConnection[] = [];

export class ConnectionTable {
  private readonly bySession = new Map<string, ClientConnection>();
  private readonly byUser = new Map<string, ClientConnection[]>();
  draining = false;

  get size(): number {
    return this.bySession.size;
  }

  add(conn: ClientConnection): void {
    const previous = this.bySession.get(conn.sessionId);
    if (previous !== undefined) this.remove(previous.sessionId);
    this.bySession.set(conn.sessionId, conn);
    const mine = this.byUser.get(conn.userId);
    if (mine === undefined) this.byUser.set(conn.userId, [conn]);
    else mine.push(conn);
  }

  remove(sessionId: string): void {
    const conn = this.bySession.get(sessionId);
    if (conn === undefined) return;
    this.bySession.delete(sessionId);
    const left = (this.byUser.get(conn.userId) ?? []).filter((c) => c !== conn);
    if (left.length === 0) this.byUser.delete(conn.userId);
    else this.byUser.set(conn.userId, left);
  }

  get(sessionId: string): ClientConnection | undefined {
    return this.bySession.get(sessionId);
  }

  /** The user's connections here (none: an empty list). */
  ofUser(userId: string): readonly ClientConnection[] {
    return this.byUser.get(userId) ?? NONE;
  }

  all(): IterableIterator<ClientConnection> {
    return this.bySession.values();
  }
}
