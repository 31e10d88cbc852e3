// Handing events to the edges that hold their sessions (EdgeService.Deliver), shared by routing
// (messages, receipts) and presence (presence changes, typing): deliveries grouped into bounded
// Deliver requests with shared session lists, edge addresses from the connection service (cached),
// a deadline per call, and an edge that cannot be reached (killed, partitioned) skipped for a
// moment instead of holding everyone else's deliveries: its clients reconnect to another edge and
// catch up from their cursors. Sessions an edge reports gone are dropped from the registry.
import { create } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import type { Event } from "../../../gen/chat/api/v1/events_pb.js";
import type { ConnectionService, Session } from "../../../gen/chat/connection/v1/connection_pb.js";
import { DeliverRequestSchema, DeliverySchema, EdgeService, SessionSetSchema, type DeliverRequest } from "../../../gen/chat/edge/v1/edge_pb.js";
import { TtlCache } from "./cache.js";
import { peerClient } from "./clients.js";
import type { Logger } from "./log.js";

/** One event for some sessions of one edge. */
export interface EdgeDelivery {
  sessionIds: string[];
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
  /** False when the edge was not registered or did not answer: nothing reached its sessions. */
  reached: boolean;
}

/** At most this many session ids and deliveries in one EdgeService.Deliver request (it stays well under 4 MB). */
export const MAX_DELIVER_ENTRIES = 20_000;

/**
 * Deliveries to one edge as Deliver requests, in order: deliveries with the same sessions (a
 * conversation's messages) share one session set, and a request holds at most `maxEntries`
 * session ids and deliveries.
 */
export function deliverRequests(deliveries: EdgeDelivery[], maxEntries = MAX_DELIVER_ENTRIES): DeliverRequest[] {
  const out: DeliverRequest[] = [];
  let current = create(DeliverRequestSchema);
  let sets = new Map<string, number>();
  let entries = 0;
  for (const d of deliveries) {
    const key = d.sessionIds.join("\n");
    const known = sets.get(key);
    const cost = 1 + (known === undefined ? d.sessionIds.length : 0);
    if (entries > 0 && entries + cost > maxEntries) {
      out.push(current);
      current = create(DeliverRequestSchema);
      sets = new Map();
      entries = 0;
    }
    let index = sets.get(key);
    if (index === undefined) {
      index = current.sessionSets.length;
      current.sessionSets.push(create(SessionSetSchema, { sessionIds: d.sessionIds }));
      sets.set(key, index);
      entries += d.sessionIds.length;
    }
    current.deliveries.push(create(DeliverySchema, { event: d.event, sessionSet: index, ...(d.traceHeaders === undefined ? {} : { traceHeaders: d.traceHeaders }) }));
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
    const outcome: EdgeOutcome = { edgeId, delivered: 0, gone: [], reached: false };
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
      }
      outcome.reached = true;
      this.failed.delete(edgeId);
    } catch (err) {
      this.failed.set(edgeId, this.now() + this.skipFailedMs);
      this.addresses.clear(); // it may have moved or gone: look again next time
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

  private async address(edgeId: string): Promise<string | undefined> {
    const load = async () => new Map((await this.opts.connection.listEdges({})).edges.map((e) => [e.edgeId, e.grpcAddress]));
    const known = await this.addresses.get("all", load);
    if (known.has(edgeId)) return known.get(edgeId);
    this.addresses.clear(); // a new edge: look again once
    return (await this.addresses.get("all", load)).get(edgeId);
  }
}
