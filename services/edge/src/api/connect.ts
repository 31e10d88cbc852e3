// ChatService over Connect, gRPC and gRPC-Web: each unary method runs its operation as the
// authenticated caller; Subscribe streams the same events a WebSocket connection receives.
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import { SubscribeResponseSchema, SyncRequestSchema, type ChatService, type SubscribeResponse } from "../../../../gen/chat/api/v1/api_pb.js";
import { EventSchema, type Event } from "../../../../gen/chat/api/v1/events_pb.js";
import { busy, unavailable } from "../../../../packages/runtime/src/errors.js";
import type { ConnectionTable } from "../domain/connections.js";
import type { SessionManager } from "../sessions.js";
import { callerOf } from "./caller.js";
import type { Operations, UnaryMethod } from "./operations.js";

/** Events waiting for a slow Subscribe reader; past this the stream is ended (the client resyncs). */
const MAX_PENDING = 10_000;

export function createChatService(ops: Operations, sessions: SessionManager, table: ConnectionTable): ServiceImpl<typeof ChatService> {
  const unary = Object.fromEntries(
    (Object.keys(ops) as UnaryMethod[]).map((name) => [name, (req: never, ctx: HandlerContext) => (ops[name] as (c: unknown, r: never) => unknown)(callerOf(ctx), req)]),
  ) as unknown as Omit<ServiceImpl<typeof ChatService>, "subscribe">;
  return {
    ...unary,
    async *subscribe(req, ctx): AsyncGenerator<SubscribeResponse> {
      const caller = callerOf(ctx);
      if (table.draining) throw unavailable("this edge is draining: ask AssignEdge for another");
      if (!sessions.admits()) throw busy("too many clients connecting at once: retry later", sessions.retryAfterSeconds() * 1_000);
      const pending: Event[] = [];
      let wake: (() => void) | undefined;
      let ended = false;
      const end = () => {
        ended = true;
        wake?.();
      };
      const sessionId = sessions.newSessionId();
      await sessions.open(caller, {
        sessionId,
        userId: caller.userId,
        deviceId: caller.deviceId,
        send(events) {
          if (ended || pending.length + events.length > MAX_PENDING) return false;
          pending.push(...events);
          wake?.();
          return true;
        },
        drain(reason, withinMs) {
          pending.push(create(EventSchema, { kind: { case: "reconnect", value: { reason, withinMs } } }));
          wake?.();
          setTimeout(end, withinMs).unref();
        },
      });
      ctx.signal.addEventListener("abort", end, { once: true });
      try {
        // Registered first, then the replay: nothing falls between them (repeats are dropped by seq).
        if (req.cursors.length > 0) {
          const missed = await ops.sync(caller, create(SyncRequestSchema, { cursors: req.cursors }));
          for (const update of missed.updates ?? []) {
            for (const message of update.messages ?? []) yield create(SubscribeResponseSchema, { event: { kind: { case: "message", value: { message } } } });
          }
        }
        while (!ended) {
          const event = pending.shift();
          if (event !== undefined) yield create(SubscribeResponseSchema, { event });
          else await new Promise<void>((r) => (wake = r));
          wake = undefined;
        }
      } finally {
        sessions.close(sessionId);
      }
    },
  };
}
