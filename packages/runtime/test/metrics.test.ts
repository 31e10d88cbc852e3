// The process metrics every service serves, read from /metrics as Prometheus scrapes them: the
// consumer lag gauge of bus subscriptions (memory driver here; the mesh tests see it on Kafka too)
// and the runtime gauges (memory, heap, event-loop delay).
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, it } from "node:test";
import { withLagMetric } from "../src/bus/lag.js";
import { createMemoryBus } from "../src/bus/memory.js";
import type { Bus, PartitionLag, Subscription } from "../src/bus/port.js";
import { initTelemetry, type Telemetry } from "../src/telemetry/index.js";
import { samples, type Sample } from "../../../tests/support/metrics.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enc = (s: string) => new TextEncoder().encode(s);

describe("process metrics on /metrics", () => {
  let telemetry: Telemetry;
  let server: http.Server;
  let url = "";
  const scrape = async () => (await fetch(url)).text();
  /** The lag samples of one consumer group, once `ok` holds for them (or fails after 5 s). */
  async function lagUntil(group: string, ok: (s: Sample[]) => boolean, what: string): Promise<Sample[]> {
    const deadline = Date.now() + 5_000;
    for (;;) {
      const mine = samples(await scrape(), "chat_bus_consumer_lag").filter((s) => s.labels["consumer_group"] === group);
      if (ok(mine)) return mine;
      if (Date.now() > deadline) assert.fail(`${what}; have ${JSON.stringify(mine)}`);
      await sleep(20);
    }
  }
  const total = (s: Sample[]) => s.reduce((sum, x) => sum + x.value, 0);

  before(async () => {
    telemetry = initTelemetry({ serviceName: "metrics-test" });
    server = http.createServer((req, res) => telemetry.metricsHandler(req, res));
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`;
  });
  after(async () => {
    await new Promise((r) => server.close(r));
    await telemetry.shutdown();
  });

  it("serves the lag of each partition a subscription holds, follows it down to 0, and drops it when the subscription stops", async () => {
    const bus = withLagMetric(createMemoryBus(), { refreshMs: 20 });
    await bus.ensureTopics([{ name: "lag.t", partitions: 2 }]);
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const sub = await bus.subscribe({ groupId: "lag-group", topics: ["lag.t"], handle: () => gate });
    const first = await lagUntil("lag-group", (s) => s.length === 2, "a series per partition");
    assert.deepEqual(new Set(first.map((s) => s.labels["partition"])), new Set(["0", "1"]));
    assert.ok(first.every((s) => s.labels["topic"] === "lag.t" && s.value === 0));

    // Held in the handler, so nothing is committed: every record counts.
    await bus.publish("lag.t", ["a", "b", "c", "d", "e"].map((k) => ({ key: k, value: enc(k) })));
    await lagUntil("lag-group", (s) => total(s) === 5, "a lag of the 5 uncommitted records");
    release();
    await lagUntil("lag-group", (s) => s.length === 2 && total(s) === 0, "no lag once handled");

    await sub.stop();
    await lagUntil("lag-group", (s) => s.length === 0, "no series after stop");
    await bus.close();
  });

  it("stops serving a lag it can no longer read (stale) instead of repeating it", async () => {
    let fail = false;
    const status = async (): Promise<PartitionLag[]> => {
      if (fail) throw new Error("broker unreachable");
      return [{ topic: "stale.t", partition: 0, committedOffset: 7, lag: 3 }];
    };
    const fake: Bus = {
      driver: "memory",
      ensureTopics: async () => undefined,
      publish: async () => undefined,
      subscribe: async (): Promise<Subscription> => ({ status, stop: async () => undefined }),
      health: async () => undefined,
      close: async () => undefined,
    };
    const bus = withLagMetric(fake, { refreshMs: 20, staleMs: 200 });
    await bus.subscribe({ groupId: "stale-group", topics: ["stale.t"], handle: async () => undefined });
    await lagUntil("stale-group", (s) => total(s) === 3, "the lag status() reports");
    fail = true;
    await lagUntil("stale-group", (s) => s.length === 0, "no series once stale");
    await bus.close();
  });

  it("serves resident memory, V8 heap used and total, and event-loop delay", async () => {
    await sleep(50); // a few event-loop delay samples
    const text = await scrape();
    const one = (name: string) => {
      const [s, ...rest] = samples(text, name);
      assert.ok(s !== undefined && rest.length === 0, `${name}: one sample`);
      return s.value;
    };
    const rss = one("process_resident_memory_bytes");
    const heapUsed = one("nodejs_heap_used_bytes");
    const heapTotal = one("nodejs_heap_total_bytes");
    assert.ok(heapUsed > 0 && heapUsed <= heapTotal, `heap used ${heapUsed} of ${heapTotal}`);
    assert.ok(heapTotal < rss, `heap total ${heapTotal} within rss ${rss}`);
    const p99 = one("nodejs_eventloop_delay_p99_seconds");
    const mean = one("nodejs_eventloop_delay_mean_seconds");
    assert.ok(p99 > 0 && p99 < 5, `p99 ${p99} s`);
    assert.ok(mean > 0 && mean <= p99 * 1.01, `mean ${mean} s, p99 ${p99} s`);
  });

  it("serves each garbage collection's pause by kind", async () => {
    const minorCount = async () => samples(await scrape(), "nodejs_gc_duration_seconds_count").find((s) => s.labels["kind"] === "minor")?.value ?? 0;
    const before = await minorCount();
    // Short-lived garbage, far more than a young generation holds: scavenges must run.
    let keep = 0;
    for (let i = 0; i < 2_000_000; i++) keep += { i, s: `x${i}` }.s.length;
    assert.ok(keep > 0);
    await sleep(50); // gc entries reach observers asynchronously
    const after = await minorCount();
    assert.ok(after > before, `minor collections counted: ${before} -> ${after}`);
    const sum = samples(await scrape(), "nodejs_gc_duration_seconds_sum").find((s) => s.labels["kind"] === "minor")?.value ?? 0;
    assert.ok(sum > 0 && sum < after, `pause seconds in all ${sum} for ${after} collections`);
  });
});
