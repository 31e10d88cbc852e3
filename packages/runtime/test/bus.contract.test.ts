// One contract for the event bus, run against both drivers: memory and real Kafka
// (KAFKA_BROKERS, 127.0.0.1:19092 by default; the suite fails, naming it, when it is not up).
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { Kafka, logLevel, type KafkaMessage } from "kafkajs";
import { after, before, describe, it } from "node:test";
import { createKafkaBus } from "../src/bus/kafka.js";
import { createMemoryBus } from "../src/bus/memory.js";
import { namespaced } from "../src/bus/namespace.js";
import type { Bus, BusRecord, Subscription } from "../src/bus/port.js";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collects handled records and resolves once `n` have arrived. */
function collector() {
  const records: BusRecord[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  return {
    records,
    values: () => records.map((r) => dec(r.value)),
    push(batch: BusRecord[]) {
      records.push(...batch);
      for (const w of waiters) if (records.length >= w.n) w.resolve();
    },
    until(n: number, ms = 20_000): Promise<void> {
      if (records.length >= n) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${records.length} of ${n} records within ${ms} ms`)), ms);
        waiters.push({ n, resolve: () => (clearTimeout(timer), resolve()) });
      });
    },
  };
}

/** Waits until the subscription has committed everything it was given. */
async function noLag(sub: Subscription): Promise<void> {
  const deadline = Date.now() + 10_000;
  let lag = Infinity;
  while (lag > 0 && Date.now() < deadline) {
    lag = (await sub.status()).reduce((sum, p) => sum + p.lag, 0);
    if (lag > 0) await sleep(50);
  }
  assert.equal(lag, 0, "lag did not reach 0");
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;

function busContract(name: string, open: () => Bus): void {
  describe(`bus contract: ${name}`, () => {
    const bus = open();
    const subs: Subscription[] = [];
    const run = randomBytes(4).toString("hex");
    let n = 0;
    const topic = async (partitions = 3) => {
      const t = `test.${run}.${n++}`;
      await bus.ensureTopics([{ name: t, partitions }]);
      return t;
    };
    const group = (label: string) => `test-${run}-${label}`;
    const subscribe = async (...args: Parameters<Bus["subscribe"]>) => {
      const sub = await bus.subscribe(...args);
      subs.push(sub);
      return sub;
    };

    before(async () => {
      await bus.health();
    });
    after(async () => {
      for (const s of subs) await s.stop();
      await bus.close();
    });

    it("keeps per-key order, carries headers, and reports no lag once all is handled", async () => {
      const t = await topic();
      const got = collector();
      const sub = await subscribe({ groupId: group("order"), topics: [t], fromBeginning: true, handle: async (b) => got.push(b) });
      // Sequential and concurrent publishes: order per key holds for both.
      for (let i = 0; i < 15; i++) await bus.publish(t, [{ key: `k${i % 3}`, value: enc(`${i}`), headers: { traceparent: `tp-${i}` } }]);
      await Promise.all(Array.from({ length: 15 }, (_, j) => bus.publish(t, [{ key: `k${(15 + j) % 3}`, value: enc(`${15 + j}`), headers: { traceparent: `tp-${15 + j}` } }])));
      await got.until(30);
      for (const key of ["k0", "k1", "k2"]) {
        const values = got.records.filter((r) => r.key === key).map((r) => Number(dec(r.value)));
        assert.deepEqual(values, [...values].sort((a, b) => a - b), `order of ${key}`);
        assert.equal(values.length, 10);
      }
      for (const r of got.records) {
        assert.deepEqual(r.headers, { traceparent: `tp-${dec(r.value)}` });
        assert.equal(r.topic, t);
        assert.match(r.offset, /^\d+$/);
        assert.ok(Math.abs(r.timestamp - Date.now()) < 60_000, "timestamp is recent");
      }
      // One partition per batch, in offset order.
      for (const partition of new Set(got.records.map((r) => r.partition))) {
        const offsets = got.records.filter((r) => r.partition === partition).map((r) => Number(r.offset));
        assert.deepEqual(offsets, [...offsets].sort((a, b) => a - b));
      }
      await noLag(sub);
    });

    it("redelivers a batch whose handler failed, and never skips it", async () => {
      const t = await topic();
      const got = collector();
      const attempts: string[][] = [];
      await subscribe({
        groupId: group("retry"),
        topics: [t],
        fromBeginning: true,
        handle: async (b) => {
          attempts.push(b.map((r) => dec(r.value)));
          if (attempts.length <= 2) throw new Error("transient (expected by the test)");
          got.push(b);
        },
      });
      await bus.publish(t, [{ key: "a", value: enc("x") }]);
      await got.until(1);
      assert.deepEqual(attempts, [["x"], ["x"], ["x"]]);
      await bus.publish(t, [{ key: "a", value: enc("y") }]);
      await got.until(2);
      assert.deepEqual(got.values(), ["x", "y"]);
    });

    it("starts a new group at the end (or at the beginning with fromBeginning); two groups each get everything", async () => {
      const t = await topic();
      await bus.publish(t, [{ key: "a", value: enc("before") }]);
      const latest = collector();
      const earliest = collector();
      await subscribe({ groupId: group("latest"), topics: [t], handle: async (b) => latest.push(b) });
      await subscribe({ groupId: group("earliest"), topics: [t], fromBeginning: true, handle: async (b) => earliest.push(b) });
      await bus.publish(t, ["k1", "k2", "k3", "k4"].map((key) => ({ key, value: enc(`after-${key}`) })));
      await latest.until(4);
      await earliest.until(5);
      await sleep(100);
      assert.deepEqual(latest.values().sort(), ["after-k1", "after-k2", "after-k3", "after-k4"]);
      assert.deepEqual(earliest.values().sort(), ["after-k1", "after-k2", "after-k3", "after-k4", "before"]);
    });

    it("stop() finishes and commits the batch in progress; the group's next member resumes after it", async () => {
      const t = await topic();
      const first = collector();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let started!: () => void;
      const inHandler = new Promise<void>((r) => (started = r));
      const sub = await bus.subscribe({
        groupId: group("commit"),
        topics: [t],
        fromBeginning: true,
        handle: async (b) => {
          started();
          await gate;
          first.push(b);
        },
      });
      await bus.publish(t, [{ key: "k0", value: enc("old") }]);
      await inHandler;
      let stopped = false;
      const stopping = sub.stop().then(() => (stopped = true));
      await sleep(100);
      assert.equal(stopped, false, "stop() waits for the batch in progress");
      release();
      await stopping;
      assert.deepEqual(first.values(), ["old"]);

      const second = collector();
      await subscribe({ groupId: group("commit"), topics: [t], fromBeginning: true, handle: async (b) => second.push(b) });
      await bus.publish(t, [{ key: "k0", value: enc("new") }]);
      await second.until(1);
      await sleep(100);
      assert.deepEqual(second.values(), ["new"]);
    });

    it("shares the partitions among the members of a group", async () => {
      const t = await topic();
      const a = collector();
      const b = collector();
      const subA = await subscribe({ groupId: group("share"), topics: [t], handle: async (r) => a.push(r) });
      const subB = await subscribe({ groupId: group("share"), topics: [t], handle: async (r) => b.push(r) });
      // After B joined, each member holds its own partitions (Kafka: once A has rejoined too).
      const deadline = Date.now() + 15_000;
      let held: number[][] = [];
      while (Date.now() < deadline) {
        held = await Promise.all([subA, subB].map(async (s) => (await s.status()).map((p) => p.partition).sort()));
        if (held.flat().length === 3 && held.every((h) => h.length > 0)) break;
        await sleep(100);
      }
      assert.deepEqual(held.flat().sort(), [0, 1, 2], `partitions held: ${JSON.stringify(held)}`);
      const keys = Array.from({ length: 30 }, (_, i) => `user-${i}`);
      await bus.publish(t, keys.map((key) => ({ key, value: enc(key) })));
      await Promise.all([a.until(1), b.until(1)]);
      const deadline2 = Date.now() + 10_000;
      while (a.records.length + b.records.length < 30 && Date.now() < deadline2) await sleep(20);
      assert.deepEqual([...a.values(), ...b.values()].sort(), [...keys].sort());
      const [heldA, heldB] = held;
      assert.ok(a.records.every((r) => heldA?.includes(r.partition)) && b.records.every((r) => heldB?.includes(r.partition)));
    });

    it("delivers a published record to a handler within milliseconds", async (t) => {
      const topicName = await topic();
      let arrived: (() => void) | undefined;
      await subscribe({ groupId: group("latency"), topics: [topicName], handle: async () => arrived?.() });
      const samples: number[] = [];
      for (let i = 0; i < 60; i++) {
        const handled = new Promise<void>((r) => (arrived = r));
        const start = performance.now();
        await bus.publish(topicName, [{ key: `k${i}`, value: enc(`${i}`) }]);
        await handled;
        if (i >= 10) samples.push(performance.now() - start); // the first ones warm up connections
      }
      samples.sort((x, y) => x - y);
      const [p50, p99] = [percentile(samples, 0.5), percentile(samples, 0.99)];
      t.diagnostic(`${name}: publish -> handle over ${samples.length} records: p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`);
      assert.ok(p50 < 50, `p50 ${p50.toFixed(1)} ms`);
    });
  });
}

busContract("memory", () => createMemoryBus());
busContract("kafka", () => createKafkaBus({ brokers: (process.env["KAFKA_BROKERS"] ?? "127.0.0.1:19092").split(","), clientId: "bus-contract" }));

describe("kafka driver", () => {
  it("sends the publishes of one turn of the event loop in one produce request", { timeout: 30_000 }, async () => {
    const brokers = (process.env["KAFKA_BROKERS"] ?? "127.0.0.1:19092").split(",");
    const bus = createKafkaBus({ brokers, clientId: "bus-gather" });
    const kafka = new Kafka({ clientId: "bus-gather-reader", brokers, logLevel: logLevel.NOTHING });
    const consumer = kafka.consumer({ groupId: `gather-${randomBytes(4).toString("hex")}` });
    try {
      const name = `gather-${randomBytes(4).toString("hex")}`;
      await bus.ensureTopics([{ name, partitions: 1 }]);
      await bus.publish(name, [{ key: "k", value: enc("first") }]); // connects the producer
      // Ten callers, each publishing one record, in the same turn (as the appends of one write batch).
      await Promise.all(Array.from({ length: 10 }, (_, i) => bus.publish(name, [{ key: "k", value: enc(`r${i}`) }])));
      const got: KafkaMessage[] = [];
      let done = () => {};
      const all = new Promise<void>((resolve) => (done = resolve));
      await consumer.connect();
      await consumer.subscribe({ topics: [name], fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          got.push(message);
          if (got.length === 11) done();
        },
      });
      await all;
      // Records of one produce request to one partition share their record batch (and its first offset).
      const batchOf = (m: KafkaMessage) => String((m as KafkaMessage & { batchContext?: { firstOffset?: string } }).batchContext?.firstOffset);
      const later = got.slice(1);
      assert.deepEqual(later.map((m) => dec(m.value ?? new Uint8Array())), Array.from({ length: 10 }, (_, i) => `r${i}`));
      assert.ok(later.every((m) => batchOf(m) !== "undefined"), "kafkajs names each record's batch");
      assert.equal(new Set(later.map(batchOf)).size, 1, `record batches: ${later.map(batchOf).join(" ")}`);
    } finally {
      await consumer.disconnect();
      await bus.close();
    }
  });
});

describe("bus namespaces", () => {
  it("keep two meshes on one broker apart, and show handlers the plain topic names", async () => {
    const broker = createMemoryBus();
    const a = namespaced(broker, "a.");
    const b = namespaced(broker, "b.");
    const gotA = collector();
    const gotB = collector();
    const subA = await a.subscribe({ groupId: "routing", topics: ["chat.messages.v1"], handle: async (r) => gotA.push(r) });
    const subB = await b.subscribe({ groupId: "routing", topics: ["chat.messages.v1"], handle: async (r) => gotB.push(r) });
    await a.publish("chat.messages.v1", [{ key: "k", value: enc("for a") }]);
    await b.publish("chat.messages.v1", [{ key: "k", value: enc("for b") }]);
    await gotA.until(1);
    await gotB.until(1);
    await sleep(50);
    assert.deepEqual(gotA.records.map((r) => [r.topic, dec(r.value)]), [["chat.messages.v1", "for a"]]);
    assert.deepEqual(gotB.records.map((r) => [r.topic, dec(r.value)]), [["chat.messages.v1", "for b"]]);
    await subA.stop();
    await subB.stop();
  });
});
