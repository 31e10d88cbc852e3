// The send path's step 3: a stored event becomes deliveries. Members come from the group service
// (cached briefly, dropped on membership events), their live sessions from the connection
// service, and each edge that holds sessions gets one EdgeService.Deliver per event. Members with
// no live session get one PushRequested each.
import { create, toBinary } from "@bufbuild/protobuf";
import type { Client } from "@connectrpc/connect";
import { EventSchema, type Event } from "../../../gen/chat/api/v1/events_pb.js";
import type { Message } from "../../../gen/chat/api/v1/model_pb.js";
import type { ConnectionService, Session } from "../../../gen/chat/connection/v1/connection_pb.js";
import { EdgeService } from "../../../gen/chat/edge/v1/edge_pb.js";
import { PushRequestedSchema } from "../../../gen/chat/events/v1/events_pb.js";
import type { GroupService } from "../../../gen/chat/group/v1/group_pb.js";
import type { Bus } from "../../../packages/runtime/src/bus/port.js";
import { peerClient } from "../../../packages/runtime/src/clients.js";
import type { Logger } from "../../../packages/runtime/src/log.js";
import { injectTraceHeaders } from "../../../packages/runtime/src/telemetry/propagation.js";
import { topics } from "../../../packages/runtime/src/topics.js";
import { fanout, TtlCache } from "./domain/fanout.js";

export interface RouterOptions {
  group: Client<typeof GroupService>;
  connection: Client<typeof ConnectionService>;
  bus: Bus;
  logger: Logger;
  memberCacheMs: number;
}

export interface RouterStats {
  eventsConsumed: number;
  deliveries: number;
  pushRequests: number;
}

export class Router {
  readonly stats: RouterStats = { eventsConsumed: 0, deliveries: 0, pushRequests: 0 };
  private readonly members: TtlCache<string[]>;
  private readonly edges = new TtlCache<Map<string, string>>(2_000);

  constructor(private readonly opts: RouterOptions) {
    this.members = new TtlCache(opts.memberCacheMs);
  }

  /** Forgets a conversation's cached members (a membership changed). */
  invalidate(conversationId: string): void {
    this.members.delete(conversationId);
  }

  async message(message: Message): Promise<void> {
    const event = create(EventSchema, { kind: { case: "message", value: { message } } });
    const offline = await this.deliver(message.conversationId, event, message.senderId === "" ? undefined : { userId: message.senderId, deviceId: message.senderDeviceId });
    if (offline.length === 0) return;
    const headers = injectTraceHeaders();
    await this.opts.bus.publish(
      topics.pushRequested.name,
      offline.map((userId) => ({ key: userId, value: toBinary(PushRequestedSchema, create(PushRequestedSchema, { userId, message })), headers })),
    );
    this.stats.pushRequests += offline.length;
  }

  async event(conversationId: string, event: Event): Promise<void> {
    await this.deliver(conversationId, event);
  }

  /** Delivers to every live session of the conversation's members; returns the offline members. */
  private async deliver(conversationId: string, event: Event, sender?: { userId: string; deviceId: string }): Promise<string[]> {
    this.stats.eventsConsumed++;
    const members = await this.members.get(conversationId, () => this.loadMembers(conversationId));
    const listed = await this.opts.connection.listSessions({ userIds: members });
    const sessions = new Map<string, Session[]>(listed.users.map((u) => [u.userId, u.sessions]));
    const plan = fanout(members, sessions, sender);
    await Promise.all(
      [...plan.byEdge].map(async ([edgeId, sessionIds]) => {
        const address = await this.edgeAddress(edgeId);
        if (address === undefined) {
          this.opts.logger.warn({ edgeId }, "sessions on an edge that is not registered; they expire with it");
          return;
        }
        const r = await peerClient(EdgeService, address).deliver({ deliveries: [{ sessionIds, event }] });
        this.stats.deliveries += r.delivered;
        if (r.goneSessionIds.length > 0) {
          const gone = new Set(r.goneSessionIds);
          const stale = [...sessions.values()].flat().filter((s) => gone.has(s.sessionId));
          await this.opts.connection.unregisterSessions({ sessions: stale });
        }
      }),
    );
    return plan.offline;
  }

  private async loadMembers(conversationId: string): Promise<string[]> {
    const ids: string[] = [];
    let pageToken = "";
    do {
      const page = await this.opts.group.listMembers({ conversationId, pageSize: 1024, pageToken });
      ids.push(...page.members.map((m) => m.userId));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    return ids;
  }

  private async edgeAddress(edgeId: string): Promise<string | undefined> {
    const load = async () => new Map((await this.opts.connection.listEdges({})).edges.map((e) => [e.edgeId, e.grpcAddress]));
    const known = await this.edges.get("all", load);
    if (known.has(edgeId)) return known.get(edgeId);
    this.edges.clear(); // a new edge: look again once
    return (await this.edges.get("all", load)).get(edgeId);
  }
}
