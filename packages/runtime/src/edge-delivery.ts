// Handing events to the edges that hold their sessions (EdgeService.Deliver), shared by routing
// (messages, receipts) and presence (presence changes, typing): deliveries grouped into bounded
// Deliver requests with shared session lists, edge addresses from the connection service (cached),
// a deadline per call, deliveries by user (every session of these users on the edge: a large
// group's messages go to every live edge), and an edge that cannot be reached (killed,
// partitioned) skipped for a moment instead of holding everyone else's deliveries: its clients
// reconnect to another edge and catch up from their cursors. Sessions an edge reports gone are
// dropped from the registry.
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { Event } from "../../../gen/chat/api/v1/events_pb.js";
import type { ConnectionService, Session } from "../../../gen/chat/connection/v1/connection_pb.js";
import { DeliverRequestSchema, DeliverySchema, EdgeService, SessionSetSchema, UserSetSchema, type DeliverRequest } from "../../../gen/chat/edge/v1/edge_pb.js";
import { TtlCache } from "./cache.js";
import { peerClient } from "./clients.js";
import type { Logger } from "./log.js";
import { wireBytesAtMost } from "./serial.js";
import { DEFAULT_READ_MAX_BYTES } from "./server.js";

/** One event for some sessions of one edge. */
export interface EdgeDelivery {
  sessionIds: string[];
  /** Instead of `sessionIds` (then empty): every session of these users on the edge... */
  userIds?: string[];
  /** ...except this device of the event's sender (the device that sent the message). */
  excludeDeviceId?: string;
  event: Event;
  /** The event's own trace context (W3C headers), carried to the edge's socket writes. */
  traceHeaders?: Record<string, string>;
}

/** What one edge did with its deliveries. */
export interface EdgeOutcome {
  edgeId: string;
  /** Frames the edge wrote to client connections. */
  delivered: number;
  /** Session ids the edge no longer holds. */
  gone: string[];
  /** Users of the deliveries by user that had a session there that got the event. */
  reachedUsers: string[];
  /** False when the edge was not registered or did not answer: nothing reached its sessions. */
  reached: boolean;
}

/**
 * How old the list of edges that deliveries by user go to may be. An edge takes clients only this
 * long (and a little more) after its first registration, so a list this fresh names every edge
 * that holds a client.
 */
export const EDGE_LIST_MAX_AGE_MS = 1_000;

/** At most this many session ids and deliveries in one EdgeService.Deliver request. */
export const MAX_DELIVER_ENTRIES = 20_000;
/**
 * Bytes of events one Deliver request carries at most, as `wireBytesAtMost` counts them: half the
 * edge's read limit (its internal server's default), leaving room for the session and user ids
 * (MAX_DELIVER_ENTRIES of them, some 40 bytes each). Without it, fourteen texts at the size limit
 * for one edge in one batch made a request the edge refused (ResourceExhausted).
 */
export const MAX_DELIVER_BYTES = DEFAULT_READ_MAX_BYTES / 2;

/** An event's size on the wire, at most (a message's text is the only large part any event has). */
const eventBytes = (event: Event): number =>
  wireBytesAtMost(event.kind.case === "message" && event.kind.value.message?.content.case === "text" ? event.kind.value.message.content.value : undefined);

/**
 * Deliveries to one edge as Deliver requests, in order: deliveries with the same sessions (a
 * conversation's messages) share one session set, and a request holds at most `maxEntries`
 * session ids and deliveries and at most `maxBytes` of events (one larger goes alone).
 */
export function deliverRequests(deliveries: EdgeDelivery[], maxEntries = MAX_DELIVER_ENTRIES, maxBytes = MAX_DELIVER_BYTES): DeliverRequest[] {
  const out: DeliverRequest[] = [];
  let current = create(DeliverRequestSchema);
  let sessionSets = new Map<string, number>();
  let userSets = new Map<string, number>();
  let entries = 0;
  let bytes = 0;
  for (const d of deliveries) {
    const byUser = d.userIds !== undefined;
    const ids = d.userIds ?? d.sessionIds;
    const key = ids.join("\n");
    const cost = 1 + ((byUser ? userSets : sessionSets).has(key) ? 0 : ids.length);
    const weight = eventBytes(d.event);
    if (entries > 0 && (entries + cost > maxEntries || bytes + weight > maxBytes)) {
      out.push(current);
      current = create(DeliverRequestSchema);
      sessionSets = new Map();
      userSets = new Map();
      entries = 0;
      bytes = 0;
    }
    bytes += weight;
    const sets = byUser ? userSets : sessionSets;
    let index = sets.get(key);
    if (index === undefined) {
      if (byUser) {
        index = current.userSets.length;
        current.userSets.push(create(UserSetSchema, { userIds: ids }));
      } else {
        index = current.sessionSets.length;
        current.sessionSets.push(create(SessionSetSchema, { sessionIds: ids }));
      }
      sets.set(key, index);
      entries += ids.length;
    }
    const target = byUser ? { userSet: index } : { sessionSet: index };
    current.deliveries.push(
      create(DeliverySchema, { event: d.event, ...target, excludeDeviceId: d.excludeDeviceId ?? "", ...(d.traceHeaders === undefined ? {} : { traceHeaders: d.traceHeaders }) }),
    );
    entries++;
  }
  if (current.deliveries.length > 0) out.push(current);
  return out;
}

