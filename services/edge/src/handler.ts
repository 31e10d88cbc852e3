// EdgeService, the edge's internal face: routing hands it events for the sessions it holds.
import type { ServiceImpl } from "@connectrpc/connect";
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
      // server span's trace when it has none): one span per event, not per socket, so cheap at any fan-out.
      let delivered = 0;
      const gone: string[] = [];
      const reached = new Set<string>();
      // Several events for the same connections (a batch of a group's messages): each socket's
      // frames go out together when the request is done.
      const corked = req.deliveries.length > 1 ? new Set<ClientConnection>() : undefined;
      try {
        for (const delivery of req.deliveries) {
          const parent = Object.keys(delivery.traceHeaders).length === 0 ? context.active() : extractTraceContext(delivery.traceHeaders);
          const span = tracer("chat.edge").startSpan("write event to sockets", {}, parent);
          let written = 0;
          try {
            const event = delivery.event;
            if (event === undefined) continue; // protovalidate requires it; kept for the type checker
            const sender = event.kind.case === "message" ? event.kind.value.message?.senderId : undefined;
            const skip = (conn: ClientConnection) => delivery.excludeDeviceId !== "" && conn.deviceId === delivery.excludeDeviceId && conn.userId === sender;
            // The same event object for every session: connections encode it once per encoding.
            const write = (conn: ClientConnection): boolean => {
              if (corked !== undefined && conn.cork !== undefined && !corked.has(conn)) {
                conn.cork();
                corked.add(conn);
              }
              if (!conn.send(event)) return false;
              written++;
              return true;
            };
            if (delivery.userSet !== undefined) {
              // Every session here of the named users: this edge's own table says which.
              const userIds = req.userSets[delivery.userSet]?.userIds;
              if (userIds === undefined) throw invalidArgument(`deliveries: user_set ${delivery.userSet} is not in user_sets`);
              for (const userId of userIds) for (const conn of table.ofUser(userId)) if (!skip(conn) && write(conn)) reached.add(userId);
              continue;
            }
            const sessionIds = delivery.sessionSet === undefined ? delivery.sessionIds : req.sessionSets[delivery.sessionSet]?.sessionIds;
            if (sessionIds === undefined) throw invalidArgument(`deliveries: session_set ${delivery.sessionSet} is not in session_sets`);
            for (const sessionId of sessionIds) {
              const conn = table.get(sessionId);
              if (conn !== undefined && skip(conn)) continue;
              if (conn === undefined || !write(conn)) gone.push(sessionId);
            }
          } finally {
            span.setAttribute("chat.delivered", written);
            span.end();
            delivered += written;
          }
        }
      } finally {
        for (const conn of corked ?? []) conn.uncork?.();
      }
      return { delivered, goneSessionIds: [...new Set(gone)], reachedUserIds: [...reached] };
    },
    async drain(req) {
      return { clients: await drain(req.deadlineMs || defaultDrainMs) };
    },
  };
}
