// RoutingService: the operational face of the router. The delivery pipeline (consume
// MessageCreated -> members -> sessions -> EdgeService.Deliver, PushRequested for the offline)
// arrives with issue #3; until then no consumer runs and the counters stay at zero.
import type { ServiceImpl } from "@connectrpc/connect";
import type { RoutingService } from "../../../gen/chat/routing/v1/routing_pb.js";
import type { Bus } from "../../../packages/runtime/src/bus/port.js";

export interface RoutingHandlerOptions {
  bus: Bus;
}

export function createRoutingHandler(opts: RoutingHandlerOptions): ServiceImpl<typeof RoutingService> {
  return {
    async getStatus() {
      return { bus: opts.bus.driver, partitions: [], eventsConsumed: 0n, deliveries: 0n, pushRequests: 0n };
    },
  };
}
