// EdgeService, the edge's internal face: routing hands it events for the sessions it holds.
import type { ServiceImpl } from "@connectrpc/connect";
import type { EdgeService } from "../../../gen/chat/edge/v1/edge_pb.js";
import { tracer } from "../../../packages/runtime/src/telemetry/index.js";
import { invalidArgument } from "../../../packages/runtime/src/errors.js";
import type { ConnectionTable } from "./domain/connections.js";

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
      // The recipients' frames are written inside the Deliver server span, in one child span for
      // the request (not one per frame: cheap at any fan-out).
      const span = tracer("chat.edge").startSpan("write events to sockets", { attributes: { "chat.events": req.deliveries.length } });
      let delivered = 0;
      const gone: string[] = [];
      try {
        for (const delivery of req.deliveries) {
          const event = delivery.event;
          if (event === undefined) continue; // protovalidate requires it; kept for the type checker
          const sender = event.kind.case === "message" ? event.kind.value.message?.senderId : undefined;
          const sessionIds = delivery.sessionSet === undefined ? delivery.sessionIds : req.sessionSets[delivery.sessionSet]?.sessionIds;
          if (sessionIds === undefined) throw invalidArgument(`deliveries: session_set ${delivery.sessionSet} is not in session_sets`);
          // The same event object for every session: connections encode it once per encoding.
          for (const sessionId of sessionIds) {
            const conn = table.get(sessionId);
            if (conn !== undefined && delivery.excludeDeviceId !== "" && conn.deviceId === delivery.excludeDeviceId && conn.userId === sender) continue;
            if (conn === undefined || !conn.send(event)) gone.push(sessionId);
            else delivered++;
          }
        }
      } finally {
        span.setAttributes({ "chat.delivered": delivered, "chat.gone": gone.length });
        span.end();
      }
      return { delivered, goneSessionIds: gone };
    },
    async drain(req) {
      return { clients: await drain(req.deadlineMs || defaultDrainMs) };
    },
  };
}
