// The process's own health as metrics, the same on every service (registered by initTelemetry):
//
//   process_resident_memory_bytes        resident set size (process.memoryUsage.rss())
//   nodejs_heap_used_bytes               V8 heap in use, exact at scrape time (v8.getHeapStatistics().used_heap_size)
//   nodejs_heap_total_bytes              V8 heap reserved (total_heap_size)
//   nodejs_eventloop_delay_p99_seconds   event-loop delay since the previous scrape, 99th percentile
//   nodejs_eventloop_delay_mean_seconds  the same, mean
//   nodejs_gc_duration_seconds           each garbage collection's pause (histogram, by `kind`:
//                                        minor, major, incremental, weakcb), from perf_hooks' gc entries
//
// The delay comes from perf_hooks.monitorEventLoopDelay (a timer every RESOLUTION_MS, how late it
// fired); the histogram is reset at each collection, so each scrape sees the interval since the
// one before (with two scrapers, each sees the interval since either scraped). When no sample
// landed in between, the previous values are repeated. The instrument names carry the unit so the
// Prometheus names do (the exporter appends none).
import type { Meter } from "@opentelemetry/api";
import { constants, monitorEventLoopDelay, PerformanceObserver, type PerformanceEntry } from "node:perf_hooks";
import { getHeapStatistics } from "node:v8";

/** Sampling period of the event-loop delay monitor, in ms (Node's default). */
const RESOLUTION_MS = 10;

/** Buckets of the collection pause histogram, seconds: a scavenge takes about a millisecond, a slow one tens. */
const GC_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];

const GC_KINDS = new Map<number, string>([
  [constants.NODE_PERFORMANCE_GC_MINOR, "minor"],
  [constants.NODE_PERFORMANCE_GC_MAJOR, "major"],
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL, "incremental"],
  [constants.NODE_PERFORMANCE_GC_WEAKCB, "weakcb"],
]);

/** A gc entry's kind (its `detail.kind`, which the entry's type does not declare). */
const gcKind = (entry: PerformanceEntry): string => GC_KINDS.get((entry as { detail?: { kind?: number } }).detail?.kind ?? -1) ?? "other";

/** Registers the runtime instruments on `meter`; the returned function stops the delay monitor and the GC observer. */
export function registerRuntimeMetrics(meter: Meter): () => void {
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  const gcDuration = meter.createHistogram("nodejs.gc.duration.seconds", {
    unit: "s",
    description: "Pause of each garbage collection, by kind (minor: scavenge; major: mark-compact)",
    advice: { explicitBucketBoundaries: GC_BUCKETS },
  });
  const gc = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) gcDuration.record(entry.duration / 1000, { kind: gcKind(entry) });
  });
  gc.observe({ entryTypes: ["gc"] });
  const rss = meter.createObservableGauge("process.resident_memory.bytes", { unit: "By", description: "Resident set size of the process" });
  const heapUsed = meter.createObservableGauge("nodejs.heap.used.bytes", { unit: "By", description: "V8 heap in use (v8.getHeapStatistics().used_heap_size)" });
  const heapTotal = meter.createObservableGauge("nodejs.heap.total.bytes", { unit: "By", description: "V8 heap reserved (v8.getHeapStatistics().total_heap_size)" });
  const delayP99 = meter.createObservableGauge("nodejs.eventloop.delay.p99.seconds", {
    unit: "s",
    description: "Event-loop delay since the previous scrape, 99th percentile (perf_hooks.monitorEventLoopDelay)",
  });
  const delayMean = meter.createObservableGauge("nodejs.eventloop.delay.mean.seconds", { unit: "s", description: "Event-loop delay since the previous scrape, mean" });
  let last = { p99: 0, mean: 0 };
  meter.addBatchObservableCallback(
    (result) => {
      const heap = getHeapStatistics();
      result.observe(rss, process.memoryUsage.rss());
      result.observe(heapUsed, heap.used_heap_size);
      result.observe(heapTotal, heap.total_heap_size);
      if (delay.count > 0) {
        // The histogram counts nanoseconds.
        last = { p99: delay.percentile(99) / 1e9, mean: delay.mean / 1e9 };
        delay.reset();
      }
      result.observe(delayP99, last.p99);
      result.observe(delayMean, last.mean);
    },
    [rss, heapUsed, heapTotal, delayP99, delayMean],
  );
  return () => {
    delay.disable();
    gc.disconnect();
  };
}
