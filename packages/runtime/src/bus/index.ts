// Chooses the bus driver by name; an unknown name is refused with the names that exist.
import { createKafkaBus, type KafkaBusOptions } from "./kafka.js";
import { sharedMemoryBus } from "./memory.js";
import type { Bus } from "./port.js";

export function openBus(driver: "memory"): Bus;
export function openBus(driver: "kafka", opts: KafkaBusOptions): Bus;
export function openBus(driver: string, opts?: KafkaBusOptions): Bus {
  switch (driver) {
    case "memory":
      return sharedMemoryBus();
    case "kafka":
      if (opts === undefined) throw new Error("the kafka bus needs brokers");
      return createKafkaBus(opts);
    default:
      throw new Error(`unknown bus driver "${driver}"; expected one of: memory, kafka`);
  }
}
