// EdgeService, the edge's internal face: routing hands it events for the sessions it holds.
import type { ServiceImpl } from "@connectrpc/connect";
import type { Event } from "../../../gen/chat/api/v1/events_pb.js";
import type { EdgeService } from "../../../gen/chat/edge/v1/edge_pb.js";
import { context } from "@opentelemetry/api";
import { tracer } from "../../../packages/runtime/src/telemetry/index.js";
import { extractTraceContext } from "../../../packages/runtime/src/telemetry/propagation.js";
import { invalidArgument } from "../../../packages/runtime/src/errors.js";
import type { ClientConnection, ConnectionTable } from "./domain/connections.js";

export interface EdgeHandlerOptions {
  table: ConnectionTable;
  /** Stops taking clients and asks those connected to move within `withinMs`; returns how many. */
  drain: (withinMs: number) => Promise<number>;
  /** The drain deadline when the request gives none. */
  defaultDrainMs: number;
}

export function createEdgeHandler({ table, drain, defaultDrainMs }: EdgeHandlerOptions): ServiceImpl<typeof EdgeService> {
  return {
    async deliver(req) {
      // Each event's frames are written in a span of its own trace (its trace headers; the Deliver
      // server span's trace when it has none): one span per event, not per socket, so cheap at any
      // fan-out. First every connection's share of the request is gathered, then each connection
      // is written once: a group's batch of messages is one write per socket, not one per message.
      const spans = req.deliveries.map((delivery) => {
        const parent = Object.keys(delivery.traceHeaders).length === 0 ? context.active() : extractTraceContext(delivery.traceHeaders);
        return tracer("chat.edge").startSpan("write event to sockets", {}, parent);
      });
      const written = req.deliveries.map(() => 0);
      const gone: string[] = [];
      const reached = new Set<string>();
      try {
        /** Each connection's deliveries (indexes into req.deliveries), in request order. */
        const shares = new Map<ClientConnection, number[]>();
        const take = (conn: ClientConnection, i: number) => {
          const share = shares.get(conn);
          if (share === undefined) shares.set(conn, [i]);
          else if (share.at(-1) !== i) share.push(i);
        };
        const events = req.deliveries.map((d) => d.event);
        for (const [i, delivery] of req.deliveries.entries()) {
          const event = delivery.event;
          if (event === undefined) continue; // protovalidate requires it; kept for the type checker
          const sender = event.kind.case === "message" ? event.kind.value.message?.senderId : undefined;
          const skip = (conn: ClientConnection) => delivery.excludeDeviceId !== "" && conn.deviceId === delivery.excludeDeviceId && conn.userId === sender;
          if (delivery.userSet !== undefined) {
            // Every session here of the named users: this edge's own table says which.
            const userIds = req.userSets[delivery.userSet]?.userIds;
            if (userIds === undefined) throw invalidArgument(`deliveries: user_set ${delivery.userSet} is not in user_sets`);
            for (const userId of userIds) for (const conn of table.ofUser(userId)) if (!skip(conn)) take(conn, i);
            continue;
          }
          const sessionIds = delivery.sessionSet === undefined ? delivery.sessionIds : req.sessionSets[delivery.sessionSet]?.sessionIds;
          if (sessionIds === undefined) throw invalidArgument(`deliveries: session_set ${delivery.sessionSet} is not in session_sets`);
          for (const sessionId of sessionIds) {
            const conn = table.get(sessionId);
            if (conn === undefined) gone.push(sessionId);
            else if (!skip(conn)) take(conn, i);
          }
        }
        // Connections with the same share get the same list (it is framed once per encoding).
        const lists = new Map<string, Event[]>();
        for (const [conn, share] of shares) {
          const key = share.join(",");
          let list = lists.get(key);
          if (list === undefined) lists.set(key, (list = share.flatMap((i) => events[i] ?? [])));
          const ok = conn.send(list);
          for (const i of share) {
            const byUser = req.deliveries[i]?.userSet !== undefined;
            if (ok) {
              written[i]++;
              if (byUser) reached.add(conn.userId);
            } else if (!byUser) gone.push(conn.sessionId);
          }
        }
      } finally {
        spans.forEach((span, i) => {
          span.setAttribute("chat.delivered", written[i] ?? 0);
          span.end();
        });
      }
      return { delivered: written.reduce((a, b) => a + b, 0), goneSessionIds: [...new Set(gone)], reachedUserIds: [...reached] };
    },
    async drain(req) {
      return { clients: await drain(req.deadlineMs || defaultDrainMs) };
    },
  };
}