/** Groups sessions' deliveries per edge: edge id -> deliveries, each edge's in the order added. */
export class PerEdge {
  readonly byEdge = new Map<string, EdgeDelivery[]>();

  /** One event for these sessions (on any edges). */
  add(sessions: Session[], event: Event): void {
    const ids = new Map<string, string[]>();
    for (const s of sessions) {
      const list = ids.get(s.edgeId);
      if (list === undefined) ids.set(s.edgeId, [s.sessionId]);
      else list.push(s.sessionId);
    }
    for (const [edgeId, sessionIds] of ids) this.addTo(edgeId, sessionIds, event);
  }

  addTo(edgeId: string, sessionIds: string[], event: Event): void {
    const list = this.byEdge.get(edgeId);
    if (list === undefined) this.byEdge.set(edgeId, [{ sessionIds, event }]);
    else list.push({ sessionIds, event });
  }
}

export interface EdgeDelivererOptions {
  connection: Client<typeof ConnectionService>;
  logger: Logger;
  /** Deadline of one Deliver call. */
  timeoutMs?: number;
  /** How long an edge that failed a call is skipped before it is tried again. */
  skipFailedMs?: number;
  now?: () => number;
}

export class EdgeDeliverer {
  private readonly addresses = new TtlCache<Map<string, string>>(2_000);
  /** The registered edges as of `at` (this.now() when the read began), for deliveries by user. */
  private edgeList: { ids: string[]; at: number } | undefined;
  /** Edges that failed a call, skipped until the time given. */
  private readonly failed = new Map<string, number>();
  private readonly timeoutMs: number;
  private readonly skipFailedMs: number;
  private readonly now: () => number;

  constructor(private readonly opts: EdgeDelivererOptions) {
    this.timeoutMs = opts.timeoutMs ?? 3_000;
    this.skipFailedMs = opts.skipFailedMs ?? 2_000;
    this.now = opts.now ?? Date.now;
  }

  /**
   * Writes the deliveries to one edge, in order. Sessions it reports gone are removed from the
   * registry (`sessions` gives their users). Never throws: an edge that cannot be reached is
   * reported not reached and skipped for a moment.
   */
  async deliver(edgeId: string, deliveries: EdgeDelivery[], sessions: ReadonlyMap<string, Session>): Promise<EdgeOutcome> {
    const outcome: EdgeOutcome = { edgeId, delivered: 0, gone: [], reachedUsers: [], reached: false };
    if ((this.failed.get(edgeId) ?? 0) > this.now()) return outcome;
    let address: string | undefined;
    try {
      address = await this.address(edgeId);
    } catch (err) {
      this.opts.logger.warn({ err, edgeId }, "edge lookup failed; its deliveries are skipped");
      return outcome;
    }
    if (address === undefined) {
      this.failed.set(edgeId, this.now() + this.skipFailedMs);
      this.opts.logger.warn({ edgeId }, "sessions on an edge that is not registered; they expire with it");
      return outcome;
    }
    const edge = peerClient(EdgeService, address);
    try {
      for (const request of deliverRequests(deliveries)) {
        const r = await edge.deliver(request, { timeoutMs: this.timeoutMs });
        outcome.delivered += r.delivered;
        outcome.gone.push(...r.goneSessionIds);
        outcome.reachedUsers.push(...r.reachedUserIds);
      }
      outcome.reached = true;
      this.failed.delete(edgeId);
    } catch (err) {
      outcome.reachedUsers = []; // as for its sessions: counted as reaching nobody
      this.failed.set(edgeId, this.now() + this.skipFailedMs);
      this.addresses.clear(); // it may have moved or gone: look again next time
      this.edgeList = undefined;
      this.opts.logger.warn({ err, edgeId, address }, "edge did not take its deliveries; skipping it for a moment (its clients resync on reconnect)");
      return outcome;
    }
    if (outcome.gone.length > 0) {
      const stale = outcome.gone.flatMap((id) => sessions.get(id) ?? []);
      try {
        await this.opts.connection.unregisterSessions({ sessions: stale });
      } catch (err) {
        this.opts.logger.warn({ err }, "could not drop gone sessions; they expire by themselves");
      }
    }
    return outcome;
  }

  /**
   * The ids of the registered edges, as of at most EDGE_LIST_MAX_AGE_MS ago: an edge that holds a
   * client is in it (edges take clients only that long after registering).
   */
  async liveEdges(): Promise<string[]> {
    const at = this.now();
    if (this.edgeList !== undefined && at - this.edgeList.at < EDGE_LIST_MAX_AGE_MS) return this.edgeList.ids;
    const known = await this.loadAddresses();
    this.addresses.set("all", known);
    this.edgeList = { ids: [...known.keys()], at };
    return this.edgeList.ids;
  }

  private async loadAddresses(): Promise<Map<string, string>> {
    return new Map((await this.opts.connection.listEdges({})).edges.map((e) => [e.edgeId, e.grpcAddress]));
  }

  private async address(edgeId: string): Promise<string | undefined> {
    const load = () => this.loadAddresses();
    const known = await this.addresses.get("all", load);
    if (known.has(edgeId)) return known.get(edgeId);
    this.addresses.clear(); // a new edge: look again once
    return (await this.addresses.get("all", load)).get(edgeId);
  }
}
