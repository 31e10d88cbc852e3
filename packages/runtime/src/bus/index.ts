// Chooses the bus driver by name (the one place that does); an unknown name is refused with the
// names that exist. Either driver's subscriptions report their lag as a metric (lag.ts).
import { createKafkaBus, type KafkaBusOptions } from "./kafka.js";
import { withLagMetric } from "./lag.js";
import { sharedMemoryBus } from "./memory.js";
import type { Bus } from "./port.js";

export const BUS_DRIVERS = ["memory", "kafka"] as const;

/** "memory": the process-wide in-process broker; "kafka": a Kafka client with opts. Both with the consumer lag metric. */
export function openBus(driver: "memory"): Bus;
export function openBus(driver: "kafka", opts: KafkaBusOptions): Bus;
export function openBus(driver: string, opts?: KafkaBusOptions): Bus;
export function openBus(driver: string, opts?: KafkaBusOptions): Bus {
  switch (driver) {
    case "memory":
      return withLagMetric(sharedMemoryBus());
    case "kafka":
      if (opts === undefined) throw new Error('bus driver "kafka" needs its options (brokers, clientId)');
      return withLagMetric(createKafkaBus(opts));
    default:
      throw new Error(`unknown bus driver "${driver}": expected one of ${BUS_DRIVERS.join(", ")}`);
  }
}
