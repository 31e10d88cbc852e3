// The send path's step 3: a stored event becomes deliveries. Members come from the group service
// (cached, and kept current by the membership changes in the stream), their live sessions from the
// connection service (unless the audience goes to every live edge by user: domain/fanout.ts), and
// each edge that holds sessions gets one EdgeService.Deliver per batch
// (packages/runtime/src/edge-delivery.ts). Members with no live session, or whose sessions all
// missed the event (their edge died), get one PushRequested each.
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { context, type Context } from "@opentelemetry/api";
import type { Event } from "../../../gen/chat/api/v1/events_pb.js";
import type { Message } from "../../../gen/chat/api/v1/model_pb.js";
import type { ConnectionService, Session } from "../../../gen/chat/connection/v1/connection_pb.js";
import { PushRequestedSchema } from "../../../gen/chat/events/v1/events_pb.js";
import type { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import type { Bus } from "../../../packages/runtime/src/bus/port.js";
import { TtlCache } from "../../../packages/runtime/src/cache.js";
import { EdgeDeliverer, type EdgeDelivery } from "../../../packages/runtime/src/edge-delivery.js";
import type { Logger } from "../../../packages/runtime/src/log.js";
import { meter } from "../../../packages/runtime/src/telemetry/index.js";
import { injectTraceHeaders, withSpanFor } from "../../../packages/runtime/src/telemetry/propagation.js";
import { topics } from "../../../packages/runtime/src/topics.js";
import { MembersLoader } from "../../../packages/runtime/src/members.js";
import { BY_USER_MAX_EDGES, BY_USER_MIN_AUDIENCE, fanout, goesToEveryEdge, unreached, unreachedByUser, type Fanout } from "./domain/fanout.js";

export interface RouterOptions {
  group: Client<typeof GroupService>;
  connection: Client<typeof ConnectionService>;
  bus: Bus;
  logger: Logger;
  memberCacheMs: number;
  /** Audiences at least this large go to every live edge by user (domain/fanout.ts); default BY_USER_MIN_AUDIENCE. */
  byUserMinAudience?: number;
  /** With this many live edges or fewer, every audience goes by user (domain/fanout.ts); default BY_USER_MAX_EDGES. */
  byUserMaxEdges?: number;
}

/** One event to route. */
export interface RouteItem {
  conversationId: string;
  event: Event;
  /** The sending device, which already has its message. */
  sender?: { userId: string; deviceId: string };
  /** For messages: members with no live session get a push about it. */
  pushFor?: Message;
  /** For system messages: the membership change they record (applied to the members from here on). */
  change?: MembershipDelta;
  /** The trace context of the event (its consumer span): its Deliver and push request continue it. */
  trace?: Context;
}

/** What a system message at `seq` does to the member list. */
export interface MembershipDelta {
  seq: number;
  joined: string[];
  left: string[];
  /** Users the change names, who get its message even when they are leaving. */
  named: string[];
}

interface MemberList {
  ids: Set<string>;
  /** The membership change the list reflects. */
  seq: number;
}

export interface RouterStats {
  eventsConsumed: number;
  deliveries: number;
  pushRequests: number;
}

type TracedDelivery = EdgeDelivery & { trace: Context };

export class Router {
  readonly stats: RouterStats = { eventsConsumed: 0, deliveries: 0, pushRequests: 0 };
  private readonly members: TtlCache<MemberList>;
  /** The highest membership change seen in the stream per conversation: a list loaded later must reflect it. */
  private readonly knownChange = new Map<string, number>();
  private readonly deliverer: EdgeDeliverer;
  private readonly memberLists: MembersLoader;
  /** Prometheus (/metrics): routing_events_total, routing_deliveries_total, routing_push_requests_total. */
  private readonly metrics = {
    events: meter("chat.routing").createCounter("routing.events", { description: "Events consumed (messages and receipts)" }),
    deliveries: meter("chat.routing").createCounter("routing.deliveries", { description: "Events written to a live session, as the edges report them" }),
    pushRequests: meter("chat.routing").createCounter("routing.push_requests", { description: "PushRequested events published for members with no live session" }),
  };

  constructor(private readonly opts: RouterOptions) {
    this.members = new TtlCache(opts.memberCacheMs);
    this.deliverer = new EdgeDeliverer({ connection: opts.connection, logger: opts.logger });
    this.memberLists = new MembersLoader(opts.group);
  }


  /**
   * Routes a batch of events (one Kafka batch) with at most one session lookup for all their
   * members and one EdgeService.Deliver per edge, the deliveries in event order. Messages with
   * offline members produce their PushRequested events in one publish.
   */
  async route(items: RouteItem[]): Promise<void> {
    if (items.length === 0) return;
    this.stats.eventsConsumed += items.length;
    this.metrics.events.add(items.length);
    // The edge list is at most a second old and rarely costs a call.
    const [audiences, edges] = await Promise.all([this.audiences(items), this.deliverer.liveEdges()]);
    const limits = { minAudience: this.opts.byUserMinAudience ?? BY_USER_MIN_AUDIENCE, maxEdges: this.opts.byUserMaxEdges ?? BY_USER_MAX_EDGES };
    const byUser = audiences.map((a) => goesToEveryEdge(a.length, edges.length, limits));
    // Sessions are looked up only for the audiences that do not go to every live edge.
    const users = [...new Set(audiences.filter((_, i) => byUser[i] !== true).flat())];
    const listed = users.length === 0 ? [] : (await this.opts.connection.listSessions({ userIds: users })).users;
    const sessions = new Map<string, Session[]>(listed.map((u) => [u.userId, u.sessions]));
    const byId = new Map(listed.flatMap((u) => u.sessions.map((s) => [s.sessionId, s] as const)));
    const perEdge = new Map<string, TracedDelivery[]>();
    const add = (edgeId: string, delivery: TracedDelivery) => {
      const list = perEdge.get(edgeId);
      if (list === undefined) perEdge.set(edgeId, [delivery]);
      else list.push(delivery);
    };
    const active = context.active();
    // A plan per item delivered by session; undefined for those delivered by user.
    const plans: (Fanout | undefined)[] = items.map((item, i) => {
      const trace = item.trace ?? active;
      const audience = audiences[i] ?? [];
      if (byUser[i] === true) {
        const traceHeaders = edges.length === 0 ? {} : injectTraceHeaders(trace);
        for (const edgeId of edges) add(edgeId, { sessionIds: [], userIds: audience, excludeDeviceId: item.sender?.deviceId ?? "", event: item.event, trace, traceHeaders });
        return undefined;
      }
      const plan = fanout(audience, sessions, item.sender);
      const traceHeaders = plan.byEdge.size === 0 ? {} : injectTraceHeaders(trace);
      for (const [edgeId, sessionIds] of plan.byEdge) add(edgeId, { sessionIds, event: item.event, trace, traceHeaders });
      return plan;
    });
    // Each edge's deliveries in a span that is a child of the first event's trace and links to the
    // other events' (still one batched Deliver per edge): each message's trace reaches the edge.
    const outcomes = await Promise.all(
      [...perEdge].map(([edgeId, deliveries]) =>
        withSpanFor(`deliver ${deliveries.length} events to edge`, deliveries.map((d) => d.trace), () => this.deliverer.deliver(edgeId, deliveries, byId), {
          "chat.edge_id": edgeId,
          "chat.deliveries": deliveries.length,
        }),
      ),
    );
    const missed = new Set<string>();
    const reachedUsers = new Set<string>();
    for (const o of outcomes) {
      this.stats.deliveries += o.delivered;
      this.metrics.deliveries.add(o.delivered);
      for (const u of o.reachedUsers) reachedUsers.add(u);
      if (o.reached) for (const id of o.gone) missed.add(id);
      else for (const d of perEdge.get(o.edgeId) ?? []) for (const id of d.sessionIds) missed.add(id);
    }
    const pushes: { userId: string; message: Message; trace: Context }[] = [];
    for (const [i, item] of items.entries()) {
      if (item.pushFor === undefined) continue;
      const plan = plans[i];
      const offline = plan === undefined ? unreachedByUser(audiences[i] ?? [], reachedUsers, item.sender?.userId) : unreached(plan, missed);
      for (const userId of offline) pushes.push({ userId, message: item.pushFor, trace: item.trace ?? active });
    }
    if (pushes.length > 0) {
      // Each push request carries the trace of the message it is about.
      await this.opts.bus.publish(
        topics.pushRequested.name,
        pushes.map((p) => ({
          key: p.userId,
          value: toBinary(PushRequestedSchema, create(PushRequestedSchema, { userId: p.userId, message: p.message })),
          headers: injectTraceHeaders(p.trace),
        })),
      );
      this.stats.pushRequests += pushes.length;
      this.metrics.pushRequests.add(pushes.length);
    }
  }

  /**
   * Who gets each item, in order: each conversation's members as of that item. A system message
   * goes to the members and the users it names, then its change applies to the list, so nothing
   * after a removal reaches the removed member and everything after a join reaches the new one.
   */
  private async audiences(items: RouteItem[]): Promise<string[][]> {
    const conversations = [...new Set(items.map((i) => i.conversationId))];
    const lists = new Map(await Promise.all(conversations.map(async (c) => [c, await this.members.get(c, () => this.loadMembers(c))] as const)));
    const out = items.map((item) => {
      const list = lists.get(item.conversationId) ?? { ids: new Set<string>(), seq: 0 };
      const change = item.change;
      if (change === undefined) return [...list.ids];
      const audience = [...new Set([...list.ids, ...change.named])];
      if (change.seq > list.seq) {
        const ids = new Set(list.ids);
        for (const u of change.joined) ids.add(u);
        for (const u of change.left) ids.delete(u);
        lists.set(item.conversationId, { ids, seq: change.seq });
      }
      if (change.seq > (this.knownChange.get(item.conversationId) ?? 0)) this.knownChange.set(item.conversationId, change.seq);
      return audience;
    });
    for (const [c, list] of lists) this.members.set(c, list);
    if (this.knownChange.size > 100_000) this.knownChange.clear();
    return out;
  }

  private async loadMembers(conversationId: string): Promise<MemberList> {
    try {
      const r = await this.memberLists.load(conversationId, this.knownChange.get(conversationId) ?? 0);
      return { ids: new Set(r.members.map((m) => m.userId)), seq: Number(r.membershipSeq) };
    } catch (err) {
      // A conversation the group service does not know (deleted) has nobody to deliver to; any
      // other failure is transient and the batch is retried.
      if (ConnectError.from(err).code !== Code.NotFound) throw err;
      this.opts.logger.warn({ conversationId }, "event for an unknown conversation: nothing to deliver");
      return { ids: new Set(), seq: 0 };
    }
  }
}
