// Giving memory back after a connection surge. Tens of thousands of clients arriving (a deploy, a
// reconnect storm) make V8 grow its heap: the young generation to its largest size (64 MB semi-spaces
// on a host with much memory) and the old generation with the handshakes' objects, whose pages stay
// committed, partly filled, between the long-lived connection objects once those are garbage.
// Measured at 16,000 idle clients: 109 MB of young generation holding 22 MB, 242 MB of old space
// holding 94 MB. V8 returns such memory only in a memory-reducing collection, which it starts by
// itself only when the process looks idle, and an edge pinging its clients never does. So once the
// connection count has settled and the event loop is not busy, the edge asks for one.
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { performance, type EventLoopUtilization } from "node:perf_hooks";
import type { Logger } from "../../../packages/runtime/src/log.js";

export interface TrimCheck {
  /** Bytes of heap V8 holds from the OS (every space, young generation included). */
  committed: number;
  /** Bytes of objects in it (live, or garbage not yet collected). */
  used: number;
  /** Connections now and at the previous check. */
  connections: number;
  connectionsBefore: number;
  /** Share of the interval the event loop was busy, 0..1. */
  loopBusy: number;
  /** Milliseconds since the last trim (Infinity before the first). */
  sinceLastTrimMs: number;
}

/** Heap committed beyond its objects below which a trim is not worth a pause. */
export const MIN_SLACK_BYTES = 64 * 2 ** 20;
/** Trims at most this often: an edge busy enough to grow its young generation back does not pause every few seconds. */
export const MIN_TRIM_SPACING_MS = 5 * 60_000;

/**
 * Whether to trim now: much more heap committed than used (at least MIN_SLACK_BYTES and half the
 * used bytes again), the connection count settled (moved less than 2% over the interval: the surge
 * is over, a trim now is not undone by the next thousand handshakes), the event loop mostly idle
 * (the pause, a few ms per MB of live heap, does not land on a busy edge), none in the last few
 * minutes.
 */
export function shouldTrim(c: TrimCheck): boolean {
  const slack = c.committed - c.used;
  const settled = Math.abs(c.connections - c.connectionsBefore) <= Math.max(50, c.connections * 0.02);
  return slack >= MIN_SLACK_BYTES && slack >= c.used / 2 && settled && c.loopBusy < 0.5 && c.sinceLastTrimMs >= MIN_TRIM_SPACING_MS;
}

type GcFunction = (options: { type: "major"; flavor?: "regular" | "last-resort" }) => void;

/** V8's gc(), exposed for this use when the process was not started with --expose-gc. */
export function gcFunction(): GcFunction {
  const own = (globalThis as { gc?: GcFunction }).gc;
  if (own !== undefined) return own;
  setFlagsFromString("--expose-gc");
  return runInNewContext("gc") as GcFunction;
}

/** Checks every `everyMs` (0: never) and trims when shouldTrim says so. Returns a stop function. */
export function startMemoryTrim(opts: { everyMs: number; connections: () => number; logger: Logger }): () => void {
  if (opts.everyMs === 0) return () => {};
  let gc: GcFunction | undefined;
  let connectionsBefore = opts.connections();
  let elu: EventLoopUtilization = performance.eventLoopUtilization();
  let lastTrim = -Infinity;
  const timer = setInterval(() => {
    const now = performance.now();
    const busy = performance.eventLoopUtilization(elu);
    elu = performance.eventLoopUtilization();
    const connections = opts.connections();
    const before = getHeapStatistics();
    const check = { committed: before.total_physical_size, used: before.used_heap_size, connections, connectionsBefore, loopBusy: busy.utilization, sinceLastTrimMs: now - lastTrim };
    connectionsBefore = connections;
    if (!shouldTrim(check)) return;
    lastTrim = now;
    const rssBefore = process.memoryUsage.rss();
    (gc ??= gcFunction())({ type: "major", flavor: "last-resort" });
    const after = getHeapStatistics();
    const mb = (n: number) => Math.round(n / 2 ** 20);
    opts.logger.info(
      { connections, pauseMs: Math.round(performance.now() - now), heapCommittedMB: [mb(before.total_physical_size), mb(after.total_physical_size)], heapUsedMB: [mb(before.used_heap_size), mb(after.used_heap_size)], rssMB: [mb(rssBefore), mb(process.memoryUsage.rss())] },
      "memory given back after the connection count settled",
    );
  }, opts.everyMs);
  timer.unref();
  return () => clearInterval(timer);
}
