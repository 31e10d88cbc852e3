// Consumer lag as a metric, for both drivers: the gauge chat.bus.consumer.lag (Prometheus
// chat_bus_consumer_lag), records of a partition this member holds that its group has not
// committed yet, by consumer_group, topic and partition (the names the driver uses, so with
// BUS_NAMESPACE they carry its prefix, as Kafka's own tools show them). Each member reports only
// the partitions it holds: a group's lag is the sum over its members.
//
// The numbers are the subscription's own status() (what RoutingService.GetStatus answers). A
// scrape never waits on the broker: each subscription refreshes a snapshot every REFRESH_MS in
// the background, and the gauge serves the newest one, so the Kafka driver's admin requests (high
// watermarks and the group's committed offsets) cost a few small requests per interval, however
// often /metrics is scraped. A snapshot older than STALE_MS (refreshes failing: the broker is
// unreachable) is not served: a lag that is not current disappears rather than lies.
import { createLogger } from "../log.js";
import { meter, whenMetricsReady } from "../telemetry/index.js";
import type { Bus, PartitionLag, Subscription } from "./port.js";

const logger = createLogger("bus.lag");

export interface LagOptions {
  /** How often each subscription's lag is read: 10 s by default. */
  refreshMs?: number;
  /** A snapshot older than this is not served: 3 refreshes by default. */
  staleMs?: number;
}

const REFRESH_MS = 10_000;

interface Observed {
  groupId: string;
  partitions: PartitionLag[];
  /** When partitions was read (ms since the epoch); 0: not yet. */
  at: number;
  staleMs: number;
}

/** Every observed subscription of the process. */
const observed = new Set<Observed>();
let registered = false;

function registerGauge(): void {
  if (registered) return;
  registered = true;
  whenMetricsReady(() => {
    meter("chat.bus")
      .createObservableGauge("chat.bus.consumer.lag", {
        unit: "{record}",
        description: "Records of a partition this member holds not yet committed by its consumer group (refreshed every 10 s)",
      })
      .addCallback((result) => {
        const now = Date.now();
        for (const o of observed) {
          if (now - o.at > o.staleMs) continue;
          for (const p of o.partitions) result.observe(p.lag, { consumer_group: o.groupId, topic: p.topic, partition: p.partition });
        }
      });
  });
}

/** Starts reporting one subscription's lag; the returned function stops it. */
function observe(groupId: string, sub: Subscription, opts: LagOptions): () => void {
  registerGauge();
  const refreshMs = opts.refreshMs ?? REFRESH_MS;
  const o: Observed = { groupId, partitions: [], at: 0, staleMs: opts.staleMs ?? 3 * refreshMs };
  observed.add(o);
  let running = false;
  let failing = false;
  let stopped = false;
  const refresh = async () => {
    if (running) return;
    running = true;
    try {
      o.partitions = await sub.status();
      o.at = Date.now();
      failing = false;
    } catch (err) {
      // Once per run of failures: the driver logs the broker's trouble itself.
      if (!failing && !stopped) logger.warn({ err, groupId }, "consumer lag not readable; the metric keeps the last value until it is stale");
      failing = true;
    } finally {
      running = false;
    }
  };
  void refresh();
  const timer = setInterval(() => void refresh(), refreshMs);
  timer.unref();
  return () => {
    stopped = true;
    clearInterval(timer);
    observed.delete(o);
  };
}

/** The bus, with every subscription it opens reported by the lag gauge until it stops (or the bus closes). */
export function withLagMetric(bus: Bus, opts: LagOptions = {}): Bus {
  const open = new Set<() => void>();
  return {
    driver: bus.driver,
    ensureTopics: (specs) => bus.ensureTopics(specs),
    publish: (topic, records) => bus.publish(topic, records),
    async subscribe(sub) {
      const subscription = await bus.subscribe(sub);
      const stop = observe(sub.groupId, subscription, opts);
      open.add(stop);
      return {
        status: () => subscription.status(),
        async stop() {
          stop();
          open.delete(stop);
          await subscription.stop();
        },
      };
    },
    health: () => bus.health(),
    async close() {
      for (const stop of open) stop();
      open.clear();
      await bus.close();
    },
  };
}
