// RoutingService: the operational face of the router (assignment, lag, counters).
import type { ServiceImpl } from "@connectrpc/connect";
import type { RoutingService } from "../../../gen/chat/routing/v1/routing_pb.js";
import type { Bus, Subscription } from "../../../packages/runtime/src/bus/port.js";
import type { RouterStats } from "./router.js";

export interface RoutingHandlerOptions {
  bus: Bus;
  subscription: Subscription;
  stats: RouterStats;
}

export function createRoutingHandler(opts: RoutingHandlerOptions): ServiceImpl<typeof RoutingService> {
  return {
    async getStatus() {
      const partitions = await opts.subscription.status();
      return {
        bus: opts.bus.driver,
        partitions: partitions.map((p) => ({ topic: p.topic, partition: p.partition, committedOffset: BigInt(p.committedOffset), lag: BigInt(p.lag) })),
        eventsConsumed: BigInt(opts.stats.eventsConsumed),
        deliveries: BigInt(opts.stats.deliveries),
        pushRequests: BigInt(opts.stats.pushRequests),
      };
    },
  };
}
