// The edge's sessions: every live client connection (WebSocket or Connect Subscribe stream) is
// registered with the connection service (so routing can find it) and reported to presence.
// Registrations and departures that arrive together go out together (a reconnect storm costs a few
// calls, not one per client), and every session is refreshed in one batched call per interval,
// never one call per client. A device is reported gone when its last session on this edge closes.
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { randomUUID } from "node:crypto";
import { SessionSchema, type ConnectionService, type Session } from "../../../gen/chat/connection/v1/connection_pb.js";
import { DevicePresenceSchema, type DevicePresence, type PresenceService } from "../../../gen/chat/presence/v1/presence_pb.js";
import type { Logger } from "../../../packages/runtime/src/log.js";
import type { Caller } from "./api/caller.js";
import type { ClientConnection, ConnectionTable } from "./domain/connections.js";

/** Sessions per refresh call. */
const BATCH = 5_000;

export interface SessionManagerOptions {
  edgeId: string;
  table: ConnectionTable;
  connection: Client<typeof ConnectionService>;
  presence: Client<typeof PresenceService>;
  refreshMs: number;
  /** Clients connecting (reserve()) or sessions waiting for their registration at most; past it, new clients are turned away (admits()). */
  maxRegistering: number;
  logger: Logger;
}

interface Opening {
  session: Session;
  resolve: () => void;
  reject: (err: unknown) => void;
}

export class SessionManager {
  private readonly sessions = new Map<string, Session>();
  private accepting = false;
  /** Live sessions per user and device on this edge. */
  private readonly perDevice = new Map<string, number>();
  private opening: Opening[] = [];
  /** Sessions opened and not yet registered (queued or in a registration call). */
  private registering = 0;
  /** Clients admitted and not yet opened (handshake, authentication): see reserve(). */
  private arriving = 0;
  private closing: { sessions: Session[]; devices: DevicePresence[] } = { sessions: [], devices: [] };
  private flushScheduled = false;
  private readonly timer: NodeJS.Timeout;
  private readonly waiters = new Set<() => void>();

  constructor(private readonly opts: SessionManagerOptions) {
    this.timer = setInterval(() => void this.refresh(), opts.refreshMs);
    this.timer.unref();
  }

  /**
   * Whether a new client may connect now. While the connection and presence services fall behind
   * (a reconnect storm), clients are turned away with a retry hint instead of piling up
   * registrations that would time out and send them all back at once.
   */
  admits(): boolean {
    return this.accepting && this.registering + this.arriving < this.opts.maxRegistering;
  }

  /**
   * Holds a place among those admits() counts for a client whose handshake and authentication
   * come before its open() (so a burst that arrives at once cannot pass the check all together),
   * or undefined when admits() says no. The returned function gives the place back: once open()
   * has been called for the client, or when the client went away first. Calling it again does nothing.
   */
  reserve(): (() => void) | undefined {
    if (!this.admits()) return undefined;
    this.arriving++;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.arriving--;
    };
  }

  /** Takes clients from now on (main calls it once the edge is known to routing; until then admits() is false). */
  accept(): void {
    this.accepting = true;
  }

  /** When a client turned away by admits() should try again: whole seconds, 1 to 5, spread so the returns do not bunch. */
  retryAfterSeconds(): number {
    return 1 + Math.floor(Math.random() * 5);
  }

  newSessionId(): string {
    return `${this.opts.edgeId}/${randomUUID()}`;
  }

  /** Makes a connection reachable: in the local table at once; resolves once registered and online. */
  open(caller: Caller, conn: ClientConnection): Promise<void> {
    const session = create(SessionSchema, { sessionId: conn.sessionId, userId: caller.userId, deviceId: caller.deviceId, edgeId: this.opts.edgeId, connectedAtMs: BigInt(Date.now()) });
    this.opts.table.add(conn);
    this.sessions.set(conn.sessionId, session);
    const key = deviceKey(session);
    this.perDevice.set(key, (this.perDevice.get(key) ?? 0) + 1);
    this.registering++;
    return new Promise<void>((resolve, reject) => {
      this.opening.push({ session, resolve, reject });
      this.scheduleFlush();
    }).finally(() => {
      this.registering--;
    });
  }

  /** The connection went away: unregistered, and its device reported gone when it was the device's last here. */
  close(sessionId: string, lastActiveMs = Date.now()): void {
    const session = this.sessions.get(sessionId);
    this.opts.table.remove(sessionId);
    if (session === undefined) return;
    this.sessions.delete(sessionId);
    const key = deviceKey(session);
    const left = (this.perDevice.get(key) ?? 1) - 1;
    if (left > 0) this.perDevice.set(key, left);
    else {
      this.perDevice.delete(key);
      this.closing.devices.push(create(DevicePresenceSchema, { userId: session.userId, deviceId: session.deviceId, lastActiveMs: BigInt(lastActiveMs) }));
    }
    this.closing.sessions.push(session);
    this.scheduleFlush();
    if (this.opts.table.size === 0) for (const w of this.waiters) w();
  }

  /** One heartbeat for every session of this edge, in batches. */
  async refresh(): Promise<void> {
    const all = [...this.sessions.values()];
    for (let i = 0; i < all.length; i += BATCH) {
      const batch = all.slice(i, i + BATCH);
      try {
        await this.register(batch);
      } catch (err) {
        this.opts.logger.warn({ err }, "session refresh failed; retrying next interval");
      }
    }
  }

  /**
   * Asks every client to reconnect elsewhere within `withinMs` (the table is marked draining, so
   * no new client is taken); returns how many were asked.
   */
  drain(reason: string, withinMs: number): number {
    this.opts.table.draining = true;
    let clients = 0;
    for (const conn of this.opts.table.all()) {
      conn.drain(reason, withinMs);
      clients++;
    }
    return clients;
  }

  /** Resolves when no client is left, or after `timeoutMs`. */
  async emptied(timeoutMs: number): Promise<void> {
    if (this.opts.table.size === 0) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      this.waiters.add(done);
    });
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private register(sessions: Session[]): Promise<unknown> {
    return Promise.all([
      this.opts.connection.refreshSessions({ edgeId: this.opts.edgeId, sessions }),
      this.opts.presence.heartbeat({ edgeId: this.opts.edgeId, devices: sessions.map((s) => ({ userId: s.userId, deviceId: s.deviceId })) }),
    ]);
  }

  /** Sends what queued up in this turn of the event loop: one registration call, one departure call. */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      const opening = this.opening;
      this.opening = [];
      for (let i = 0; i < opening.length; i += BATCH) {
        const batch = opening.slice(i, i + BATCH);
        this.register(batch.map((o) => o.session)).then(
          () => {
            for (const o of batch) o.resolve();
          },
          (err: unknown) => {
            for (const o of batch) o.reject(err);
          },
        );
      }
      const { sessions, devices } = this.closing;
      this.closing = { sessions: [], devices: [] };
      for (let i = 0; i < Math.max(sessions.length, devices.length); i += BATCH) {
        const gone = sessions.slice(i, i + BATCH);
        const left = devices.slice(i, i + BATCH);
        Promise.all([
          gone.length === 0 ? undefined : this.opts.connection.unregisterSessions({ sessions: gone }),
          left.length === 0 ? undefined : this.opts.presence.disconnect({ edgeId: this.opts.edgeId, devices: left }),
        ]).catch((err: unknown) => this.opts.logger.warn({ err, sessions: gone.length }, "session cleanup failed; the sessions expire by themselves"));
      }
    });
  }
}

const deviceKey = (s: Session) => `${s.userId}\n${s.deviceId}`;
